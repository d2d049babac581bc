//! The one place an end-to-end world is built: the emulator seeded with the app of an example, a copy of
//! the example as the agent's sources folder, service connections of every kind pointing at the emulator,
//! and the task staged with the real binary. A world runs the task through the Node entry point
//! ([`World::run`]) or the binary directly (`World::cli`, in `cli.rs`), reads the emulator's state, and
//! probes production (`World::watch_production`, in `prober.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use slot_release_emulator::{
    ConnectionKind, Emulator, EmulatorOptions, ImageMapping, SecretString, Seed, SeedSecret,
    SlotSnapshot,
};
use slot_release_engine::port::{self, Port};
use slot_release_engine::release::{self, LoadRequest};
use slot_release_engine::spec::AppKind;
use slot_release_engine::state::SlotName;
use slot_release_pipelines::{Log, OutputMode};
use slot_release_rehearse as rehearse;
use tokio_util::sync::CancellationToken;

use crate::agent::{AgentOutcome, AgentRun};
use crate::example::Example;
use crate::leak::{Leak, LeakDetector};
use crate::paths;

/// A multi-line Key Vault value (as certificates and keys often are): each line must be masked.
pub const API_KEY: &str = "ak-first-line-7f3a9c\nak-second-line-91c2e4";
/// The single-line database password of the example.
pub const DB_PASSWORD: &str = "db-pw-5e1d0b77;]%x";

/// What Azure holds when a world starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// The emulator's sample subscription, as before a first release: `contoso-web` (the python
    /// example's app) with empty `production` and `staging` slots, and the vault `contoso-kv` holding
    /// [`API_KEY`] and [`DB_PASSWORD`].
    Sample,
    /// The config's app as its previous release left it, seeded as `rehearse` seeds it: production
    /// serves the previous release (the package one schema version older, or the image tag
    /// `previous`), the journal names it released and last known good, and the vault holds the
    /// secrets the config names.
    PreviousRelease,
}

type Edit = Box<dyn FnOnce(String) -> String + Send>;
type Tweak = Box<dyn FnOnce(&mut EmulatorOptions) + Send>;
type Prepare = Box<dyn FnOnce(&Path) -> Result<(), String> + Send>;

/// How a world is built: which example, which baseline, and what a test changes before it starts.
pub struct WorldBuilder {
    example: Example,
    baseline: Baseline,
    quick: bool,
    edit: Option<Edit>,
    vault: Vec<SeedSecret>,
    tweak: Option<Tweak>,
    prepare: Option<Prepare>,
    copies: Vec<String>,
}

impl std::fmt::Debug for WorldBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorldBuilder")
            .field("example", &self.example)
            .field("baseline", &self.baseline)
            .field("quick", &self.quick)
            .field("edit", &self.edit.is_some())
            .field("vault", &self.vault.len())
            .field("tweak", &self.tweak.is_some())
            .field("prepare", &self.prepare.is_some())
            .field("copies", &self.copies)
            .finish()
    }
}

impl WorldBuilder {
    /// Copies `example` instead of the python one.
    pub fn example(mut self, example: Example) -> WorldBuilder {
        self.example = example;
        self
    }

    /// Starts from the app as its previous release left it ([`Baseline::PreviousRelease`]).
    pub fn previous_release(mut self) -> WorldBuilder {
        self.baseline = Baseline::PreviousRelease;
        self
    }

    /// Shortens the example's waits ([`Example::quick`]) and the emulator's deployment steps, so a
    /// release runs in seconds.
    pub fn quick(mut self) -> WorldBuilder {
        self.quick = true;
        self
    }

    /// Changes the copied `release.yml` before the world is seeded from it.
    pub fn edit(mut self, edit: impl FnOnce(String) -> String + Send + 'static) -> WorldBuilder {
        self.edit = Some(Box::new(edit));
        self
    }

    /// More secrets in every vault (`(name, value)`), for hostile values; they are declared to the
    /// leak detector like the others.
    pub fn vault(mut self, extra: &[(&str, &str)]) -> WorldBuilder {
        self.vault.extend(extra.iter().map(|(n, v)| secret(n, v)));
        self
    }

    /// A secret in every vault with its attributes (disabled, expired); its value is declared to the
    /// leak detector like the others, so a secret left out must not show either.
    pub fn vault_secret(mut self, secret: SeedSecret) -> WorldBuilder {
        self.vault.push(secret);
        self
    }

    /// More apps in the config app's resource group, each seeded as a copy of it under another name (the
    /// targets of a fan-out): with [`WorldBuilder::previous_release`], each serves the previous release
    /// and its journal names it, as the config's app does.
    pub fn app_copies(mut self, names: &[&str]) -> WorldBuilder {
        self.copies = names.iter().map(|n| (*n).to_owned()).collect();
        self
    }

    /// Changes the emulator's options before it starts (host name style, image mappings, timeouts).
    pub fn emulator(
        mut self,
        tweak: impl FnOnce(&mut EmulatorOptions) + Send + 'static,
    ) -> WorldBuilder {
        self.tweak = Some(Box::new(tweak));
        self
    }

    /// Runs `prepare` on the copied sources before the world is seeded from them, as a pipeline's own build
    /// step would change the checkout (vendoring dependencies, say): the previous release is seeded from
    /// the prepared package root.
    pub fn prepare(
        mut self,
        prepare: impl FnOnce(&Path) -> Result<(), String> + Send + 'static,
    ) -> WorldBuilder {
        self.prepare = Some(Box::new(prepare));
        self
    }

    /// Copies the example, seeds and starts the emulator, and stages the task.
    pub async fn start(self) -> Result<World, String> {
        if self.baseline == Baseline::Sample && self.example != Example::Python {
            return Err("the sample subscription holds the python example's app only".into());
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let sources = dir.path().join("s");
        let config = self.example.checkout(&sources)?;
        let mut text = std::fs::read_to_string(&config).map_err(|e| e.to_string())?;
        if self.quick {
            text = self.example.quick(&text)?;
        }
        if let Some(edit) = self.edit {
            text = edit(text);
        }
        std::fs::write(&config, text).map_err(|e| e.to_string())?;
        if let Some(prepare) = self.prepare {
            prepare(&sources)?;
        }

        let loaded = release::load(
            &config,
            &LoadRequest {
                release_id: Some("r0".into()),
                ..LoadRequest::default()
            },
        )
        .map_err(|e| format!("load {}: {e}", config.display()))?;
        let spec = &loaded.spec;
        let seed = seed(self.baseline, spec, dir.path(), &self.vault)?;
        let vault_values = seed
            .subscriptions
            .iter()
            .flat_map(|s| &s.resource_groups)
            .flat_map(|rg| &rg.vaults)
            .flat_map(|v| &v.secrets)
            .map(|s| s.value.expose().to_owned())
            .collect();
        let mut opts = EmulatorOptions::new(seed, dir.path().join("emulator"));
        if self.quick {
            opts.deployment_step_delay = Duration::from_millis(20);
        }
        if let AppKind::Container { repository, .. } = &spec.app.kind {
            // Every tag of the example's image runs as a server answering 200 to everything.
            opts.images.push(ImageMapping {
                pattern: format!("{repository}:*"),
                command: "python3 -c \"import http.server,os\nclass H(http.server.BaseHTTPRequestHandler):\n def do_GET(s):\n  s.send_response(200);s.end_headers();s.wfile.write(b'ok')\nhttp.server.HTTPServer(('127.0.0.1',int(os.environ['PORT'])),H).serve_forever()\"".into(),
                dir: dir.path().to_path_buf(),
                private: None,
            });
        }
        for sub in &mut opts.seed.subscriptions {
            for rg in &mut sub.resource_groups {
                let copies: Vec<_> = rg
                    .apps
                    .iter()
                    .filter(|a| a.name == spec.app.name)
                    .flat_map(|a| {
                        self.copies.iter().map(|name| {
                            let mut copy = a.clone();
                            copy.name = name.clone();
                            copy
                        })
                    })
                    .collect();
                rg.apps.extend(copies);
            }
        }
        if let Some(tweak) = self.tweak {
            tweak(&mut opts);
        }
        let emulator = Emulator::start(opts)
            .await
            .map_err(|e| format!("emulator: {e}"))?;

        let connection = |kind: ConnectionKind| {
            emulator
                .seed()
                .service_connections
                .iter()
                .find(|c| c.kind == kind)
                .map(|c| c.id.clone())
                .ok_or_else(|| format!("the seed has no {kind:?} service connection"))
        };
        let connection_id = connection(ConnectionKind::WorkloadIdentityFederation)?;
        let cli_connection = connection(ConnectionKind::ServicePrincipal)?;
        let binary = paths::slot_release_binary()?;
        let entry_point =
            paths::stage_task(dir.path(), &binary).map_err(|e| format!("stage the task: {e}"))?;
        let env = cli_env(&emulator, &cli_connection);
        let lookup = |name: &str| env.get(name).cloned();
        let port: Arc<dyn Port> = Arc::new(
            port::connect(&cli_connection, &lookup, &spec.app).map_err(|e| e.to_string())?,
        );
        if self.baseline == Baseline::PreviousRelease {
            let log = Log::new(OutputMode::Plain, Box::new(std::io::sink()));
            rehearse::prepare_shared_state(spec, &port, &sources, &log, &CancellationToken::new())
                .await;
            for name in &self.copies {
                let mut copy = spec.clone();
                copy.app.name = name.clone();
                let copy_port: Arc<dyn Port> = Arc::new(
                    port::connect(&cli_connection, &lookup, &copy.app)
                        .map_err(|e| e.to_string())?,
                );
                rehearse::prepare_shared_state(
                    &copy,
                    &copy_port,
                    &sources,
                    &log,
                    &CancellationToken::new(),
                )
                .await;
            }
        }
        Ok(World {
            emulator,
            example: self.example,
            dir,
            sources,
            app: spec.app.name.clone(),
            connection_id,
            cli_connection,
            entry_point,
            binary,
            vault_values,
            port,
        })
    }
}

/// The seed of a world: the sample's tenant, clients and service connections (one of every kind), with
/// the subscription of the baseline.
fn seed(
    baseline: Baseline,
    spec: &slot_release_engine::spec::ReleaseSpec,
    dir: &Path,
    extra: &[SeedSecret],
) -> Result<Seed, String> {
    let mut seed = Seed::sample();
    if baseline == Baseline::PreviousRelease {
        let previous = match &spec.app.kind {
            AppKind::Code { root, .. } => {
                let previous = dir.join("previous");
                rehearse::prepare_previous(root, &previous).map_err(|e| e.to_string())?;
                Some(previous)
            }
            AppKind::Container { .. } => None,
        };
        seed.subscriptions = rehearse::seed(spec, previous.as_deref()).subscriptions;
    }
    let subscription = seed
        .subscriptions
        .first()
        .map(|s| s.id.clone())
        .ok_or("the seed has no subscription")?;
    for connection in &mut seed.service_connections {
        connection.subscription_id = subscription.clone();
    }
    for sub in &mut seed.subscriptions {
        for rg in &mut sub.resource_groups {
            for vault in &mut rg.vaults {
                if baseline == Baseline::Sample {
                    vault
                        .secrets
                        .retain(|s| s.name != "api-key" && s.name != "db-password");
                    vault.secrets.push(secret("api-key", API_KEY));
                    vault.secrets.push(secret("db-password", DB_PASSWORD));
                }
                for extra in extra {
                    vault.secrets.retain(|s| s.name != extra.name);
                    vault.secrets.push(extra.clone());
                }
            }
        }
    }
    Ok(seed)
}

/// The environment of a step that uses the service connection `id`, as the agent exports it, with the
/// emulator's CA.
pub(crate) fn cli_env(emulator: &Emulator, id: &str) -> std::collections::BTreeMap<String, String> {
    let mut env: std::collections::BTreeMap<String, String> = emulator
        .service_connection_env_for(id)
        .into_iter()
        .collect();
    env.insert(
        "AGENT_CAINFO".into(),
        emulator.ca_path().display().to_string(),
    );
    env
}

/// The emulator, the sources folder and what the agent would pass the task.
#[derive(Debug)]
pub struct World {
    pub emulator: Emulator,
    /// The example the world's sources were copied from.
    pub example: Example,
    /// Holds the sources folder, the agent's temp folder, the staged task and the emulator's files.
    pub dir: tempfile::TempDir,
    /// The copy of the example the task works on.
    pub sources: PathBuf,
    /// The app the config releases.
    pub app: String,
    /// The workload-identity service connection (the value of the `azureSubscription` input).
    pub connection_id: String,
    /// The service-principal connection the binary is given when run directly.
    pub cli_connection: String,
    /// `index.js` of a task folder staged like the packaged one, with the real binary in `bin/`.
    pub entry_point: PathBuf,
    /// The `slot-release` binary.
    pub binary: PathBuf,
    /// The vault values of this world, declared to the leak detector of every run.
    pub vault_values: Vec<String>,
    /// The engine's port to the app, through the service-principal connection: what a test changes
    /// or reads the way the product would.
    pub port: Arc<dyn Port>,
}

impl World {
    /// How a world is built; by default the python example on the [`Baseline::Sample`] subscription.
    pub fn builder() -> WorldBuilder {
        WorldBuilder {
            example: Example::Python,
            baseline: Baseline::Sample,
            quick: false,
            edit: None,
            vault: Vec::new(),
            tweak: None,
            prepare: None,
            copies: Vec::new(),
        }
    }

    /// The python example on the sample subscription ([`Baseline::Sample`]).
    pub async fn start() -> Result<World, String> {
        World::builder().start().await
    }

    /// [`World::start`] with more secrets in the vault (`(name, value)`), for hostile values.
    pub async fn start_with_vault(extra: &[(&str, &str)]) -> Result<World, String> {
        World::builder().vault(extra).start().await
    }

    /// The python example's app as its previous release left it, with the waits shortened; `edit`
    /// changes the config first. Panics when the world cannot start: a test cannot go on without it.
    pub async fn released(edit: impl FnOnce(String) -> String + Send + 'static) -> World {
        World::builder()
            .previous_release()
            .quick()
            .edit(edit)
            .start()
            .await
            .unwrap_or_else(|e| panic!("the world did not start: {e}"))
    }

    /// [`World::released`] for the container example.
    pub async fn released_container(edit: impl FnOnce(String) -> String + Send + 'static) -> World {
        World::builder()
            .example(Example::Container)
            .previous_release()
            .quick()
            .edit(edit)
            .start()
            .await
            .unwrap_or_else(|e| panic!("the world did not start: {e}"))
    }

    /// The release configuration in the sources copy (an absolute path, as the agent roots filePath inputs).
    pub fn config(&self) -> PathBuf {
        self.sources.join("release.yml")
    }

    /// The agent's temp folder of a run in this world.
    pub fn temp(&self) -> PathBuf {
        self.sources.join("_temp")
    }

    /// A run of the staged task (the real entry point picking the real binary from `bin/`), with the
    /// agent's variables, the WIF connection and every secret of this world declared to the leak
    /// detector.
    pub fn run(&self, command: &str) -> Result<AgentRun, String> {
        self.run_with(command, ConnectionKind::WorkloadIdentityFederation)
    }

    /// [`World::run`] with the seeded service connection of another kind (a service principal with a
    /// key, a managed identity).
    pub fn run_with(&self, command: &str, kind: ConnectionKind) -> Result<AgentRun, String> {
        self.run_at(command, kind, &self.sources)
    }

    /// [`World::run`] in another job: `sources` is that job's checkout (holding its own `release.yml`
    /// and `_temp`), as a later stage of a multi-stage pipeline runs on another agent.
    pub fn run_in(&self, command: &str, sources: &Path) -> Result<AgentRun, String> {
        self.run_at(command, ConnectionKind::WorkloadIdentityFederation, sources)
    }

    /// A fresh copy of the world's example, as another job checks it out: the same bytes as
    /// [`World::sources`] had when the world started, before any edit.
    pub fn checkout(&self, to: &Path) -> Result<(), String> {
        self.example.checkout(to).map(|_| ())
    }

    fn run_at(
        &self,
        command: &str,
        kind: ConnectionKind,
        sources: &Path,
    ) -> Result<AgentRun, String> {
        let connection_id = self
            .emulator
            .seed()
            .service_connections
            .iter()
            .find(|c| c.kind == kind)
            .map(|c| c.id.clone())
            .ok_or_else(|| format!("no {kind:?} service connection in the seed"))?;
        let mut run = AgentRun::new(&self.entry_point, sources)
            .env(
                "AGENT_CAINFO",
                &self.emulator.ca_path().display().to_string(),
            )
            .env("BUILD_BUILDNUMBER", "20261122-1")
            .env("BUILD_BUILDID", "4242")
            .env("SYSTEM_DEFINITIONID", "17")
            .env("SYSTEM_JOBATTEMPT", "1")
            // A killed job's lock goes stale in seconds, so the next stage of its run need not wait minutes.
            .env("SLOT_RELEASE_LOCK_TTL_SECONDS", "6")
            .input("command", command)
            .input("azureSubscription", &connection_id)
            .input(
                "configFile",
                &sources.join("release.yml").display().to_string(),
            )
            .envs(self.emulator.service_connection_env(&kind));
        let token = self.emulator.seed().system_access_token.expose().to_owned();
        run = run.access_token(&token).secret("emulator-client-secret");
        for value in &self.vault_values {
            run = run.secret(value);
        }
        Ok(run)
    }

    /// The leak detector for a run in this world: the secrets declared on the run plus every
    /// credential the emulator has handed out or holds, read now so that the tokens issued during
    /// the run are included.
    pub fn leak_detector(&self, outcome: &AgentOutcome) -> LeakDetector {
        LeakDetector::for_outcome(outcome).with_credentials(&self.emulator.credentials())
    }

    /// Every leak of a run: its output and summaries, every file below `dirs`, and the journal kept
    /// with the app (tags and deployment records).
    pub fn leaks(&self, outcome: &AgentOutcome, dirs: &[&Path]) -> Vec<Leak> {
        let detector = self.leak_detector(outcome);
        let mut leaks = detector.scan_all(outcome, dirs);
        leaks.extend(detector.scan_journal(&self.emulator.snapshot()));
        leaks
    }

    /// A slot of the world's app as the emulator holds it now.
    pub fn slot(&self, slot: &str) -> SlotSnapshot {
        self.emulator
            .snapshot()
            .slot(&self.app, slot)
            .cloned()
            .unwrap_or_else(|| panic!("{} has no slot {slot}", self.app))
    }

    /// An app setting of a slot of the world's app, as the emulator holds it now.
    pub fn setting(&self, slot: &str, name: &str) -> Option<String> {
        self.slot(slot).app_settings.get(name).cloned()
    }

    /// The container image a slot of the world's app runs.
    pub fn image(&self, slot: &str) -> Option<String> {
        self.slot(slot).image
    }

    /// A tag of the site (where the journal lives).
    pub fn tag(&self, name: &str) -> Option<String> {
        self.slot("production").tags.get(name).cloned()
    }

    /// The release lock's claim tags on the site (none once every run gave the lock back).
    pub fn lock_claims(&self) -> Vec<String> {
        self.slot("production")
            .tags
            .keys()
            .filter(|k| k.starts_with(slot_release_engine::lock::CLAIM_PREFIX))
            .cloned()
            .collect()
    }

    /// Waits until every claim on the release lock is stale by the engine's own rule, so a take-over
    /// may follow; fails after `deadline`.
    pub async fn lock_gone_stale(&self, deadline: Duration) {
        let started = Instant::now();
        loop {
            let claims = slot_release_engine::lock::claims(&self.slot("production").tags);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            if claims.iter().all(|c| c.is_stale(now)) {
                return;
            }
            assert!(
                started.elapsed() < deadline,
                "the lock was still live after {deadline:?}: {claims:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Replaces the site's tags (as a site PATCH would), for tests that start from a given tag set.
    pub async fn replace_tags(&self, tags: &std::collections::BTreeMap<String, String>) {
        let none = CancellationToken::new();
        let live = self
            .port
            .tags(&none)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let gone: std::collections::BTreeMap<String, String> = live
            .keys()
            .filter(|k| !tags.contains_key(*k))
            .map(|k| (k.clone(), String::new()))
            .collect();
        if !gone.is_empty() {
            self.port
                .delete_tags(&gone, &none)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        if !tags.is_empty() {
            self.port
                .merge_tags(tags, &none)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// An HTTP client that trusts the emulator and reaches its host names.
    pub fn http(&self) -> reqwest::Client {
        let builder = self
            .emulator
            .client_builder()
            .unwrap_or_else(|e| panic!("{e}"));
        builder.build().unwrap_or_else(|e| panic!("{e}"))
    }

    /// `GET` of `path` on a slot's host as ARM names it: the status and the body, or `None` when the
    /// slot has no host or did not answer.
    pub async fn get(&self, slot: &str, path: &str) -> Option<(u16, String)> {
        let slot = SlotName::new(slot).unwrap_or_else(|e| panic!("{e}"));
        let url = self
            .port
            .slot_url(&slot, &CancellationToken::new())
            .await
            .ok()?
            .join(path)
            .ok()?;
        let rsp = self.http().get(url).send().await.ok()?;
        let status = rsp.status().as_u16();
        Some((status, rsp.text().await.unwrap_or_default()))
    }
}

/// An enabled secret without expiry.
pub fn secret(name: &str, value: &str) -> SeedSecret {
    SeedSecret {
        name: name.to_owned(),
        value: SecretString::new(value),
        previous_values: Vec::new(),
        enabled: true,
        exp: None,
        nbf: None,
        content_type: None,
        tags: Default::default(),
    }
}
