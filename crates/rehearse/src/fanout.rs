//! The rehearsal's fan-out: the same release over three apps in two waves (the config's app in wave 0, two
//! copies of it in wave 1), on an emulator of its own, through the engine's `fanout::run_waves` and the same
//! stages a release runs. With `--fail-at watch`, a target of wave 1 turns unhealthy after its swap and is
//! rolled back while the others are reported as released.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use slot_release_emulator::{Emulator, EmulatorOptions, Fault};
use slot_release_engine::fanout::{self, Ran, Target, TargetOutcome, TargetReport};
use slot_release_engine::port::{self, Port};
use slot_release_engine::release::LoadedRelease;
use slot_release_engine::stages::{self, Command, RunResult, StageOptions, Unfinished};
use slot_release_pipelines::Log;
use tokio_util::sync::CancellationToken;

use crate::{CONNECTION, Error, FailAt, RehearseOptions};

/// How the fan-out rehearsal ended.
#[derive(Debug, Clone)]
pub struct FanOutRehearsal {
    /// Every target's outcome.
    pub reports: Vec<TargetReport>,
    /// Whether it ended as meant: every target released, or with `--fail-at watch` the failing target rolled
    /// back and the others released.
    pub as_expected: bool,
    /// A sentence for people.
    pub story: String,
}

/// The three targets: the config's app in wave 0, and two copies of it (`-r1a`, `-r1b`) in wave 1.
fn targets(loaded: &LoadedRelease) -> Vec<Target> {
    let app = &loaded.spec.app;
    // App names are at most 60 characters; the copies add four.
    let base: String = app.name.chars().take(56).collect();
    let base = base.trim_end_matches('-');
    [
        ("ring0", app.name.clone(), 0),
        ("ring1a", format!("{base}-r1a"), 1),
        ("ring1b", format!("{base}-r1b"), 1),
    ]
    .into_iter()
    .map(|(name, app_name, wave)| Target {
        name: name.to_owned(),
        app: app_name,
        resource_group: app.resource_group.clone(),
        subscription: app.subscription.clone(),
        region: None,
        wave,
    })
    .collect()
}

/// Rehearses the fan-out with the package the main rehearsal built (`package`: its path and SHA-256).
pub async fn rehearse(
    loaded: &LoadedRelease,
    opts: &RehearseOptions,
    previous: Option<&Path>,
    package: (Option<PathBuf>, Option<String>),
    log: &Log,
    cancel: &CancellationToken,
) -> Result<FanOutRehearsal, Error> {
    let spec = &loaded.spec;
    let targets = targets(loaded);
    let mut seed = crate::seed(spec, previous);
    for sub in &mut seed.subscriptions {
        for rg in &mut sub.resource_groups {
            let copies: Vec<_> = rg
                .apps
                .iter()
                .filter(|a| a.name == spec.app.name)
                .flat_map(|a| {
                    targets.iter().filter(|t| t.wave > 0).map(|t| {
                        let mut copy = a.clone();
                        copy.name = t.app.clone();
                        copy
                    })
                })
                .collect();
            rg.apps.extend(copies);
        }
    }
    let work_dir = opts.work_dir.join("fan-out");
    let mut emulator_opts = EmulatorOptions::new(seed, work_dir.join("emulator"));
    emulator_opts.deployment_step_delay = std::time::Duration::from_millis(50);
    emulator_opts.images = crate::image_stand_in(spec, &opts.work_dir);
    let emulator = Emulator::start(emulator_opts).await?;
    let mut env: BTreeMap<String, String> = emulator
        .service_connection_env_for(CONNECTION)
        .into_iter()
        .collect();
    env.insert(
        "AGENT_CAINFO".to_owned(),
        emulator.ca_path().display().to_string(),
    );
    let lookup = |name: &str| env.get(name).cloned();
    let mut ports: BTreeMap<String, Arc<dyn Port>> = BTreeMap::new();
    for target in &targets {
        let target_spec = fanout::spec_for(spec, target);
        let port = port::connect(CONNECTION, &lookup, &target_spec.app).map_err(|source| {
            Error::EmulatorConnection {
                source: Box::new(source),
            }
        })?;
        let port: Arc<dyn Port> = Arc::new(port);
        let quiet = log.redirected(Box::new(std::io::sink()));
        crate::prepare_shared_state(&target_spec, &port, &opts.config_dir, &quiet, cancel).await;
        ports.insert(target.name.clone(), port);
    }
    let failing = (opts.fail_at == FailAt::Watch).then(|| targets[2].clone());
    if let Some(target) = &failing {
        emulator.inject(Fault::AppUnhealthyAfterSwap {
            app: target.app.clone(),
        });
    }
    let max_parallel = fanout::FanOut::from_config(&loaded.loaded.config).max_parallel;
    log.info(&format!(
        "Rehearsal fan-out: {} target(s) in 2 waves on a second emulator, at most {max_parallel} at once, with the quick profile's gates and watch: {}",
        targets.len(),
        targets
            .iter()
            .map(|t| format!("{} (wave {}, app {})", t.name, t.wave, t.app))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let run = |target: Target| {
        let target_spec = fanout::spec_for(spec, &target);
        let stage_opts = StageOptions {
            command: Command::Release,
            environment: None,
            release_id: loaded.release_id.clone(),
            release_name: loaded.release_name.clone(),
            package: package.0.clone(),
            package_sha256: package.1.clone(),
            artifact: None,
            target_spec: None,
            build_run: slot_release_pipelines::AgentEnv::from_env().build_run(),
            work_dir: work_dir.join(&target.name),
            hook_dir: opts.config_dir.clone(),
            unfinished: Unfinished::Refuse,
            rollback_to: None,
            lock: stages::LockOptions::default(),
        };
        let (held, lines) = log.held();
        let ctx = stages::Context {
            port: ports[&target.name].clone(),
            log: held,
            cancel: cancel.clone(),
            stopping: opts.stopping.clone(),
        };
        async move {
            let record = stages::run(&ctx, &target_spec, &stage_opts).await;
            // A released target's log would repeat the main rehearsal's; one that did not is shown whole.
            if !record.succeeded() {
                lines.release(log);
            }
            match record.result {
                RunResult::Succeeded => Ran::Succeeded,
                RunResult::Failed => Ran::Failed,
                RunResult::RolledBack => Ran::RolledBack,
                RunResult::Cancelled => Ran::Cancelled,
            }
        }
    };
    let reports = fanout::run_waves(&targets, max_parallel, false, cancel, run, |_| async {
        false
    })
    .await;
    emulator.shutdown().await;
    log.info(fanout::render_table(&reports).trim_end());
    let as_expected = reports.iter().all(|r| match &failing {
        Some(f) if f.name == r.name => r.outcome == TargetOutcome::RolledBack,
        _ => r.outcome == TargetOutcome::Released,
    });
    let released = reports.iter().filter(|r| r.outcome.ok()).count();
    let story = match &failing {
        Some(f) => format!(
            "Fan-out: wave 0 released and watched before wave 1; {} turned unhealthy after its swap ({}), the other {released} target(s) released.",
            f.name,
            reports
                .iter()
                .find(|r| r.name == f.name)
                .map_or("not run", |r| r.outcome.as_str())
        ),
        None => format!(
            "Fan-out: {released} of {} target(s) released, wave 0 before wave 1. Try --fail-at watch to see a target of wave 1 rolled back.",
            reports.len()
        ),
    };
    Ok(FanOutRehearsal {
        reports,
        as_expected,
        story,
    })
}
