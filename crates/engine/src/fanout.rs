//! A release fanned out over several apps (`targets`): which targets a run releases, in which waves,
//! the matrix a pipeline's `strategy.matrix` expands, and each target's view of the release spec.
//!
//! A target differs from the config's `app` only in the app's identity (name, resource group,
//! subscription); everything the lock, the journal and the history key on is that identity, so each
//! target keeps its own lock and journal without any change to the stages.

use std::collections::BTreeMap;

use slot_release_config as cfg;

use crate::error::{Error, Result};
use crate::spec::ReleaseSpec;

/// One app of a fan-out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The name `--target` and the matrix use.
    pub name: String,
    /// The App Service app.
    pub app: String,
    /// Its resource group.
    pub resource_group: String,
    /// Its subscription, when the target or `app` names one.
    pub subscription: Option<String>,
    /// Its region, as written.
    pub region: Option<String>,
    /// The wave it is released in (0 first).
    pub wave: u32,
}

/// The targets of a config and how `--targets` runs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanOut {
    /// Every target, in the config's order; the config's `app` alone when it names none.
    pub targets: Vec<Target>,
    /// How many targets of a wave run at once.
    pub max_parallel: usize,
    /// Whether a failure also rolls back the earlier waves.
    pub rollback_earlier_waves: bool,
    /// Whether the config names `targets` (else the one target is implicit).
    pub explicit: bool,
}

impl FanOut {
    /// The fan-out a loaded config describes (variables already expanded).
    pub fn from_config(config: &cfg::ReleaseConfig) -> FanOut {
        let options = config.fan_out.clone().unwrap_or_default();
        let targets = if config.targets.is_empty() {
            vec![Target {
                name: implicit_name(&config.app.name),
                app: config.app.name.clone(),
                resource_group: config.app.resource_group.clone(),
                subscription: config.app.subscription.clone(),
                region: None,
                wave: 0,
            }]
        } else {
            config
                .targets
                .iter()
                .map(|t| Target {
                    name: t.name.clone(),
                    app: t.app.clone(),
                    resource_group: t.resource_group.clone(),
                    subscription: t
                        .subscription
                        .clone()
                        .or_else(|| config.app.subscription.clone()),
                    region: t.region.clone(),
                    wave: t.wave,
                })
                .collect()
        };
        FanOut {
            targets,
            max_parallel: options.max_parallel.max(1) as usize,
            rollback_earlier_waves: options.rollback_earlier_waves,
            explicit: !config.targets.is_empty(),
        }
    }

    /// The targets named (comma-separated lists are split), in the config's order; every target when
    /// none is named.
    pub fn select(&self, names: &[String]) -> Result<Vec<Target>> {
        let wanted: Vec<&str> = names
            .iter()
            .flat_map(|n| n.split(','))
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect();
        if wanted.is_empty() {
            return Ok(self.targets.clone());
        }
        if let Some(unknown) = wanted
            .iter()
            .find(|w| !self.targets.iter().any(|t| t.name == **w))
        {
            return Err(Error::UnknownTarget {
                name: (*unknown).to_owned(),
                known: self.names(),
            });
        }
        Ok(self
            .targets
            .iter()
            .filter(|t| wanted.contains(&t.name.as_str()))
            .cloned()
            .collect())
    }

    /// The one target named.
    pub fn target(&self, name: &str) -> Result<&Target> {
        self.targets
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| Error::UnknownTarget {
                name: name.to_owned(),
                known: self.names(),
            })
    }

    fn names(&self) -> String {
        self.targets
            .iter()
            .map(|t| format!("`{}`", t.name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The matrix for `strategy.matrix`: `{"<target>": {"target": …, "wave": "0", "app": …,
    /// "resourceGroup": …, "region": …}}`, every target or one wave's. Values are strings, as Azure
    /// Pipelines makes every matrix variable.
    pub fn matrix(&self, wave: Option<u32>) -> Result<serde_json::Value> {
        let mut matrix = serde_json::Map::new();
        for target in self
            .targets
            .iter()
            .filter(|t| wave.is_none_or(|w| t.wave == w))
        {
            matrix.insert(
                target.name.clone(),
                serde_json::json!({
                    "target": target.name,
                    "wave": target.wave.to_string(),
                    "app": target.app,
                    "resourceGroup": target.resource_group,
                    "region": target.region.clone().unwrap_or_default(),
                }),
            );
        }
        match wave {
            Some(wave) if matrix.is_empty() => Err(Error::EmptyWave {
                wave,
                waves: self.wave_count(),
            }),
            _ => Ok(serde_json::Value::Object(matrix)),
        }
    }

    /// How many waves the targets use.
    pub fn wave_count(&self) -> u32 {
        self.targets.iter().map(|t| t.wave + 1).max().unwrap_or(1)
    }
}

/// The selected targets by wave, waves in order.
pub fn waves(targets: &[Target]) -> BTreeMap<u32, Vec<Target>> {
    let mut waves: BTreeMap<u32, Vec<Target>> = BTreeMap::new();
    for target in targets {
        waves.entry(target.wave).or_default().push(target.clone());
    }
    waves
}

/// The release spec as this target sees it: the config's, with the target's app identity.
pub fn spec_for(spec: &ReleaseSpec, target: &Target) -> ReleaseSpec {
    let mut spec = spec.clone();
    spec.app.name = target.app.clone();
    spec.app.resource_group = target.resource_group.clone();
    spec.app.subscription = target.subscription.clone();
    spec
}

/// How one target's part of a fan-out ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TargetOutcome {
    /// Released (and watched) as planned.
    Released,
    /// Its run failed; its stage settled it (production restored or never changed).
    Failed,
    /// Its production turned unhealthy and its stage restored the previous release.
    RolledBack,
    /// Released, then rolled back because a target of a later wave failed
    /// (`fanOut.rollbackEarlierWaves`).
    RolledBackAfterLaterFailure,
    /// Released, but rolling it back after a later failure failed: it runs the new release.
    RollbackFailed,
    /// Not started: an earlier wave failed or the run was cancelled.
    NotStarted,
    /// Cancelled while it ran.
    Cancelled,
}

impl TargetOutcome {
    /// How the summary names it.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetOutcome::Released => "released",
            TargetOutcome::Failed => "failed",
            TargetOutcome::RolledBack => "failed, rolled back",
            TargetOutcome::RolledBackAfterLaterFailure => "rolled back after a later wave failed",
            TargetOutcome::RollbackFailed => "released; its rollback after a later failure failed",
            TargetOutcome::NotStarted => "not started",
            TargetOutcome::Cancelled => "cancelled",
        }
    }

    /// Whether this target ended as the run meant.
    pub fn ok(self) -> bool {
        self == TargetOutcome::Released
    }
}

/// What the per-target run reports back to [`run_waves`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    /// It did what was asked.
    Succeeded,
    /// It failed and its stage left production as it was.
    Failed,
    /// It failed and its stage rolled production back.
    RolledBack,
    /// It was cancelled.
    Cancelled,
}

/// One target's line of a fan-out's report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetReport {
    /// The target.
    pub name: String,
    /// Its app.
    pub app: String,
    /// Its wave.
    pub wave: u32,
    /// How it ended.
    pub outcome: TargetOutcome,
}

/// Runs the targets wave by wave, at most `max_parallel` at once within a wave. A wave starts only when
/// every target of the one before succeeded; after a failure no later wave starts, and with
/// `rollback_earlier_waves` every target this run released is rolled back with `rollback`. The reports
/// are in the targets' order.
pub async fn run_waves<R, RF, B, BF>(
    targets: &[Target],
    max_parallel: usize,
    rollback_earlier_waves: bool,
    cancel: &tokio_util::sync::CancellationToken,
    run: R,
    rollback: B,
) -> Vec<TargetReport>
where
    R: Fn(Target) -> RF,
    RF: std::future::Future<Output = Ran>,
    B: Fn(Target) -> BF,
    BF: std::future::Future<Output = bool>,
{
    use futures::StreamExt as _;
    let mut outcomes: BTreeMap<String, TargetOutcome> = BTreeMap::new();
    let mut released: Vec<Target> = Vec::new();
    let mut stopped = false;
    for (_, wave) in waves(targets) {
        if stopped || cancel.is_cancelled() {
            for target in wave {
                outcomes.insert(target.name.clone(), TargetOutcome::NotStarted);
            }
            continue;
        }
        let results: Vec<(Target, Ran)> = futures::stream::iter(wave)
            .map(|target| {
                let ran = run(target.clone());
                async move { (target, ran.await) }
            })
            .buffer_unordered(max_parallel.max(1))
            .collect()
            .await;
        for (target, ran) in results {
            let outcome = match ran {
                Ran::Succeeded => {
                    released.push(target.clone());
                    TargetOutcome::Released
                }
                Ran::Failed => TargetOutcome::Failed,
                Ran::RolledBack => TargetOutcome::RolledBack,
                Ran::Cancelled => TargetOutcome::Cancelled,
            };
            stopped |= !outcome.ok();
            outcomes.insert(target.name.clone(), outcome);
        }
    }
    if stopped && rollback_earlier_waves && !cancel.is_cancelled() {
        let rolled: Vec<(Target, bool)> = futures::stream::iter(released)
            .map(|target| {
                let undone = rollback(target.clone());
                async move { (target, undone.await) }
            })
            .buffer_unordered(max_parallel.max(1))
            .collect()
            .await;
        for (target, undone) in rolled {
            let outcome = if undone {
                TargetOutcome::RolledBackAfterLaterFailure
            } else {
                TargetOutcome::RollbackFailed
            };
            outcomes.insert(target.name.clone(), outcome);
        }
    }
    targets
        .iter()
        .map(|t| TargetReport {
            name: t.name.clone(),
            app: t.app.clone(),
            wave: t.wave,
            outcome: outcomes
                .get(&t.name)
                .copied()
                .unwrap_or(TargetOutcome::NotStarted),
        })
        .collect()
}

/// The fan-out's table for the log and the stage summary: one row per target.
pub fn render_table(reports: &[TargetReport]) -> String {
    let mut out = String::from("| Target | App | Wave | Outcome |\n|---|---|---|---|\n");
    for r in reports {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            r.name,
            r.app,
            r.wave,
            r.outcome.as_str()
        ));
    }
    out
}

/// A matrix key for the config's own app: matrix job names take letters, digits and `_` only.
fn implicit_name(app: &str) -> String {
    let name: String = app
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        name
    } else {
        format!("app_{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(targets: &str) -> cfg::ReleaseConfig {
        let text = format!(
            "version: 1\napp: {{name: web-app, resourceGroup: rg, kind: container}}\n\
             image: {{repository: contoso.azurecr.io/web, tag: '1'}}\n\
             environments: {{staging: {{slot: staging}}, production: {{slot: production}}}}\n\
             stages:\n  staging: {{environment: staging, healthCheck: {{path: /health}}}}\n  \
             production: {{environment: production, sourceSlot: staging, watch: {{duration: 1m, healthCheck: {{path: /health}}}}}}\n\
             {targets}"
        );
        match cfg::load_str("release.yml", &text, &cfg::LoadOptions::default()) {
            Ok(loaded) => loaded.config,
            Err(problems) => panic!("{problems}"),
        }
    }

    #[test]
    fn a_config_without_targets_is_its_own_single_target() {
        let fan = FanOut::from_config(&config(""));
        assert!(!fan.explicit);
        assert_eq!(fan.targets.len(), 1);
        assert_eq!(fan.targets[0].name, "web_app");
        assert_eq!(fan.targets[0].app, "web-app");
        assert_eq!(fan.max_parallel, 4);
    }

    #[test]
    fn selection_keeps_config_order_and_refuses_unknown_names() {
        let fan = FanOut::from_config(&config(
            "targets:\n  - {name: a, app: web-a, resourceGroup: rg-a}\n  \
             - {name: b, app: web-b, resourceGroup: rg-b, wave: 1}\n  \
             - {name: c, app: web-c, resourceGroup: rg-c, wave: 1}\n\
             fanOut: {maxParallel: 2, rollbackEarlierWaves: true}\n",
        ));
        let picked = fan.select(&["c,a".to_owned()]).unwrap();
        assert_eq!(
            picked.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["a", "c"]
        );
        let err = fan.select(&["a".to_owned(), "z".to_owned()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no target `z` in the config (its targets: `a`, `b`, `c`)"
        );
        assert_eq!(fan.max_parallel, 2);
        assert!(fan.rollback_earlier_waves);
        let by_wave = waves(&fan.select(&[]).unwrap());
        assert_eq!(by_wave.keys().copied().collect::<Vec<_>>(), [0, 1]);
        assert_eq!(by_wave[&1].len(), 2);
        assert_eq!(fan.matrix(Some(1)).unwrap().as_object().unwrap().len(), 2);
        assert!(matches!(
            fan.matrix(Some(2)),
            Err(Error::EmptyWave { wave: 2, waves: 2 })
        ));
    }

    fn three() -> Vec<Target> {
        ["a", "b", "c"]
            .iter()
            .zip([0, 1, 1])
            .map(|(n, wave)| Target {
                name: (*n).to_owned(),
                app: format!("web-{n}"),
                resource_group: "rg".to_owned(),
                subscription: None,
                region: None,
                wave,
            })
            .collect()
    }

    async fn fan(
        fails: &'static str,
        rollback_earlier: bool,
        max_parallel: usize,
    ) -> (Vec<TargetReport>, Vec<String>, usize) {
        let started = std::sync::Mutex::new(Vec::new());
        let running = std::sync::atomic::AtomicUsize::new(0);
        let peak = std::sync::atomic::AtomicUsize::new(0);
        let cancel = tokio_util::sync::CancellationToken::new();
        let reports = run_waves(
            &three(),
            max_parallel,
            rollback_earlier,
            &cancel,
            |t| {
                started.lock().unwrap().push(t.name.clone());
                let (running, peak) = (&running, &peak);
                async move {
                    use std::sync::atomic::Ordering::SeqCst;
                    let now = running.fetch_add(1, SeqCst) + 1;
                    peak.fetch_max(now, SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    running.fetch_sub(1, SeqCst);
                    if t.name == fails {
                        Ran::RolledBack
                    } else {
                        Ran::Succeeded
                    }
                }
            },
            |_| async { true },
        )
        .await;
        let started = started.into_inner().unwrap();
        (reports, started, peak.into_inner())
    }

    fn outcomes(reports: &[TargetReport]) -> Vec<TargetOutcome> {
        reports.iter().map(|r| r.outcome).collect()
    }

    #[tokio::test]
    async fn a_failed_wave_stops_later_waves_and_rolls_back_earlier_ones_when_asked() {
        let (reports, started, _) = fan("a", true, 4).await;
        assert_eq!(started, ["a"], "wave 1 must not start after wave 0 failed");
        assert_eq!(
            outcomes(&reports),
            [
                TargetOutcome::RolledBack,
                TargetOutcome::NotStarted,
                TargetOutcome::NotStarted
            ]
        );
        let (reports, _, _) = fan("c", true, 4).await;
        assert_eq!(
            outcomes(&reports),
            [
                TargetOutcome::RolledBackAfterLaterFailure,
                TargetOutcome::RolledBackAfterLaterFailure,
                TargetOutcome::RolledBack
            ]
        );
        let (reports, _, _) = fan("c", false, 4).await;
        assert_eq!(
            outcomes(&reports),
            [
                TargetOutcome::Released,
                TargetOutcome::Released,
                TargetOutcome::RolledBack
            ]
        );
        let table = render_table(&reports);
        assert!(
            table.contains("| c | web-c | 1 | failed, rolled back |"),
            "{table}"
        );
    }

    #[tokio::test]
    async fn a_wave_runs_its_targets_concurrently_up_to_the_bound() {
        let (_, _, peak) = fan("", false, 4).await;
        assert_eq!(peak, 2, "both targets of wave 1 at once");
        let (_, _, peak) = fan("", false, 1).await;
        assert_eq!(peak, 1, "maxParallel 1 runs one at a time");
    }
}
