//! The model tests' release: its config, the app before a case (production runs r1, which passed its
//! watch), and one stage run against the in-memory App Service as the binary runs it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use slot_release_engine::journal::{DeploymentRecord, JournalTags, Phase};
use slot_release_engine::release::{self, LoadRequest, LoadedRelease};
use slot_release_engine::stages::{
    self, Command, Context, LockOptions, ReleaseRecord, StageOptions, Stopping, Unfinished,
};
use slot_release_engine::state::{ConnectionStringState, RoutingRule, SlotName};
use slot_release_pipelines::{Log, OutputMode};
use tokio_util::sync::CancellationToken;

use super::memory::{MemPort, MemSlot, World};

pub const CONFIG: &str = r#"
version: 1
app:
  name: model-web
  resourceGroup: model-rg
  kind: code
  stack: PYTHON|3.12
  startupCommand: python3 app.py
package:
  root: .
environments:
  staging:
    slot: staging
    settings:
      APP_ENV: staging
      CACHE_SIZE: "8"
      RELEASE_VERSION: $(Build.BuildNumber)
    connectionStrings:
      Db:
        value: Server=staging-db
        type: SQLAzure
      Bus:
        value: Endpoint=sb://bus/
        type: ServiceBus
  production:
    slot: production
    settings:
      APP_ENV: production
      CACHE_SIZE: "64"
      RELEASE_VERSION: $(Build.BuildNumber)
    connectionStrings:
      Db:
        value: Server=production-db
        type: SQLAzure
      Bus:
        value: Endpoint=sb://bus/
        type: ServiceBus
stages:
  staging:
    environment: staging
    healthCheck:
      path: /health
      statuses: [200]
      interval: 1s
      successes: 2
      timeout: 20s
  production:
    environment: production
    sourceSlot: staging
    strategy: swap
    watch:
      duration: 4s
      maxFailures: 1
      healthCheck:
        path: /health
        statuses: [200]
        interval: 1s
    rollback: automatic
  rollback:
    environment: production
    restore: swapBack
"#;

pub struct Fixture {
    pub loaded: LoadedRelease,
    pub package: std::path::PathBuf,
    pub dir: tempfile::TempDir,
}

/// The canary the model runs instead of a plain swap: 10 % gated, 50 % held, then the swap.
const CANARY: &str = "    strategy: canary
    canary:
      steps:
        - percent: 10
          healthCheck:
            path: /health
            interval: 1s
            successes: 2
            failAfter: 2
            timeout: 10s
        - percent: 50
          pause: 2s
";

pub fn fixture() -> Fixture {
    fixture_of(CONFIG)
}

/// The model's release as a canary.
pub fn canary_fixture() -> Fixture {
    assert!(CONFIG.contains("    strategy: swap\n"));
    fixture_of(&CONFIG.replace("    strategy: swap\n", CANARY))
}

/// A rule of another slot's that every release must leave exactly as it was: it names no slot of the
/// model's app, so it routes nothing the model serves.
pub fn blue_rule() -> RoutingRule {
    let mut other = serde_json::Map::new();
    other.insert("changeStep".into(), serde_json::json!(1.5));
    RoutingRule {
        name: "blue".into(),
        host: "blue.memory.test".into(),
        percent: 2.5,
        other,
    }
}

fn fixture_of(text: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("release.yml");
    std::fs::write(&config, text).unwrap();
    std::fs::write(dir.path().join("app.py"), "print('hi')\n").unwrap();
    let package = dir.path().join("package.zip");
    std::fs::write(&package, b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0").unwrap();
    let loaded = release::load(
        &config,
        &LoadRequest {
            release_id: Some("model".into()),
            ..LoadRequest::default()
        },
    )
    .unwrap();
    Fixture {
        loaded,
        package,
        dir,
    }
}

/// Production's settings before the case.
pub fn production_settings() -> BTreeMap<String, String> {
    BTreeMap::from([("APP_ENV".into(), "production".into())])
}

/// Production's connection strings before the case: a sticky `Db` the release writes over before its
/// swap (its config says `Server=production-db`).
pub fn production_connection_strings() -> BTreeMap<String, ConnectionStringState> {
    BTreeMap::from([(
        "Db".into(),
        ConnectionStringState {
            kind: "SQLAzure".into(),
            value: "Server=previous-db".into(),
        },
    )])
}

pub fn staging() -> SlotName {
    SlotName::new("staging").expect("a valid slot name")
}

/// The app before the case: production runs r1, which passed its watch.
pub fn world(seed: u64) -> World {
    let record = |phase: &str| DeploymentRecord {
        release: "r1".into(),
        release_name: "20261203.1".into(),
        phase: phase.into(),
        ..DeploymentRecord::default()
    };
    let mut w = World {
        rng: seed | 1,
        ..World::default()
    };
    w.slots.insert(
        SlotName::production(),
        MemSlot {
            settings: production_settings(),
            connection_strings: production_connection_strings(),
            linux_fx: Some("PYTHON|3.12".into()),
            startup: Some("python3 app.py".into()),
            records: vec![record("released")],
            ..MemSlot::default()
        },
    );
    w.slots.insert(staging(), MemSlot::default());
    w.sticky.insert("APP_ENV".into());
    w.sticky_connection_strings.insert("Db".into());
    w.routing = vec![blue_rule()];
    let mut journal = JournalTags {
        release: Some("r1".into()),
        phase: Some(Phase::Released),
        last_known_good: Some("r1".into()),
        ..JournalTags::default()
    };
    journal.slots.insert(SlotName::production(), "r1".into());
    journal.apply_to(&mut w.tags);
    w.gated.insert("r1".into());
    w.production_history.push(Some("r1".into()));
    w
}

/// Who runs a stage: the release's identity, its build number and the job's attempt.
pub struct Run {
    pub id: String,
    pub name: String,
    pub attempt: u32,
}

/// Runs one stage as run `run` (its calls are logged and faulted under that number).
pub async fn run_stage(
    fx: &Fixture,
    world: &Arc<Mutex<World>>,
    run: u32,
    command: Command,
    who: &Run,
    epoch: tokio::time::Instant,
) -> ReleaseRecord {
    let stop = (CancellationToken::new(), Stopping::default());
    run_stage_with(fx, world, run, command, who, epoch, stop).await
}

/// [`run_stage`] with the run's cancellation token and the deadline of its stop given.
pub async fn run_stage_with(
    fx: &Fixture,
    world: &Arc<Mutex<World>>,
    run: u32,
    command: Command,
    who: &Run,
    epoch: tokio::time::Instant,
    (cancel, stopping): (CancellationToken, Stopping),
) -> ReleaseRecord {
    let port = MemPort {
        world: world.clone(),
        run,
        cancel: cancel.clone(),
        epoch,
    };
    let ctx = Context {
        port: Arc::new(port),
        log: Log::new(OutputMode::Plain, Box::new(std::io::sink())),
        cancel,
        stopping,
    };
    let mut spec = fx.loaded.spec.clone();
    // The build number reaches the app's settings, as `$(Build.BuildNumber)` would.
    for env in spec.environments.values_mut() {
        env.settings
            .insert("RELEASE_VERSION".into(), who.name.clone());
    }
    let opts = StageOptions {
        command,
        environment: None,
        release_id: who.id.clone(),
        release_name: who.name.clone(),
        package: Some(fx.package.clone()),
        package_sha256: None,
        artifact: None,
        target_spec: None,
        build_run: Default::default(),
        work_dir: fx.dir.path().join(format!("work-{run}")),
        hook_dir: fx.dir.path().to_path_buf(),
        unfinished: Unfinished::Refuse,
        rollback_to: None,
        lock: LockOptions {
            ttl: Duration::from_secs(60),
            take_over: None,
            attempt: Some(who.attempt),
            holder: BTreeMap::from([("run".into(), format!("run {run}"))]),
        },
    };
    stages::run(&ctx, &spec, &opts).await
}
