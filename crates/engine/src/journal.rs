//! The journal: the release record kept with the app in Azure, so an ephemeral agent can resume or roll back.
//!
//! Two parts, neither of which restarts the app: compact resource tags on the site (release, phase, which
//! release is in which slot, last known-good, previous image, the lock) and a Kudu deployment record with the
//! full story (hook results, timings). Tags are the source of truth for decisions; the record is for people.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Every journal tag name starts with this.
pub const TAG_PREFIX: &str = "slotrelease.";
const TAG_RELEASE: &str = "slotrelease.release";
const TAG_PHASE: &str = "slotrelease.phase";
const TAG_LKG: &str = "slotrelease.lastKnownGood";
const TAG_SLOTS: &str = "slotrelease.slots";
const TAG_PREVIOUS_IMAGE: &str = "slotrelease.previousImage";
const TAG_LOCK: &str = "slotrelease.lock";
const TAG_PREVIOUS_SETTINGS: &str = "slotrelease.previousSettings";

/// How far a release got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// Staging began: settings and content of the slot are changing.
    Staging,
    /// The package or image is in the slot; hooks and the gate have not passed yet.
    Deployed,
    /// The slot passed its gate and waits for production.
    Staged,
    /// A swap (or direct image change) of production is under way.
    Swapping,
    /// Production serves the release and is being watched.
    Swapped,
    /// The release passed its watch: it is the last known-good one.
    Released,
    /// The stage failed and was cleaned up; production was not changed by it.
    Failed,
    /// A rollback is under way.
    RollingBack,
    /// Production was restored to the last known-good release.
    RolledBack,
}

impl Phase {
    /// Every phase.
    pub const ALL: [Phase; 9] = [
        Phase::Staging,
        Phase::Deployed,
        Phase::Staged,
        Phase::Swapping,
        Phase::Swapped,
        Phase::Released,
        Phase::Failed,
        Phase::RollingBack,
        Phase::RolledBack,
    ];

    /// The phase's name in tags and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Staging => "staging",
            Phase::Deployed => "deployed",
            Phase::Staged => "staged",
            Phase::Swapping => "swapping",
            Phase::Swapped => "swapped",
            Phase::Released => "released",
            Phase::Failed => "failed",
            Phase::RollingBack => "rollingBack",
            Phase::RolledBack => "rolledBack",
        }
    }

    /// Parses a tag value.
    pub fn parse(s: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Whether a run may start here without resuming or rolling back first.
    /// `Staged` is settled: the slot waits for production, which is the next stage's job.
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            Phase::Staged | Phase::Released | Phase::Failed | Phase::RolledBack
        )
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The release lock: who holds it and until when (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// Who holds it (run id and host).
    pub owner: String,
    /// When it expires, so a killed run does not block the app forever.
    pub expires_unix: i64,
}

impl Lock {
    fn encode(&self) -> String {
        format!("{};{}", self.owner, self.expires_unix)
    }

    fn decode(s: &str) -> Option<Lock> {
        let (owner, expires) = s.rsplit_once(';')?;
        Some(Lock {
            owner: owner.to_owned(),
            expires_unix: expires.parse().ok()?,
        })
    }
}

/// The compact journal held in the site's tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalTags {
    /// The current (or last) release.
    pub release: Option<String>,
    /// The phase it reached.
    pub phase: Option<Phase>,
    /// The last known-good release.
    pub last_known_good: Option<String>,
    /// Which release is in which slot.
    pub slots: BTreeMap<String, String>,
    /// The image production ran before the current release (containers).
    pub previous_image: Option<String>,
    /// The lock, when held.
    pub lock: Option<Lock>,
    /// Production's values (`None`: unset) of the settings the current release wrote over there before its
    /// swap, so a rollback in a later run can put them back. Values delivered as secrets are never kept.
    pub previous_settings: BTreeMap<String, Option<String>>,
}

impl JournalTags {
    /// Reads the journal from the site's tags; other tags are ignored.
    pub fn from_tags(tags: &BTreeMap<String, String>) -> JournalTags {
        let get = |k: &str| tags.get(k).filter(|v| !v.is_empty()).cloned();
        JournalTags {
            release: get(TAG_RELEASE),
            phase: tags.get(TAG_PHASE).and_then(|p| Phase::parse(p)),
            last_known_good: get(TAG_LKG),
            slots: tags
                .get(TAG_SLOTS)
                .map(|s| {
                    s.split(',')
                        .filter_map(|pair| pair.split_once('='))
                        .map(|(slot, rel)| (slot.to_owned(), rel.to_owned()))
                        .collect()
                })
                .unwrap_or_default(),
            previous_image: get(TAG_PREVIOUS_IMAGE),
            lock: tags.get(TAG_LOCK).and_then(|l| Lock::decode(l)),
            previous_settings: tags
                .get(TAG_PREVIOUS_SETTINGS)
                .and_then(|v| serde_json::from_str(v).ok())
                .unwrap_or_default(),
        }
    }

    /// Writes the journal into a tag map, keeping every tag that is not the journal's.
    pub fn apply_to(&self, tags: &mut BTreeMap<String, String>) {
        tags.retain(|k, _| !k.starts_with(TAG_PREFIX));
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                tags.insert(k.to_owned(), v);
            }
        };
        put(TAG_RELEASE, self.release.clone());
        put(TAG_PHASE, self.phase.map(|p| p.as_str().to_owned()));
        put(TAG_LKG, self.last_known_good.clone());
        put(
            TAG_SLOTS,
            (!self.slots.is_empty()).then(|| {
                self.slots
                    .iter()
                    .map(|(s, r)| format!("{s}={r}"))
                    .collect::<Vec<_>>()
                    .join(",")
            }),
        );
        put(TAG_PREVIOUS_IMAGE, self.previous_image.clone());
        put(TAG_LOCK, self.lock.as_ref().map(Lock::encode));
        put(
            TAG_PREVIOUS_SETTINGS,
            (!self.previous_settings.is_empty())
                .then(|| serde_json::to_string(&self.previous_settings).ok())
                .flatten(),
        );
    }

    /// The release the journal says is in a slot.
    pub fn slot_release(&self, slot: &str) -> Option<&str> {
        self.slots.get(slot).map(String::as_str)
    }

    /// Records that two slots exchanged their releases.
    pub fn swap(&mut self, a: &str, b: &str) {
        let ra = self.slots.remove(a);
        let rb = self.slots.remove(b);
        if let Some(r) = rb {
            self.slots.insert(a.to_owned(), r);
        }
        if let Some(r) = ra {
            self.slots.insert(b.to_owned(), r);
        }
    }

    /// Takes the lock for `owner`, or says who holds it. An expired lock is taken over.
    pub fn try_lock(&mut self, owner: &str, now_unix: i64, ttl_secs: i64) -> Result<(), Lock> {
        if let Some(lock) = &self.lock
            && lock.owner != owner
            && lock.expires_unix > now_unix
        {
            return Err(lock.clone());
        }
        self.lock = Some(Lock {
            owner: owner.to_owned(),
            expires_unix: now_unix + ttl_secs,
        });
        Ok(())
    }
}

/// A hook's outcome as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HookRecord {
    /// Hook name.
    pub name: String,
    /// Whether it succeeded.
    pub ok: bool,
    /// Exit code, when it ran to the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The tail of its output (already masked).
    pub output: String,
    /// Whether its undo ran.
    pub undone: bool,
}

/// The full record written as a Kudu deployment record's message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentRecord {
    /// Release id.
    pub release: String,
    /// Phase reached.
    pub phase: String,
    /// Which release is in which slot.
    pub slots: BTreeMap<String, String>,
    /// The image production ran before (containers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_image: Option<String>,
    /// The last known-good release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_known_good: Option<String>,
    /// Hook results.
    #[serde(default)]
    pub hooks: Vec<HookRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_keep_foreign_tags() {
        let mut journal = JournalTags {
            release: Some("20261122.4".into()),
            phase: Some(Phase::Swapping),
            last_known_good: Some("20261121.1".into()),
            previous_image: Some("contoso.azurecr.io/web:1".into()),
            ..JournalTags::default()
        };
        journal
            .slots
            .insert("production".into(), "20261121.1".into());
        journal.slots.insert("staging".into(), "20261122.4".into());
        journal.try_lock("run-1@agent", 1_000, 600).unwrap();
        journal
            .previous_settings
            .insert("RELEASE_VERSION".into(), Some("20261121.1".into()));
        journal.previous_settings.insert("NEW_FLAG".into(), None);
        let mut tags = BTreeMap::from([("owner".to_owned(), "web-team".to_owned())]);
        journal.apply_to(&mut tags);
        assert_eq!(tags["owner"], "web-team");
        assert_eq!(
            tags["slotrelease.slots"],
            "production=20261121.1,staging=20261122.4"
        );
        assert_eq!(JournalTags::from_tags(&tags), journal);
    }

    #[test]
    fn a_live_lock_of_another_owner_is_refused_and_an_expired_one_taken_over() {
        let mut journal = JournalTags::default();
        journal.try_lock("run-1", 1_000, 600).unwrap();
        let held = journal.try_lock("run-2", 1_200, 600).unwrap_err();
        assert_eq!(held.owner, "run-1");
        journal.try_lock("run-2", 1_601, 600).unwrap();
        assert_eq!(
            journal.lock.as_ref().map(|l| l.owner.as_str()),
            Some("run-2")
        );
    }

    #[test]
    fn swap_exchanges_slot_releases() {
        let mut journal = JournalTags::default();
        journal.slots.insert("production".into(), "a".into());
        journal.slots.insert("staging".into(), "b".into());
        journal.swap("staging", "production");
        assert_eq!(journal.slot_release("production"), Some("b"));
        assert_eq!(journal.slot_release("staging"), Some("a"));
    }

    #[test]
    fn every_phase_parses_back() {
        for phase in Phase::ALL {
            assert_eq!(Phase::parse(phase.as_str()), Some(phase));
        }
    }
}
