//! Fault injection: the failures Azure produces (latency, throttling, 5xx, resets, hangs, failed
//! swaps and deployments, apps turning unhealthy), set at start or at run time. The same JSON is
//! accepted by `Emulator::inject`, the admin endpoint and the CLI.

use serde::{Deserialize, Serialize};

/// Which requests a transport-level fault applies to. Every field that is set must match; a
/// pattern is a case-insensitive glob where `*` matches any run of characters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteMatch {
    /// Host name without port, e.g. `management.emulator.test` or `*.vault.emulator.test`.
    #[serde(default)]
    pub host: Option<String>,
    /// HTTP method, e.g. `POST`.
    #[serde(default)]
    pub method: Option<String>,
    /// Path without query, e.g. `*/slotsswap`.
    #[serde(default)]
    pub path: Option<String>,
    /// Text the request's body must contain (exactly, case included), for requests that share a route
    /// but not a purpose: the release lock's and the journal's writes go to the same Tags API. Only a
    /// body that declares its length, up to [`BODY_MATCH_LIMIT`], is read for it; any other never matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
}

/// The largest request body read to match `bodyContains` (ARM and Key Vault bodies are far smaller;
/// packages are never read).
pub const BODY_MATCH_LIMIT: usize = 1 << 20;

impl RouteMatch {
    /// True when the request's host, method and path match every pattern that is set (the body
    /// pattern, which a request log cannot show, is left out).
    pub fn matches(&self, host: &str, method: &str, path: &str) -> bool {
        self.host.as_deref().is_none_or(|p| glob_match(p, host))
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.path.as_deref().is_none_or(|p| glob_match(p, path))
    }

    /// True when the request matches every pattern, its body included (`None`: the body was not read).
    pub fn matches_request(
        &self,
        host: &str,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> bool {
        self.matches(host, method, path)
            && self.body_contains.as_deref().is_none_or(|needle| {
                body.is_some_and(|b| {
                    b.windows(needle.len().max(1))
                        .any(|w| w == needle.as_bytes())
                })
            })
    }
}

/// How many matching requests a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scope {
    /// Hit only the next N matching requests (then the fault is spent).
    #[serde(default)]
    pub count: Option<u32>,
    /// Hit this share (0.0–1.0) of matching requests, chosen at random.
    #[serde(default)]
    pub share: Option<f64>,
}

/// One injected fault.
// `deny_unknown_fields` is not used here because serde does not support it together with the
// flattened `scope`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Fault {
    /// Delay matching requests before they are handled.
    Latency {
        /// Requests it applies to.
        #[serde(default)]
        route: RouteMatch,
        /// The delay in milliseconds.
        millis: u64,
        /// How many requests; every matching one when absent.
        #[serde(default)]
        count: Option<u32>,
    },
    /// Answer matching requests with this status (429, 500, 503, ...) and an Azure error body.
    Status {
        /// Requests it applies to.
        #[serde(default)]
        route: RouteMatch,
        /// The HTTP status.
        status: u16,
        /// `Retry-After` seconds to send with it.
        #[serde(default)]
        retry_after_secs: Option<u64>,
        /// Next N or a share; every matching request when both are absent.
        #[serde(default, flatten)]
        scope: Option<Scope>,
    },
    /// Answer matching requests with this status and an Azure error body carrying `code` and
    /// `message` as given: hostile or echoing text, the way a real service quotes a rejected value.
    Refuse {
        /// Requests it applies to.
        #[serde(default)]
        route: RouteMatch,
        /// The HTTP status.
        status: u16,
        /// The Azure error code.
        code: String,
        /// The Azure error message.
        message: String,
        /// Next N or a share; every matching request when both are absent.
        #[serde(default, flatten)]
        scope: Option<Scope>,
    },
    /// Close the connection without a complete response.
    ConnectionReset {
        /// Requests it applies to.
        #[serde(default)]
        route: RouteMatch,
        /// Next N or a share.
        #[serde(default, flatten)]
        scope: Option<Scope>,
    },
    /// Never answer (until the client gives up or `millis` pass).
    Hang {
        /// Requests it applies to.
        #[serde(default)]
        route: RouteMatch,
        /// How long to hang; 10 minutes when absent.
        #[serde(default)]
        millis: Option<u64>,
        /// Next N or a share.
        #[serde(default, flatten)]
        scope: Option<Scope>,
    },
    /// The next swap involving this app fails at warm-up and is aborted.
    SwapWarmupFails {
        /// App name.
        app: String,
    },
    /// The next swap involving this app stays in progress for `millis`, then fails, changing nothing.
    SwapTimesOut {
        /// App name.
        app: String,
        /// How long the operation stays in progress.
        millis: u64,
    },
    /// The next deployment to this app (or only this slot) fails with status 3 and a log.
    DeploymentFails {
        /// App name.
        app: String,
        /// Slot name; any slot when absent.
        #[serde(default)]
        slot: Option<String>,
    },
    /// The app process of this slot answers 500 once it has served `after_requests` requests.
    AppUnhealthyAfterRequests {
        /// App name.
        app: String,
        /// Slot name.
        slot: String,
        /// Requests served healthily first.
        after_requests: u32,
    },
    /// The app process of this slot answers 500 to `percent` % of its requests, spread evenly (at 20,
    /// every fifth), but never to `except_path`: a release broken for some users whose health path
    /// still passes, which only a gate that judges the slot's traffic catches.
    AppFailsShare {
        /// App name.
        app: String,
        /// Slot name.
        slot: String,
        /// The share of requests failed, 0 to 100.
        percent: u8,
        /// A path (e.g. the health check's) whose requests are always served.
        #[serde(default)]
        except_path: Option<String>,
    },
    /// After the next swap, the slot that received the swapped-in content (the target, usually
    /// production) answers 500 until it is swapped or deployed again.
    AppUnhealthyAfterSwap {
        /// App name.
        app: String,
    },
    /// Kudu `/api/command` on this app returns this exit code without running the command.
    KuduCommandFails {
        /// App name.
        app: String,
        /// Exit code to report.
        #[serde(default = "default_exit_code")]
        exit_code: i32,
        /// How many commands; every one when absent.
        #[serde(default)]
        count: Option<u32>,
    },
}

fn default_exit_code() -> i32 {
    1
}

impl Fault {
    /// The requests a transport-level fault applies to (`None` for faults that act otherwise).
    fn route(&self) -> Option<&RouteMatch> {
        match self {
            Fault::Latency { route, .. }
            | Fault::Status { route, .. }
            | Fault::Refuse { route, .. }
            | Fault::ConnectionReset { route, .. }
            | Fault::Hang { route, .. } => Some(route),
            _ => None,
        }
    }
}

/// A case-insensitive glob where `*` matches any run of characters (including none). Compared
/// byte by byte, without allocating: it runs for every fault on every request, and a benchmark's
/// thousands of Key Vault reads at once made the copies show in a profile. Bytes match as the
/// characters do: a literal run of UTF-8 matches only at character boundaries, and only ASCII
/// letters fold case.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi].eq_ignore_ascii_case(&t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == b'*')
}

/// A transport fault picked for one request.
#[derive(Debug, Clone)]
pub(crate) enum TransportAction {
    Delay(u64),
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    Refuse {
        status: u16,
        code: String,
        message: String,
    },
    Reset,
    Hang(u64),
}

/// The active faults with their remaining counts.
#[derive(Debug, Default)]
pub(crate) struct FaultSet {
    faults: Vec<(Fault, Option<u32>)>,
    /// Requests counted per `AppUnhealthyAfterRequests` and `AppFailsShare` fault (same index as
    /// `faults`), so each counts from the moment it was injected.
    hits: Vec<u64>,
}

impl FaultSet {
    pub(crate) fn add(&mut self, fault: Fault) {
        let remaining = match &fault {
            Fault::Latency { count, .. } | Fault::KuduCommandFails { count, .. } => *count,
            Fault::Status { scope, .. }
            | Fault::Refuse { scope, .. }
            | Fault::ConnectionReset { scope, .. }
            | Fault::Hang { scope, .. } => scope.and_then(|s| s.count),
            _ => None,
        };
        self.faults.push((fault, remaining));
        self.hits.push(0);
    }

    pub(crate) fn clear(&mut self) {
        self.faults.clear();
        self.hits.clear();
    }

    /// Counts one request to an app slot (at `path`) and says whether an `AppUnhealthyAfterRequests`
    /// or `AppFailsShare` fault makes it fail.
    pub(crate) fn app_request_unhealthy(
        &mut self,
        app_name: &str,
        slot_name: &str,
        path: &str,
    ) -> bool {
        let mut unhealthy = false;
        for (i, (fault, _)) in self.faults.iter().enumerate() {
            let Some(h) = self.hits.get_mut(i) else {
                continue;
            };
            match fault {
                Fault::AppUnhealthyAfterRequests {
                    app,
                    slot,
                    after_requests,
                } if app.eq_ignore_ascii_case(app_name) && slot.eq_ignore_ascii_case(slot_name) => {
                    *h += 1;
                    unhealthy |= *h > u64::from(*after_requests);
                }
                Fault::AppFailsShare {
                    app,
                    slot,
                    percent,
                    except_path,
                } if app.eq_ignore_ascii_case(app_name)
                    && slot.eq_ignore_ascii_case(slot_name)
                    && except_path.as_deref() != Some(path) =>
                {
                    // Request n fails when n × percent crosses the next hundred: exactly that share.
                    let percent = u64::from((*percent).min(100));
                    *h += 1;
                    unhealthy |= *h * percent / 100 > (*h - 1) * percent / 100;
                }
                _ => {}
            }
        }
        unhealthy
    }

    pub(crate) fn list(&self) -> Vec<Fault> {
        self.faults.iter().map(|(f, _)| f.clone()).collect()
    }

    /// Whether a fault still in force needs the request's body to tell if it applies.
    pub(crate) fn wants_body(&self, host: &str, method: &str, path: &str) -> bool {
        self.faults.iter().any(|(fault, remaining)| {
            *remaining != Some(0)
                && fault
                    .route()
                    .is_some_and(|r| r.body_contains.is_some() && r.matches(host, method, path))
        })
    }

    /// The transport actions for a request, in order (latency first), consuming counts. `body` is the
    /// request's body when a fault asked for it ([`FaultSet::wants_body`]).
    pub(crate) fn transport_actions(
        &mut self,
        host: &str,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Vec<TransportAction> {
        let mut out = Vec::new();
        for (fault, remaining) in &mut self.faults {
            if *remaining == Some(0) {
                continue;
            }
            let (route, share, action) = match fault {
                Fault::Latency { route, millis, .. } => {
                    (route, None, TransportAction::Delay(*millis))
                }
                Fault::Status {
                    route,
                    status,
                    retry_after_secs,
                    scope,
                } => (
                    route,
                    scope.and_then(|s| s.share),
                    TransportAction::Status {
                        status: *status,
                        retry_after: *retry_after_secs,
                    },
                ),
                Fault::Refuse {
                    route,
                    status,
                    code,
                    message,
                    scope,
                } => (
                    route,
                    scope.and_then(|s| s.share),
                    TransportAction::Refuse {
                        status: *status,
                        code: code.clone(),
                        message: message.clone(),
                    },
                ),
                Fault::ConnectionReset { route, scope } => {
                    (route, scope.and_then(|s| s.share), TransportAction::Reset)
                }
                Fault::Hang {
                    route,
                    millis,
                    scope,
                } => (
                    route,
                    scope.and_then(|s| s.share),
                    TransportAction::Hang(millis.unwrap_or(600_000)),
                ),
                _ => continue,
            };
            if !route.matches_request(host, method, path, body) {
                continue;
            }
            if let Some(share) = share
                && rand::random::<f64>() >= share
            {
                continue;
            }
            if let Some(n) = remaining {
                *n -= 1;
            }
            let terminal = !matches!(action, TransportAction::Delay(_));
            out.push(action);
            if terminal {
                break;
            }
        }
        out
    }

    /// Takes (consumes) the first fault the predicate selects, returning it.
    pub(crate) fn take(&mut self, pick: impl Fn(&Fault) -> bool) -> Option<Fault> {
        let idx = self
            .faults
            .iter()
            .position(|(f, remaining)| *remaining != Some(0) && pick(f))?;
        let (fault, remaining) = &mut self.faults[idx];
        let fault = fault.clone();
        match remaining {
            Some(n) => *n -= 1,
            // One-shot faults without a count are spent on first use, except the ones that
            // describe a standing condition.
            None => {
                if !matches!(fault, Fault::KuduCommandFails { .. }) {
                    self.faults.remove(idx);
                    self.hits.remove(idx);
                }
            }
        }
        Some(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_of_a_slots_requests_fails_evenly_but_never_its_excepted_path() {
        let json = r#"{"kind":"appFailsShare","app":"web","slot":"staging","percent":20,"exceptPath":"/health"}"#;
        let mut set = FaultSet::default();
        set.add(serde_json::from_str(json).expect("valid fault json"));
        let failed: Vec<bool> = (0..10)
            .map(|_| set.app_request_unhealthy("web", "staging", "/"))
            .collect();
        assert_eq!(
            failed,
            [
                false, false, false, false, true, false, false, false, false, true
            ]
        );
        assert!((0..50).all(|_| !set.app_request_unhealthy("web", "staging", "/health")));
        assert!((0..50).all(|_| !set.app_request_unhealthy("web", "production", "/")));
    }

    #[test]
    fn glob_matches_stars_and_case() {
        assert!(glob_match(
            "*.vault.emulator.test",
            "KV.vault.emulator.test"
        ));
        assert!(glob_match("*/slotsswap", "/subscriptions/x/slotsswap"));
        assert!(!glob_match(
            "*/slotsswap",
            "/subscriptions/x/slotsswap/more"
        ));
        assert!(glob_match("a*b*c", "aXXbYc"));
        assert!(!glob_match("a*b*c", "aXXcYb"));
    }

    #[test]
    fn a_body_pattern_picks_requests_that_share_a_route() {
        let json = r#"{"kind":"status","route":{"method":"PATCH","path":"*/tags/default","bodyContains":"slotrelease.phase"},"status":500,"count":1}"#;
        let mut set = FaultSet::default();
        set.add(serde_json::from_str(json).expect("valid fault json"));
        let path = "/subscriptions/s/providers/Microsoft.Resources/tags/default";
        assert!(set.wants_body("management.emulator.test", "PATCH", path));
        assert!(!set.wants_body("management.emulator.test", "GET", path));
        let lock = br#"{"operation":"Merge","properties":{"tags":{"slotrelease.claim.ab":"{}"}}}"#;
        let journal =
            br#"{"operation":"Merge","properties":{"tags":{"slotrelease.phase":"staged"}}}"#;
        let host = "management.emulator.test";
        assert!(
            set.transport_actions(host, "PATCH", path, Some(lock))
                .is_empty()
        );
        assert!(set.transport_actions(host, "PATCH", path, None).is_empty());
        assert_eq!(
            set.transport_actions(host, "PATCH", path, Some(journal))
                .len(),
            1
        );
        // Spent: the next journal write goes through, and no body is wanted any more.
        assert!(
            set.transport_actions(host, "PATCH", path, Some(journal))
                .is_empty()
        );
        assert!(!set.wants_body(host, "PATCH", path));
    }

    #[test]
    fn fault_json_round_trips() {
        let json = r#"{"kind":"status","route":{"host":"management.emulator.test"},"status":429,"retryAfterSecs":1,"count":2}"#;
        let fault: Fault = serde_json::from_str(json).expect("valid fault json");
        let mut set = FaultSet::default();
        set.add(fault);
        let hits: Vec<_> = (0..3)
            .map(|_| {
                set.transport_actions("management.emulator.test", "GET", "/x", None)
                    .len()
            })
            .collect();
        assert_eq!(hits, vec![1, 1, 0]);
    }
}
