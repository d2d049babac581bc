//! The fault matrix: every stage step × every fault the emulator can inject (plus SIGKILL and the
//! agent's SIGINT→SIGTERM cancellation) × when it strikes, generated rather than hand-listed, sampled
//! with a printed seed so any failing case can be replayed alone.
//!
//! `SLOT_RELEASE_MATRIX=full` runs every case; otherwise a seeded sample sized for CI runs.
//! `SLOT_RELEASE_MATRIX_SEED=<n>` fixes the sample; `SLOT_RELEASE_MATRIX_CASE=<id>` runs one case.

mod check;
mod run;

use std::fmt;

pub use check::{Violation, check_case};
pub use run::{CaseReport, RunReport, journal_tags, run_case};

/// A step of a stage the fault is aimed at: each has the requests it makes and the log line that
/// says it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// Reading the live state and taking the lock (the first ARM reads).
    Preflight,
    /// Reading the Key Vault values.
    SecretPull,
    /// Writing the staging slot's app settings.
    SettingsWrite,
    /// Uploading the package to Kudu.
    Upload,
    /// Waiting for the Kudu deployment to finish.
    Deployment,
    /// The `migrate` hook (Kudu command).
    Hook,
    /// The staging slot's health gate.
    HealthGate,
    /// The journal (site tags) writes of the staging stage.
    StagingJournal,
    /// The swap of staging into production.
    Swap,
    /// Watching production after the swap.
    Watch,
    /// The journal writes of the production stage.
    ProductionJournal,
    /// The swap back when a failed watch rolls production back (the case makes production unhealthy
    /// after the swap to force it; `before` means after the forward swap).
    RollbackSwap,
    /// A canary's routing of a share of production's traffic to the staging slot (the case's production
    /// stage is a canary: 10 % gated, 50 % held).
    CanaryRoute,
    /// A canary step's gate on the staging slot while it serves its share.
    CanaryGate,
}

impl Step {
    /// Every step, in the order a release reaches them.
    pub const ALL: [Step; 14] = [
        Step::Preflight,
        Step::SecretPull,
        Step::SettingsWrite,
        Step::Upload,
        Step::Deployment,
        Step::Hook,
        Step::HealthGate,
        Step::StagingJournal,
        Step::Swap,
        Step::Watch,
        Step::ProductionJournal,
        Step::RollbackSwap,
        Step::CanaryRoute,
        Step::CanaryGate,
    ];

    /// The stage the step belongs to.
    pub fn stage(self) -> StageUnderTest {
        match self {
            Step::Swap
            | Step::Watch
            | Step::ProductionJournal
            | Step::RollbackSwap
            | Step::CanaryRoute
            | Step::CanaryGate => StageUnderTest::Production,
            _ => StageUnderTest::Staging,
        }
    }

    /// The name used in case ids.
    pub fn name(self) -> &'static str {
        match self {
            Step::Preflight => "preflight",
            Step::SecretPull => "secret-pull",
            Step::SettingsWrite => "settings-write",
            Step::Upload => "upload",
            Step::Deployment => "deployment",
            Step::Hook => "hook",
            Step::HealthGate => "health-gate",
            Step::StagingJournal => "staging-journal",
            Step::Swap => "swap",
            Step::Watch => "watch",
            Step::ProductionJournal => "production-journal",
            Step::RollbackSwap => "rollback-swap",
            Step::CanaryRoute => "canary-route",
            Step::CanaryGate => "canary-gate",
        }
    }

    /// The requests of this step: (host glob, method, path glob). The app's hosts are named by
    /// placeholders (`{production}`, `{staging}`, `{staging.scm}`), because only the emulator knows
    /// them: its default host names are unique, as ARM gives them.
    pub fn route(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Step::Preflight => ("management.emulator.test", "GET", "*/sites/contoso-web*"),
            Step::SecretPull => ("*.vault.emulator.test", "GET", "*"),
            Step::SettingsWrite => (
                "management.emulator.test",
                "PUT",
                "*/slots/staging/config/appsettings",
            ),
            Step::Upload => ("{staging.scm}", "POST", "/api/publish"),
            Step::Deployment => ("{staging.scm}", "GET", "/api/deployments*"),
            Step::Hook => ("{staging.scm}", "POST", "/api/command"),
            Step::HealthGate => ("{staging}", "GET", "/health"),
            // The journal lives in production's tags, written through the Tags API; the lock's claims
            // go there too, so `body_contains` tells the journal's writes apart.
            Step::StagingJournal | Step::ProductionJournal => (
                "management.emulator.test",
                "PATCH",
                "*/sites/contoso-web/providers/Microsoft.Resources/tags/default",
            ),
            Step::Swap | Step::RollbackSwap => ("management.emulator.test", "POST", "*/slotsswap"),
            Step::Watch => ("{production}", "GET", "/health"),
            // Production's config/web, whose body names the share (putting the rules back names none).
            Step::CanaryRoute => (
                "management.emulator.test",
                "PATCH",
                "*/sites/contoso-web/config/web",
            ),
            // The step's gate probes the page, the preview's gate `/health`.
            Step::CanaryGate => ("{staging}", "GET", "/"),
        }
    }

    /// Text only this step's requests carry in their bodies, for a step whose route others share.
    pub fn body_contains(self) -> Option<&'static str> {
        match self {
            // Every journal write merges the phase; the lock's writes carry only claims.
            Step::StagingJournal | Step::ProductionJournal => Some("\"slotrelease.phase\""),
            Step::CanaryRoute => Some("reroutePercentage"),
            _ => None,
        }
    }

    /// A piece of the log line printed when the step begins, for a step whose own requests cannot say
    /// so: the production prober shares the watch's route (`{production}/health`) from before the run
    /// starts, so a request there proves nothing about the run, not even that node forwards signals
    /// yet; the journal shares its route with the lock, so its first write is told by the line saying
    /// it was written.
    pub fn start_marker(self) -> Option<&'static str> {
        match self {
            Step::Watch => Some("##[group]watch production"),
            Step::StagingJournal => Some("] write journal: staging"),
            Step::ProductionJournal => Some("] write journal: swapping"),
            _ => None,
        }
    }

    /// Whether the step is a canary's: its case releases with `strategy: canary`.
    pub fn is_canary(self) -> bool {
        matches!(self, Step::CanaryRoute | Step::CanaryGate)
    }

    /// A piece of the log line printed when the step has finished.
    pub fn done_marker(self) -> &'static str {
        match self {
            Step::Preflight => "] take the release lock",
            Step::SecretPull => "] pull ",
            Step::SettingsWrite => "setting(s) on staging",
            Step::Upload | Step::Deployment => "] deploy package",
            Step::Hook => "] run hook migrate",
            Step::HealthGate => "] health gate staging",
            Step::StagingJournal => "] write journal: deployed",
            Step::Swap => "] swap staging into production",
            Step::Watch => "] watch production",
            Step::ProductionJournal => "] write journal: swapped",
            Step::RollbackSwap => "] write journal: rolledBack",
            Step::CanaryRoute => "] canary: route 50 %",
            Step::CanaryGate => "] health gate staging/:",
        }
    }
}

/// The stage a case runs under fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageUnderTest {
    Staging,
    Production,
}

impl StageUnderTest {
    /// The task's `command` input.
    pub fn command(self) -> &'static str {
        match self {
            StageUnderTest::Staging => "staging",
            StageUnderTest::Production => "production",
        }
    }
}

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// Every matching request is delayed 1.5 s (three of them).
    LatencySpike,
    /// Three 429s with `Retry-After: 1`.
    ThrottleStorm,
    /// Three 500s.
    ServerErrorBurst,
    /// Two connections closed without an answer.
    ConnectionReset,
    /// One request left unanswered for 5 s, then reset.
    RequestTimeout,
    /// One 409 Conflict.
    Conflict,
    /// The next swap fails at warm-up.
    SwapWarmupFails,
    /// The next deployment to staging fails.
    DeploymentFails,
    /// The staging app answers 500 after its first request.
    AppCrash,
    /// Production answers 500 after the next swap.
    UnhealthyAfterSwap,
    /// Tokens issued from the start of the run live 2 s.
    TokenExpiry,
    /// The task process is killed outright.
    Kill,
    /// The agent cancels: SIGINT, SIGTERM after 7.5 s, a kill after 2.5 s more.
    Cancel,
}

impl FaultKind {
    /// Every fault.
    pub const ALL: [FaultKind; 13] = [
        FaultKind::LatencySpike,
        FaultKind::ThrottleStorm,
        FaultKind::ServerErrorBurst,
        FaultKind::ConnectionReset,
        FaultKind::RequestTimeout,
        FaultKind::Conflict,
        FaultKind::SwapWarmupFails,
        FaultKind::DeploymentFails,
        FaultKind::AppCrash,
        FaultKind::UnhealthyAfterSwap,
        FaultKind::TokenExpiry,
        FaultKind::Kill,
        FaultKind::Cancel,
    ];

    /// The name used in case ids.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::LatencySpike => "latency",
            FaultKind::ThrottleStorm => "429-storm",
            FaultKind::ServerErrorBurst => "5xx-burst",
            FaultKind::ConnectionReset => "reset",
            FaultKind::RequestTimeout => "timeout",
            FaultKind::Conflict => "409",
            FaultKind::SwapWarmupFails => "swap-warmup-fails",
            FaultKind::DeploymentFails => "deployment-fails",
            FaultKind::AppCrash => "app-crash",
            FaultKind::UnhealthyAfterSwap => "unhealthy-after-swap",
            FaultKind::TokenExpiry => "token-expiry",
            FaultKind::Kill => "sigkill",
            FaultKind::Cancel => "cancel",
        }
    }

    /// Whether the fault acts on the requests of a route (rather than on the app or the process).
    pub fn is_transport(self) -> bool {
        matches!(
            self,
            FaultKind::LatencySpike
                | FaultKind::ThrottleStorm
                | FaultKind::ServerErrorBurst
                | FaultKind::ConnectionReset
                | FaultKind::RequestTimeout
                | FaultKind::Conflict
        )
    }

    /// Whether the fault is the process going away rather than something the emulator does.
    pub fn is_signal(self) -> bool {
        matches!(self, FaultKind::Kill | FaultKind::Cancel)
    }

    /// Whether this fault makes sense at this step (and timing).
    pub fn applies(self, step: Step, timing: Timing) -> bool {
        if step.is_canary() {
            // A canary's steps are where a stop must leave a state the next run settles.
            return self.is_signal();
        }
        match self {
            FaultKind::SwapWarmupFails => {
                matches!(step, Step::Swap | Step::RollbackSwap) && timing != Timing::During
            }
            FaultKind::DeploymentFails => {
                matches!(step, Step::Upload | Step::Deployment) && timing == Timing::Before
            }
            FaultKind::AppCrash => step == Step::HealthGate && timing != Timing::After,
            FaultKind::UnhealthyAfterSwap => {
                matches!(step, Step::Swap | Step::Watch) && timing == Timing::Before
            }
            FaultKind::TokenExpiry => timing == Timing::Before,
            _ => true,
        }
    }
}

/// When the fault strikes relative to its step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timing {
    /// Set before the run starts: it hits the step's first requests.
    Before,
    /// Set when the step's first request arrives: it hits the step's retries and polls.
    During,
    /// Set when the step has finished: it hits later requests of the same kind (retries of the
    /// journal, the swap back, the next probes).
    After,
}

impl Timing {
    /// Every timing.
    pub const ALL: [Timing; 3] = [Timing::Before, Timing::During, Timing::After];

    /// The name used in case ids.
    pub fn name(self) -> &'static str {
        match self {
            Timing::Before => "before",
            Timing::During => "during",
            Timing::After => "after",
        }
    }
}

/// One cell of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Case {
    pub step: Step,
    pub fault: FaultKind,
    pub timing: Timing,
}

impl Case {
    /// Parses an id printed by `Display` (`step/fault/timing`).
    pub fn parse(id: &str) -> Option<Case> {
        let mut parts = id.trim().split('/');
        let (step, fault, timing) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        Some(Case {
            step: Step::ALL.into_iter().find(|s| s.name() == step)?,
            fault: FaultKind::ALL.into_iter().find(|f| f.name() == fault)?,
            timing: Timing::ALL.into_iter().find(|t| t.name() == timing)?,
        })
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.step.name(),
            self.fault.name(),
            self.timing.name()
        )
    }
}

/// Every applicable case, in a stable order.
pub fn all_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for step in Step::ALL {
        for fault in FaultKind::ALL {
            for timing in Timing::ALL {
                if fault.applies(step, timing) {
                    cases.push(Case {
                        step,
                        fault,
                        timing,
                    });
                }
            }
        }
    }
    cases
}

/// A small deterministic generator (SplitMix64): the same seed picks the same sample everywhere.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// The CI sample: one SIGKILL case, one cancellation case and `others` other faults, all picked by
/// the seed, no case twice.
pub fn sample(seed: u64, others: usize) -> Vec<Case> {
    let all = all_cases();
    let mut rng = SplitMix::new(seed);
    let mut picked: Vec<Case> = Vec::new();
    let pick = |pool: Vec<Case>, picked: &mut Vec<Case>, rng: &mut SplitMix| {
        let pool: Vec<Case> = pool.into_iter().filter(|c| !picked.contains(c)).collect();
        if !pool.is_empty() {
            picked.push(pool[rng.below(pool.len())]);
        }
    };
    let kills = all.iter().copied().filter(|c| c.fault == FaultKind::Kill);
    pick(kills.collect(), &mut picked, &mut rng);
    let cancels = all.iter().copied().filter(|c| c.fault == FaultKind::Cancel);
    pick(cancels.collect(), &mut picked, &mut rng);
    for _ in 0..others {
        let rest = all.iter().copied().filter(|c| !c.fault.is_signal());
        pick(rest.collect(), &mut picked, &mut rng);
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_id_parses_back_and_ids_are_unique() {
        let all = all_cases();
        let mut ids: Vec<String> = all.iter().map(ToString::to_string).collect();
        for (case, id) in all.iter().zip(&ids) {
            assert_eq!(Case::parse(id), Some(*case));
        }
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), all.len());
        assert_eq!(Case::parse("swap/409/before/x"), None);
    }

    #[test]
    fn the_sample_is_fixed_by_the_seed_and_holds_a_kill_and_a_cancel() {
        let a = sample(7, 3);
        assert_eq!(a, sample(7, 3));
        assert_eq!(a.len(), 5);
        assert!(a.iter().any(|c| c.fault == FaultKind::Kill));
        assert!(a.iter().any(|c| c.fault == FaultKind::Cancel));
        let other_seeds_differ = (8..20).any(|s| sample(s, 3) != a);
        assert!(other_seeds_differ);
    }

    #[test]
    fn every_step_and_fault_appears_in_the_full_matrix() {
        let all = all_cases();
        for step in Step::ALL {
            assert!(all.iter().any(|c| c.step == step), "{step:?}");
        }
        for fault in FaultKind::ALL {
            assert!(all.iter().any(|c| c.fault == fault), "{fault:?}");
        }
    }
}
