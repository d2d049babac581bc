//! The release lock: at most one run performs irreversible steps on an app at a time.
//!
//! Azure App Service has no conditional write on a site (no ETag, no lease), but ARM's Tags API can *merge*
//! tags: each request adds or updates only the tags it names, atomically, and a read after a write sees
//! it. The lock is built on that alone, as a claim protocol over one register per run:
//!
//! 1. Read the site's tags. A live `held` claim of another run: refuse, having written nothing. A live
//!    `pending` claim: another run is taking the lock right now; back off and read again.
//! 2. Merge this run's own claim tag (`slotrelease.claim.<token>`, `pending`).
//! 3. Read again. Any other live claim: withdraw (delete ours) and back off or refuse. Otherwise the lock
//!    is ours: mark the claim `held`.
//!
//! Two runs cannot both pass step 3: whichever wrote second reads after the first's write, so sees it.
//! The token is the fencing token: before every irreversible step the holder reads the tags again and
//! goes on only while its claim is there, `held` and unexpired ([`check_fence`]). The claim is renewed
//! while the stage runs and expires when its holder dies; a stale claim is taken over only on request.
//! The decisions here are pure functions over the claims read; `stages` performs the reads and writes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::journal::{get_split, put_split};

/// Every claim tag's name starts with this, followed by the claim's token.
pub const CLAIM_PREFIX: &str = "slotrelease.claim.";

/// One run's claim on the lock, as kept in its tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The fencing token: random per run, part of the tag name.
    #[serde(skip)]
    pub token: String,
    /// The identity of the release the run works on.
    #[serde(rename = "r")]
    pub release: String,
    /// Its display name.
    #[serde(rename = "n", default)]
    pub release_name: String,
    /// The stage the run performs.
    #[serde(rename = "s", default)]
    pub stage: String,
    /// Who runs it (pipeline, run, stage, job, agent), as the agent describes it.
    #[serde(rename = "h", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub holder: BTreeMap<String, String>,
    /// `System.JobAttempt` of the run, when it runs in a pipeline.
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// When the claim was made (Unix seconds).
    #[serde(rename = "t")]
    pub since_unix: i64,
    /// When it goes stale unless renewed (Unix seconds).
    #[serde(rename = "x")]
    pub expires_unix: i64,
    /// Whether the run checked that no other claim exists, i.e. holds the lock.
    #[serde(rename = "held", default)]
    pub held: bool,
}

impl Claim {
    /// The name of the claim's first tag.
    pub fn tag_name(&self) -> String {
        format!("{CLAIM_PREFIX}{}", self.token)
    }

    /// The claim's tags (split over continuation tags when long).
    pub fn to_tags(&self) -> BTreeMap<String, String> {
        let mut tags = BTreeMap::new();
        let json = serde_json::to_string(self).unwrap_or_default();
        put_split(&mut tags, &self.tag_name(), &json);
        tags
    }

    /// Whether the claim is past its expiry at `now`.
    pub fn is_stale(&self, now_unix: i64) -> bool {
        self.expires_unix <= now_unix
    }

    /// How people read who holds it: "release 20261204.1, stage production, pipeline web-ci, run 20261204.1, agent Hosted 3".
    pub fn describe(&self) -> String {
        let name = if self.release_name.is_empty() {
            &self.release
        } else {
            &self.release_name
        };
        let mut parts = vec![format!("release {name}")];
        if !self.stage.is_empty() {
            parts.push(format!("stage {}", self.stage));
        }
        for key in ["pipeline", "run", "stage", "job", "agent"] {
            if let Some(v) = self.holder.get(key)
                && !(key == "stage" && v.eq_ignore_ascii_case(&self.stage))
            {
                parts.push(format!("{key} {v}"));
            }
        }
        if let Some(a) = self.attempt {
            parts.push(format!("attempt {a}"));
        }
        parts.join(", ")
    }
}

/// Every claim on the site, read from its tags; tags that do not parse are ignored (they lock nothing).
pub fn claims(tags: &BTreeMap<String, String>) -> Vec<Claim> {
    tags.keys()
        .filter_map(|name| name.strip_prefix(CLAIM_PREFIX))
        .filter(|token| !token.is_empty() && token.bytes().all(|b| b.is_ascii_hexdigit()))
        .filter_map(|token| {
            let json = get_split(tags, &format!("{CLAIM_PREFIX}{token}"))?;
            let mut claim: Claim = serde_json::from_str(&json).ok()?;
            claim.token = token.to_owned();
            Some(claim)
        })
        .collect()
}

/// The tag names a claim occupies, with their current values (for a delete that removes only them).
pub fn claim_tags(tags: &BTreeMap<String, String>, token: &str) -> BTreeMap<String, String> {
    let base = format!("{CLAIM_PREFIX}{token}");
    tags.iter()
        .filter(|(name, _)| {
            name.as_str() == base
                || name
                    .strip_prefix(&base)
                    .and_then(|rest| rest.strip_prefix('.'))
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// What a run asking for the lock is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Its release identity.
    pub release: String,
    /// Its `System.JobAttempt`, in a pipeline.
    pub attempt: Option<u32>,
    /// The token of a stale claim the user asked to take over (`--take-over-lock`).
    pub take_over: Option<String>,
}

/// What to do after reading the claims, before writing anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No live claim stands in the way: write ours. `remove` are claims to delete first: stale ones the
    /// user asked to take over, or the claim of an earlier attempt of this very release.
    Claim {
        /// Claims to remove.
        remove: Vec<Claim>,
    },
    /// Another run is taking the lock at this moment: read again after a pause.
    Wait {
        /// The other run's claim.
        other: Claim,
    },
    /// Another run holds the lock: refuse, writing nothing.
    Refuse {
        /// The holder's claim.
        holder: Claim,
    },
}

/// Decides from the claims read whether a run may write its claim.
///
/// A live claim of another run is never taken over. A stale one is, but only on request (its token given)
/// or when it is an earlier attempt of the same release (Azure Pipelines starts a retry only after the
/// earlier attempt ended, so that run is gone). A stale claim nobody asked about refuses, so the message
/// can name it and the command that takes it over.
pub fn decide(claims: &[Claim], request: &Request, now_unix: i64) -> Decision {
    let mut remove = Vec::new();
    for claim in claims {
        let earlier_attempt = claim.release == request.release
            && matches!((claim.attempt, request.attempt), (Some(theirs), Some(ours)) if theirs < ours);
        let asked = request.take_over.as_deref() == Some(claim.token.as_str());
        let stale = claim.is_stale(now_unix);
        if earlier_attempt || (asked && stale) {
            remove.push(claim.clone());
        } else if !claim.held && !stale {
            return Decision::Wait {
                other: claim.clone(),
            };
        } else if !claim.held && stale {
            // A pending claim whose run died while taking the lock: it never held anything.
            remove.push(claim.clone());
        } else {
            return Decision::Refuse {
                holder: claim.clone(),
            };
        }
    }
    Decision::Claim { remove }
}

/// What the read after writing our claim says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Ours is the only live claim: the lock is ours.
    Won,
    /// Another live claim exists: withdraw ours. `Some` when the other holds the lock.
    Contended {
        /// The other claim.
        other: Claim,
    },
    /// Our claim is not there (deleted by a take-over): withdraw.
    Lost,
}

/// Judges the read after our claim was written. Claims removed by [`decide`] may still show if their
/// delete raced with us; they are ignored by token.
pub fn verify(claims: &[Claim], token: &str, ignore: &[String], now_unix: i64) -> Verdict {
    if !claims.iter().any(|c| c.token == token) {
        return Verdict::Lost;
    }
    match claims
        .iter()
        .filter(|c| c.token != token && !ignore.contains(&c.token))
        .find(|c| !c.is_stale(now_unix) || c.held)
    {
        Some(other) => Verdict::Contended {
            other: other.clone(),
        },
        None => Verdict::Won,
    }
}

/// Why the holder may not go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FenceBreach {
    /// The claim is gone: another run took the lock over.
    Gone,
    /// The claim expired without being renewed.
    Expired,
    /// Another run's claim is marked held next to ours.
    Other(Box<Claim>),
}

/// Checked before every irreversible step: the claim is still ours, held and unexpired.
pub fn check_fence(claims: &[Claim], token: &str, now_unix: i64) -> Result<(), FenceBreach> {
    let Some(ours) = claims.iter().find(|c| c.token == token) else {
        return Err(FenceBreach::Gone);
    };
    if ours.is_stale(now_unix) {
        return Err(FenceBreach::Expired);
    }
    if let Some(other) = claims.iter().find(|c| c.token != token && c.held) {
        return Err(FenceBreach::Other(Box::new(other.clone())));
    }
    Ok(())
}

/// A new random fencing token (16 hex digits).
pub fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_owned()
}

/// A Unix time as people read it in a log: `2026-12-04 21:47:00 UTC`.
pub fn human_time(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| format!("{unix} (Unix time)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(token: &str, release: &str, held: bool, expires: i64) -> Claim {
        Claim {
            token: token.into(),
            release: release.into(),
            release_name: format!("{release}-name"),
            stage: "staging".into(),
            holder: BTreeMap::from([("agent".to_owned(), "Hosted Agent 3".to_owned())]),
            attempt: Some(1),
            since_unix: 100,
            expires_unix: expires,
            held,
        }
    }

    fn request(release: &str) -> Request {
        Request {
            release: release.into(),
            attempt: Some(1),
            take_over: None,
        }
    }

    #[test]
    fn a_claim_describes_its_holder_once_per_fact() {
        let mut c = claim("00aa", "build-1.def-2.c", true, 500);
        c.holder.insert("pipeline".into(), "web-ci".into());
        c.holder.insert("stage".into(), "Staging".into());
        c.holder.insert("job".into(), "deploy".into());
        // The holder's stage repeats the claim's (in any case): said once.
        assert_eq!(
            c.describe(),
            "release build-1.def-2.c-name, stage staging, pipeline web-ci, job deploy, agent Hosted Agent 3, attempt 1"
        );
        c.holder.insert("stage".into(), "canary".into());
        c.release_name.clear();
        c.stage.clear();
        c.attempt = None;
        assert_eq!(
            c.describe(),
            "release build-1.def-2.c, pipeline web-ci, stage canary, job deploy, agent Hosted Agent 3"
        );
    }

    #[test]
    fn only_well_formed_claim_tags_are_claims_and_a_delete_takes_only_its_own() {
        let a = claim("00aa", "r1", true, 500);
        let mut tags = a.to_tags();
        tags.extend(claim("bb11", "r2", true, 500).to_tags());
        // Not claims, though they hold a claim's value: an empty token, a token that is not hex; nor is a
        // suffix that is not a part number part of a claim.
        let value = tags[&a.tag_name()].clone();
        tags.insert(CLAIM_PREFIX.to_owned(), value.clone());
        tags.insert(format!("{CLAIM_PREFIX}zz"), value);
        tags.insert(format!("{CLAIM_PREFIX}00aa.x"), "kept".into());
        tags.insert(format!("{CLAIM_PREFIX}00aa."), "kept".into());
        let found: Vec<String> = claims(&tags).into_iter().map(|c| c.token).collect();
        assert_eq!(found, ["00aa", "bb11"]);
        let own = claim_tags(&tags, "00aa");
        assert_eq!(own, a.to_tags());
    }

    #[test]
    fn a_claim_round_trips_through_its_tags_even_when_long() {
        let mut c = claim("00aa11bb22cc33dd", "r1", true, 500);
        c.holder
            .insert("pipeline".into(), "a very long pipeline name ".repeat(20));
        let mut tags = c.to_tags();
        assert!(tags.len() > 1, "split over continuation tags");
        tags.insert("owner".into(), "team".into());
        tags.insert("slotrelease.claim.nothex".into(), "{}".into());
        tags.insert("slotrelease.claim.abcd".into(), "not json".into());
        assert_eq!(claims(&tags), vec![c.clone()]);
        assert_eq!(claim_tags(&tags, &c.token).len(), tags.len() - 3);
    }

    /// Every decision, in a table: (claims on the site, the request, the expected decision).
    #[test]
    fn decisions_table() {
        let now = 1_000;
        let live_held = claim("aa", "r1", true, 2_000);
        let live_pending = claim("bb", "r1", false, 2_000);
        let stale_held = claim("cc", "r1", true, 900);
        let stale_pending = claim("dd", "r1", false, 900);
        let mut earlier_attempt = claim("ee", "r2", true, 2_000);
        earlier_attempt.attempt = Some(1);
        let retry = Request {
            attempt: Some(2),
            ..request("r2")
        };
        let take_cc = Request {
            take_over: Some("cc".into()),
            ..request("r9")
        };
        let take_aa = Request {
            take_over: Some("aa".into()),
            ..request("r9")
        };
        let cases: Vec<(Vec<Claim>, Request, Decision)> = vec![
            (vec![], request("r1"), Decision::Claim { remove: vec![] }),
            (
                vec![live_held.clone()],
                request("r2"),
                Decision::Refuse {
                    holder: live_held.clone(),
                },
            ),
            // The same release without evidence that the holder ended is refused too: it may be running.
            (
                vec![live_held.clone()],
                request("r1"),
                Decision::Refuse {
                    holder: live_held.clone(),
                },
            ),
            (
                vec![live_pending.clone()],
                request("r2"),
                Decision::Wait {
                    other: live_pending.clone(),
                },
            ),
            (
                vec![stale_held.clone()],
                request("r9"),
                Decision::Refuse {
                    holder: stale_held.clone(),
                },
            ),
            (
                vec![stale_held.clone()],
                take_cc.clone(),
                Decision::Claim {
                    remove: vec![stale_held.clone()],
                },
            ),
            // A take-over of a live claim is refused: only stale claims are taken over.
            (
                vec![live_held.clone()],
                take_aa,
                Decision::Refuse {
                    holder: live_held.clone(),
                },
            ),
            (
                vec![stale_pending.clone()],
                request("r9"),
                Decision::Claim {
                    remove: vec![stale_pending.clone()],
                },
            ),
            (
                vec![earlier_attempt.clone()],
                retry.clone(),
                Decision::Claim {
                    remove: vec![earlier_attempt.clone()],
                },
            ),
            // An earlier attempt of another release is no reason.
            (
                vec![earlier_attempt.clone()],
                Request {
                    release: "r3".into(),
                    ..retry
                },
                Decision::Refuse {
                    holder: earlier_attempt.clone(),
                },
            ),
        ];
        for (i, (claims, request, expected)) in cases.into_iter().enumerate() {
            assert_eq!(decide(&claims, &request, now), expected, "case {i}");
        }
    }

    #[test]
    fn verify_and_fence_table() {
        let now = 1_000;
        let ours = claim("aa", "r1", false, 2_000);
        let mut ours_held = ours.clone();
        ours_held.held = true;
        let other = claim("bb", "r2", false, 2_000);
        let stale_other = claim("cc", "r2", false, 900);
        assert_eq!(
            verify(std::slice::from_ref(&ours), "aa", &[], now),
            Verdict::Won
        );
        assert_eq!(verify(&[], "aa", &[], now), Verdict::Lost);
        assert_eq!(
            verify(&[ours.clone(), other.clone()], "aa", &[], now),
            Verdict::Contended {
                other: other.clone()
            }
        );
        assert_eq!(
            verify(&[ours.clone(), other.clone()], "aa", &["bb".into()], now),
            Verdict::Won
        );
        assert_eq!(
            verify(&[ours.clone(), stale_other.clone()], "aa", &[], now),
            Verdict::Won
        );

        assert_eq!(check_fence(&[ours_held.clone()], "aa", now), Ok(()));
        assert_eq!(check_fence(&[], "aa", now), Err(FenceBreach::Gone));
        assert_eq!(
            check_fence(&[ours_held.clone()], "aa", 2_000),
            Err(FenceBreach::Expired)
        );
        // A pending claim of a newcomer does not stop the holder; a held one does.
        assert_eq!(
            check_fence(&[ours_held.clone(), other.clone()], "aa", now),
            Ok(())
        );
        let mut other_held = other;
        other_held.held = true;
        assert_eq!(
            check_fence(&[ours_held, other_held.clone()], "aa", now),
            Err(FenceBreach::Other(Box::new(other_held)))
        );
    }

    #[test]
    fn times_read_as_dates() {
        assert_eq!(human_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(new_token().len(), 16);
        assert!(new_token().bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
