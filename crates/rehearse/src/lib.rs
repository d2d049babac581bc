//! Rehearsal: the whole release against an embedded emulator seeded from the config, with the real
//! package, the real hooks and the real app process, so a newcomer (or a pull request) sees the story.
//!
//! The emulator gets the config's subscription, resource group and app (production running the previous
//! release), its vaults with generated dummy secrets, and a service connection; the engine then runs the
//! same `release` code path as a pipeline would, through the same Azure client. A fan-out of the same release
//! over three apps in two waves follows on an emulator of its own (`fanout`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use slot_release_emulator::{self as emu, Emulator, EmulatorOptions, Fault, Seed};
use slot_release_pipelines::Log;
use tokio_util::sync::CancellationToken;

use slot_release_engine::artifact;
use slot_release_engine::hooks::{CommandKind, HookEnvironment, HookRunner, HookRunnerConfig};
use slot_release_engine::package::PackageSpec;
use slot_release_engine::port::{self, Port, SlotCommand};
use slot_release_engine::release::LoadedRelease;
use slot_release_engine::spec::{AppKind, ReleaseSpec};
use slot_release_engine::stages::{
    self, Command, ReleaseRecord, RunResult, StageOptions, Unfinished,
};
use slot_release_engine::state::SlotName;

mod canary;
mod error;
pub mod fanout;
pub mod quick;
pub use error::Error;

const TENANT: &str = "72f988bf-0000-0000-0000-00000000e0e0";
const SUBSCRIPTION: &str = "00000000-0000-0000-0000-00000000e0e0";
const CLIENT: &str = "11111111-0000-0000-0000-00000000e0e0";
/// The id the rehearsal gives the release already in production.
pub const PREVIOUS: &str = "previous";
const CONNECTION: &str = "5a7c3f10-0000-0000-0000-00000000e0e0";

/// Which failure a rehearsal shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailAt {
    /// No failure: production ends on the new release.
    #[default]
    None,
    /// The staging slot never turns healthy: hooks are undone, nothing is swapped.
    Health,
    /// The migration hook fails: nothing after it runs, production is untouched.
    Migration,
    /// Production turns unhealthy after the swap: it is swapped back automatically.
    Watch,
    /// The release is rehearsed as a canary and fails once production routes a share of its traffic to
    /// it: the share goes back to 0 %, the routing rules as they were, nothing is swapped.
    Canary,
}

impl FromStr for FailAt {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" | "" => Ok(FailAt::None),
            "health" => Ok(FailAt::Health),
            "migration" => Ok(FailAt::Migration),
            "watch" => Ok(FailAt::Watch),
            "canary" => Ok(FailAt::Canary),
            other => Err(Error::UnknownFailAt {
                value: other.to_owned(),
            }),
        }
    }
}

/// How to rehearse.
#[derive(Debug, Clone)]
pub struct RehearseOptions {
    /// The folder holding the config (agent hooks run here).
    pub config_dir: PathBuf,
    /// The emulator's files, packages and the previous release.
    pub work_dir: PathBuf,
    /// The failure to show.
    pub fail_at: FailAt,
    /// The quick profile: short gates and watch (see [`quick`]).
    pub quick: bool,
    /// When a cancelled rehearsal's last writes must end: the binary's signals set it, as for a release.
    pub stopping: stages::Stopping,
}

/// What a rehearsal showed.
#[derive(Debug, Clone)]
pub struct RehearseOutcome {
    /// The release record of the run.
    pub record: ReleaseRecord,
    /// A few sentences for people: what happened and where production is.
    pub story: String,
    /// Whether it ended as the rehearsal meant (success, or the asked-for failure with production healthy).
    pub as_expected: bool,
    /// Whether production answered its health check at the end.
    pub production_healthy: bool,
    /// The two-wave, three-target fan-out that followed (none when the rehearsal was cancelled).
    pub fan_out: Option<fanout::FanOutRehearsal>,
}

fn dummy(name: &str) -> String {
    // Dummy values look like secrets so masking is exercised, but are never real.
    format!("rehearsal-{name}-{}", uuid::Uuid::new_v4().simple())
}

/// The emulator seed for a release: the app as it is before this release.
pub fn seed(spec: &ReleaseSpec, previous: Option<&Path>) -> Seed {
    let subscription = spec
        .app
        .subscription
        .clone()
        .unwrap_or_else(|| SUBSCRIPTION.to_owned());
    let production_env = spec
        .production
        .as_ref()
        .and_then(|p| spec.environments.get(&p.environment));
    let mut production = emu::SeedSlot {
        name: SlotName::production().to_string(),
        app_settings: production_env
            .map(|e| e.settings.clone())
            .unwrap_or_default(),
        site_config: serde_json::Map::new(),
        stopped: false,
        tags: BTreeMap::new(),
        content_dir: previous.map(Path::to_path_buf),
        ..emu::SeedSlot::default()
    };
    production
        .app_settings
        .insert("RELEASE_VERSION".to_owned(), PREVIOUS.to_owned());
    // Its connection strings written in the config, as its settings: what the previous release left.
    for (name, cs) in production_env
        .iter()
        .flat_map(|e| e.connection_strings.iter())
    {
        if let slot_release_engine::spec::ConnectionValue::Text(value) = &cs.value
            && let Ok(seeded) = serde_json::from_value::<emu::ConnectionString>(
                serde_json::json!({ "value": value, "type": cs.kind }),
            )
        {
            production.connection_strings.insert(name.clone(), seeded);
        }
    }
    // The journal as a previous release would have left it: released, and the last known-good one.
    let mut journal = slot_release_engine::journal::JournalTags {
        release: Some(PREVIOUS.to_owned()),
        phase: Some(slot_release_engine::journal::Phase::Released),
        last_known_good: Some(PREVIOUS.to_owned()),
        ..slot_release_engine::journal::JournalTags::default()
    };
    journal
        .slots
        .insert(SlotName::production(), PREVIOUS.to_owned());
    journal.apply_to(&mut production.tags);
    match &spec.app.kind {
        AppKind::Code { .. } => {
            if let Some(stack) = &spec.app.stack {
                production
                    .site_config
                    .insert("linuxFxVersion".into(), stack.clone().into());
            }
            if let Some(cmd) = &spec.app.startup_command {
                production
                    .site_config
                    .insert("appCommandLine".into(), cmd.clone().into());
            }
        }
        AppKind::Container { repository, .. } => {
            production.site_config.insert(
                "linuxFxVersion".into(),
                format!("DOCKER|{repository}:previous").into(),
            );
        }
    }
    let mut slots = vec![production];
    for env in spec.environments.values() {
        if !env.slot.is_production()
            && !env.create_slot
            && !slots.iter().any(|s| env.slot == *s.name)
        {
            slots.push(emu::SeedSlot {
                name: env.slot.to_string(),
                app_settings: BTreeMap::new(),
                site_config: serde_json::Map::new(),
                stopped: false,
                tags: BTreeMap::new(),
                content_dir: None,
                ..emu::SeedSlot::default()
            });
        }
    }
    // The config does not say what kind of app it releases (the engine reads that from Azure), but a
    // package with host.json at its root is an Azure Functions app: rehearsed on Elastic Premium, a plan
    // with slots, so the Functions host runs it as it would in Azure.
    let function_app =
        matches!(&spec.app.kind, AppKind::Code { root, .. } if root.join("host.json").is_file());
    let plan = emu::SeedPlan {
        name: None,
        sku: if function_app { "EP1" } else { "S1" }.to_owned(),
    };
    let mut vaults: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for env in spec.environments.values() {
        if let Some(vault) = &env.vault {
            let names = vaults.entry(vault.clone()).or_default();
            for secret in env.vault_secrets() {
                if !names.contains(&secret) {
                    names.push(secret);
                }
            }
        }
    }
    Seed {
        tenant_id: TENANT.to_owned(),
        organization: "rehearsal".to_owned(),
        project: "rehearsal".to_owned(),
        system_access_token: emu::SecretString::new(dummy("access-token")),
        clients: vec![emu::SeedClient {
            client_id: CLIENT.to_owned(),
            secret: Some(emu::SecretString::new(dummy("client"))),
            certificates: Vec::new(),
        }],
        service_connections: vec![emu::SeedServiceConnection {
            id: CONNECTION.to_owned(),
            name: "rehearsal".to_owned(),
            kind: emu::ConnectionKind::ServicePrincipal,
            client_id: CLIENT.to_owned(),
            subscription_id: subscription.clone(),
        }],
        managed_identities: Vec::new(),
        subscriptions: vec![emu::SeedSubscription {
            id: subscription,
            name: "Rehearsal".to_owned(),
            resource_groups: vec![emu::SeedResourceGroup {
                name: spec.app.resource_group.clone(),
                apps: vec![emu::SeedApp {
                    name: spec.app.name.clone(),
                    kind: match spec.app.kind {
                        AppKind::Code { .. } => emu::AppKind::Code,
                        AppKind::Container { .. } => emu::AppKind::Container,
                    },
                    location: "East US".to_owned(),
                    basic_auth: false,
                    slot_config_names: emu::SlotConfigNames::default(),
                    slots,
                    function_app,
                    plan,
                    ..emu::SeedApp::default()
                }],
                vaults: vaults
                    .into_iter()
                    .map(|(name, secrets)| emu::SeedVault {
                        name,
                        throttle: None,
                        secrets: secrets
                            .into_iter()
                            .map(|secret| emu::SeedSecret {
                                value: emu::SecretString::new(dummy(&secret)),
                                name: secret,
                                previous_values: Vec::new(),
                                enabled: true,
                                exp: None,
                                nbf: None,
                                content_type: None,
                                tags: BTreeMap::new(),
                            })
                            .collect(),
                    })
                    .collect(),
            }],
        }],
        host_name_style: emu::HostNameStyle::default(),
        images: Vec::new(),
    }
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            if entry.file_name() != ".git" {
                copy_dir(&entry.path(), &target)?;
            }
        } else if kind.is_file() {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// The previous release: the package as it was one schema version earlier.
///
/// The example pins the schema its code needs (`REQUIRED_SCHEMA_VERSION` in `settings.py`); the previous
/// release needs one less, which is what lets a migration run before the swap while production keeps
/// serving. For apps without such a pin the previous release is the package unchanged.
pub fn prepare_previous(root: &Path, dir: &Path) -> Result<(), Error> {
    let failed = |source| Error::PreparePrevious {
        path: dir.to_path_buf(),
        source,
    };
    copy_dir(root, dir).map_err(failed)?;
    let settings = dir.join("settings.py");
    if let Ok(text) = std::fs::read_to_string(&settings) {
        let pinned = text.lines().find_map(|l| {
            l.strip_prefix("REQUIRED_SCHEMA_VERSION = ")
                .and_then(|v| v.trim().parse::<u32>().ok())
        });
        if let Some(version) = pinned.filter(|v| *v > 0) {
            let updated = text.replace(
                &format!("REQUIRED_SCHEMA_VERSION = {version}"),
                &format!("REQUIRED_SCHEMA_VERSION = {}", version - 1),
            );
            std::fs::write(&settings, updated).map_err(failed)?;
        }
    }
    Ok(())
}

/// Runs the rehearsal.
pub async fn run(
    loaded: &LoadedRelease,
    opts: &RehearseOptions,
    log: &Log,
    cancel: CancellationToken,
) -> Result<RehearseOutcome, Error> {
    let quickened;
    let loaded = if opts.quick {
        let mut copy = loaded.clone();
        let changes = quick::apply(&mut copy.spec);
        log.info(&if changes.is_empty() {
            "Quick rehearsal: the config's gates and watch are already short".to_owned()
        } else {
            format!(
                "Quick rehearsal, waits shortened (not what a release with this config waits): {}",
                changes.join("; ")
            )
        });
        quickened = copy;
        &quickened
    } else {
        loaded
    };
    // The fan-out shows waves, not waits or a canary: its targets swap (a second emulator has no users
    // for a canary's analysis to judge) with the quick profile's gates and watch, whatever the config
    // says; the release above has shown the config's own.
    let mut fan_loaded = loaded.clone();
    if let Some(production) = fan_loaded.spec.production.as_mut()
        && production.strategy == slot_release_engine::spec::Strategy::Canary
    {
        production.strategy = slot_release_engine::spec::Strategy::Swap;
        production.canary.clear();
    }
    quick::apply(&mut fan_loaded.spec);
    let canaried;
    let loaded = if opts.fail_at == FailAt::Canary {
        let mut copy = loaded.clone();
        if let Some(change) = canary::make_canary(&mut copy.spec) {
            log.info(&change);
        }
        canaried = copy;
        &canaried
    } else {
        loaded
    };
    let spec = &loaded.spec;
    let previous = match &spec.app.kind {
        AppKind::Code { root, .. } => {
            let dir = opts.work_dir.join("previous-release");
            prepare_previous(root, &dir)?;
            Some(dir)
        }
        AppKind::Container { .. } => None,
    };
    let mut emulator_opts = EmulatorOptions::new(
        seed(spec, previous.as_deref()),
        opts.work_dir.join("emulator"),
    );
    emulator_opts.images = image_stand_in(spec, &opts.work_dir);
    emulator_opts.deployment_step_delay = std::time::Duration::from_millis(50);
    let emulator = Emulator::start(emulator_opts).await?;
    log.info(&format!(
        "Rehearsal: emulator on 127.0.0.1:{}, app {} seeded from the config",
        emulator.port(),
        spec.app.name
    ));
    let mut env: BTreeMap<String, String> = emulator
        .service_connection_env_for(CONNECTION)
        .into_iter()
        .collect();
    // The emulator's CA reaches the client the way an agent's extra CA does.
    env.insert(
        "AGENT_CAINFO".to_owned(),
        emulator.ca_path().display().to_string(),
    );
    let lookup = |name: &str| env.get(name).cloned();
    let port = port::connect(CONNECTION, &lookup, &spec.app).map_err(|source| {
        Error::EmulatorConnection {
            source: Box::new(source),
        }
    })?;
    let port: Arc<dyn Port> = Arc::new(port);

    // The shared state (the database) starts where the previous release left it: before the hooks.
    prepare_shared_state(spec, &port, &opts.config_dir, log, &cancel).await;

    let app = spec.app.name.clone();
    match opts.fail_at {
        FailAt::None => {}
        // The gate that fails is staging's; a config without a staging slot has no such gate.
        FailAt::Health => {
            if let Some(slot) = spec.staging_slot(None) {
                emulator.inject(Fault::AppUnhealthyAfterRequests {
                    app: app.clone(),
                    slot: slot.to_string(),
                    after_requests: 0,
                });
            }
        }
        FailAt::Migration => emulator.inject(Fault::KuduCommandFails {
            app: app.clone(),
            exit_code: 1,
            count: Some(1),
        }),
        FailAt::Watch => emulator.inject(Fault::AppUnhealthyAfterSwap { app: app.clone() }),
        // Injected by the watcher below, once production routes traffic to the slot.
        FailAt::Canary => {}
    }
    let (package, package_sha256) = match &spec.app.kind {
        AppKind::Code { root, exclude } => {
            let prepared =
                build_then_verify(loaded, root, exclude, &opts.work_dir, log, &cancel).await?;
            (
                Some(prepared.path),
                Some(prepared.sha256.as_str().to_owned()),
            )
        }
        AppKind::Container { .. } => (None, None),
    };
    let stage_opts = StageOptions {
        command: Command::Release,
        environment: None,
        release_id: loaded.release_id.clone(),
        release_name: loaded.release_name.clone(),
        package,
        package_sha256,
        artifact: None,
        target_spec: None,
        build_run: slot_release_pipelines::AgentEnv::from_env().build_run(),
        work_dir: opts.work_dir.join("package"),
        hook_dir: opts.config_dir.clone(),
        unfinished: Unfinished::Refuse,
        rollback_to: None,
        lock: stages::LockOptions::default(),
    };
    let ctx = stages::Context {
        port: port.clone(),
        log: log.clone(),
        cancel: cancel.clone(),
        stopping: opts.stopping.clone(),
    };
    let fan_package = (
        stage_opts.package.clone(),
        stage_opts.package_sha256.clone(),
    );
    let watcher_done = CancellationToken::new();
    let canary_slot = spec
        .production
        .as_ref()
        .filter(|p| opts.fail_at == FailAt::Canary && !p.source_slot.is_production())
        .map(|p| {
            let health = p.health.as_ref().map_or("/", |h| h.check.path.as_str());
            (p.source_slot.to_string(), health.to_owned())
        });
    let canary_runs = spec
        .production
        .as_ref()
        .is_some_and(|p| p.strategy == slot_release_engine::spec::Strategy::Canary);
    let run = async {
        let record = stages::run(&ctx, spec, &stage_opts).await;
        watcher_done.cancel();
        record
    };
    let (record, (), ()) = tokio::join!(
        run,
        async {
            if let Some((slot, health)) = &canary_slot {
                canary::fail_when_routed(&emulator, &app, slot, health, watcher_done.clone()).await;
            }
        },
        async {
            if canary_runs {
                canary::users(port.as_ref(), watcher_done.clone()).await;
            }
        }
    );
    // The abort gave production all its traffic back: part of what the rehearsal shows.
    let still_routed = canary::routed(&emulator, &app);
    let production_healthy = production_healthy(spec, port.as_ref(), &cancel).await;
    let served = record
        .slots
        .get(&SlotName::production())
        .cloned()
        .unwrap_or_else(|| "unknown".to_owned());
    let as_expected = match opts.fail_at {
        FailAt::None => record.succeeded() && production_healthy,
        FailAt::Canary => record.result == RunResult::Failed && production_healthy && !still_routed,
        _ => {
            matches!(record.result, RunResult::Failed | RunResult::RolledBack) && production_healthy
        }
    };
    let mut story = story(opts.fail_at, &record, production_healthy, &served);
    if opts.quick {
        story.push_str(
            " (Quick profile: gates and watch shortened; a release waits what release.yml says.)",
        );
    }
    emulator.shutdown().await;
    let fan_out = if cancel.is_cancelled() {
        None
    } else {
        let fan = fanout::rehearse(
            &fan_loaded,
            opts,
            previous.as_deref(),
            fan_package,
            log,
            &cancel,
        )
        .await?;
        story.push(' ');
        story.push_str(&fan.story);
        Some(fan)
    };
    Ok(RehearseOutcome {
        record,
        story,
        as_expected: as_expected && fan_out.as_ref().is_none_or(|f| f.as_expected),
        production_healthy,
        fan_out,
    })
}

/// For a container app, a stand-in for its image: a tiny health-answering server.
fn image_stand_in(spec: &ReleaseSpec, work_dir: &Path) -> Vec<emu::ImageMapping> {
    let AppKind::Container { repository, .. } = &spec.app.kind else {
        return Vec::new();
    };
    vec![emu::ImageMapping {
        pattern: format!("{repository}:*"),
        command: "python3 -c \"import http.server,os\nclass H(http.server.BaseHTTPRequestHandler):\n def do_GET(s):\n  s.send_response(200);s.end_headers();s.wfile.write(b'ok')\nhttp.server.HTTPServer(('127.0.0.1',int(os.environ['PORT'])),H).serve_forever()\"".to_owned(),
        dir: work_dir.to_path_buf(),
        private: None,
    }]
}

/// The pipeline's path for the package: `build` writes it and its build record to an artifact folder, and the
/// deploying stage gets that package and verifies it against the record before anything changes.
async fn build_then_verify(
    loaded: &LoadedRelease,
    root: &Path,
    exclude: &[String],
    work_dir: &Path,
    log: &Log,
    cancel: &CancellationToken,
) -> Result<artifact::PreparedPackage, Error> {
    let mut spec = PackageSpec::new(root);
    spec.exclude = exclude.to_vec();
    let build = artifact::PrepareRequest {
        source: artifact::PackageSource::Build {
            spec,
            none_given: false,
        },
        base_dir: work_dir.to_path_buf(),
        config: loaded.path.clone(),
        sources: artifact::sources_dir(
            &loaded.path,
            slot_release_pipelines::AgentEnv::from_env().sources_directory(),
        ),
        out_dir: work_dir.join("artifact"),
        context: artifact::BuildContext::from_run(
            &loaded.release_id,
            &loaded.release_name,
            &slot_release_pipelines::AgentEnv::from_env().build_run(),
        ),
        write_record: true,
        verify_config: true,
    };
    let built = artifact::prepare_in_background(&build, log, cancel)
        .await
        .map_err(|source| Error::from(slot_release_engine::error::Error::Artifact { source }))?;
    let deploy = artifact::PrepareRequest {
        source: artifact::PackageSource::Given {
            pattern: built.path.display().to_string(),
            build_record: None,
        },
        write_record: false,
        verify_config: true,
        ..build
    };
    artifact::prepare_in_background(&deploy, log, cancel)
        .await
        .map_err(|source| Error::from(slot_release_engine::error::Error::Artifact { source }))
}

/// Runs the undo of the hooks that have one, so shared state (a database) is as the previous release left it.
pub async fn prepare_shared_state(
    spec: &ReleaseSpec,
    port: &Arc<dyn Port>,
    config_dir: &Path,
    log: &Log,
    cancel: &CancellationToken,
) {
    // The previous release's deployment record, as the engine would have written it.
    let record = slot_release_engine::journal::DeploymentRecord {
        release: PREVIOUS.to_owned(),
        phase: slot_release_engine::journal::Phase::Released
            .as_str()
            .to_owned(),
        ..slot_release_engine::journal::DeploymentRecord::default()
    };
    if port
        .put_record(&SlotName::production(), PREVIOUS, &record, cancel)
        .await
        .is_err()
    {
        log.warning(
            "Rehearsal: cannot record the previous release in production's deployment history",
        );
    }
    log.info("Rehearsal: the shared state (a database) is brought back to where the previous release left it, by the hooks' undo");
    // Through the hook runner, as a release runs them: its time limits, cancellation, scrubbed environment
    // and masked, neutralised output.
    let runner = HookRunner::new(
        log.clone(),
        HookRunnerConfig::new(config_dir),
        HookEnvironment::default(),
    )
    .with_remote(Arc::new(SlotCommand::new(
        port.clone(),
        &SlotName::production(),
    )));
    let hooks: Vec<_> = spec.staging.iter().flat_map(|s| s.hooks.iter()).collect();
    for hook in hooks.into_iter().rev().filter(|h| h.undo.is_some()) {
        let record = runner.run_command(hook, CommandKind::Undo, cancel).await;
        if !record.outcome.is_success() {
            log.warning(&format!(
                "Rehearsal: preparing the previous release's state with the undo of hook {} did not succeed ({})",
                hook.name, record.outcome
            ));
        }
    }
}

async fn production_healthy(
    spec: &ReleaseSpec,
    port: &dyn Port,
    cancel: &CancellationToken,
) -> bool {
    let health = spec.production.as_ref().and_then(|p| p.health.as_ref());
    let path = health.map_or("/", |h| h.check.path.as_str());
    let Ok(base) = port.slot_url(&SlotName::production(), cancel).await else {
        return false;
    };
    let Ok(url) = base.join(path) else {
        return false;
    };
    // A function that wants a key gets production's, as the watch sent it.
    let prober = match health.and_then(|h| h.check.function_key) {
        Some(_) => match port.function_key(&SlotName::production(), cancel).await {
            Ok(key) => port.keyed_prober(key),
            Err(_) => return false,
        },
        None => port.prober(),
    };
    let check = slot_release_engine::health::HealthCheck::new(path);
    for _ in 0..5 {
        if prober.probe(&url, &check).await.is_healthy() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    false
}

fn story(fail_at: FailAt, record: &ReleaseRecord, healthy: bool, served: &str) -> String {
    let health = if healthy { "healthy" } else { "NOT healthy" };
    match fail_at {
        FailAt::None if record.succeeded() => format!(
            "Rehearsal done: production serves release {} and is {health}. Try --fail-at health, migration, watch or canary to see each failure path.",
            record.label()
        ),
        FailAt::None => format!(
            "Rehearsal failed: {}. Production is {health} (release {served}).",
            record.error.join(": ")
        ),
        FailAt::Health => format!(
            "Rehearsed a staging slot that never turns healthy: the migration was undone, nothing was swapped, and production is {health} on release {served}."
        ),
        FailAt::Migration => format!(
            "Rehearsed a failing migration: nothing after it ran, nothing was swapped, and production is {health} on release {served}."
        ),
        FailAt::Canary => format!(
            "Rehearsed a canary whose release fails a fifth of its requests while its health path passes: the metric gate stopped it at its first share, production's traffic routing rules were put back as they were, nothing was swapped, and production is {health} on release {served}."
        ),
        FailAt::Watch => format!(
            "Rehearsed production turning unhealthy after the swap: it was swapped back automatically ({}), and production is {health} on release {served}.",
            record.result.as_str()
        ),
    }
}
