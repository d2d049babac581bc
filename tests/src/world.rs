//! A pipeline world for end-to-end runs: the emulator seeded with the example app, a copy of the example
//! as the agent's sources directory, and a workload-identity service connection pointing at the emulator.

use std::path::{Path, PathBuf};

use slot_release_emulator::{
    ConnectionKind, Emulator, EmulatorOptions, SecretString, Seed, SeedSecret,
};

use crate::agent::{AgentOutcome, AgentRun};
use crate::leak::{Leak, LeakDetector};
use crate::paths;

/// A multi-line Key Vault value (as certificates and keys often are): each line must be masked.
pub const API_KEY: &str = "ak-first-line-7f3a9c\nak-second-line-91c2e4";
/// The single-line database password of the example.
pub const DB_PASSWORD: &str = "db-pw-5e1d0b77;]%x";

/// The emulator, the sources folder and what the agent would pass the task.
#[derive(Debug)]
pub struct World {
    pub emulator: Emulator,
    /// Holds the sources folder and the agent's temp folder.
    pub dir: tempfile::TempDir,
    /// The copy of `examples/python-webapp` the task works on.
    pub sources: PathBuf,
    /// The service connection id (the value of the `azureSubscription` input).
    pub connection_id: String,
    /// `index.js` of a task folder staged like the packaged one, with the real binary in `bin/`.
    pub entry_point: PathBuf,
    /// The vault values of this world, declared to the leak detector of every run.
    pub vault_values: Vec<String>,
}

impl World {
    /// Starts the emulator with the example's app (`contoso-web` with `production` and `staging`), its
    /// vault (`contoso-kv` with `api-key` and `db-password`) and a WIF service connection.
    pub async fn start() -> Result<World, String> {
        World::start_with_vault(&[]).await
    }

    /// [`World::start`] with more secrets in the vault (`(name, value)`), for hostile values.
    pub async fn start_with_vault(extra: &[(&str, &str)]) -> Result<World, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let sources = dir.path().join("s");
        copy_dir(&paths::workspace().join("examples/python-webapp"), &sources)
            .map_err(|e| format!("copy example: {e}"))?;
        let mut seed = Seed::sample();
        for sub in &mut seed.subscriptions {
            for rg in &mut sub.resource_groups {
                for vault in &mut rg.vaults {
                    vault
                        .secrets
                        .retain(|s| s.name != "api-key" && s.name != "db-password");
                    vault.secrets.push(secret("api-key", API_KEY));
                    vault.secrets.push(secret("db-password", DB_PASSWORD));
                    for (name, value) in extra {
                        vault.secrets.retain(|s| s.name != *name);
                        vault.secrets.push(secret(name, value));
                    }
                }
            }
        }
        let connection_id = seed
            .service_connections
            .iter()
            .find(|c| c.kind == ConnectionKind::WorkloadIdentityFederation)
            .map(|c| c.id.clone())
            .ok_or("the sample seed has no workload identity federation connection")?;
        let emulator = Emulator::start(EmulatorOptions::new(seed, dir.path().join("emulator")))
            .await
            .map_err(|e| format!("emulator: {e}"))?;
        let binary = paths::slot_release_binary()?;
        let entry_point =
            paths::stage_task(dir.path(), &binary).map_err(|e| format!("stage the task: {e}"))?;
        let mut vault_values = vec![API_KEY.to_owned(), DB_PASSWORD.to_owned()];
        vault_values.extend(extra.iter().map(|(_, value)| (*value).to_owned()));
        Ok(World {
            emulator,
            dir,
            sources,
            connection_id,
            entry_point,
            vault_values,
        })
    }

    /// The release configuration in the sources copy (an absolute path, as the agent roots filePath inputs).
    pub fn config(&self) -> PathBuf {
        self.sources.join("release.yml")
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

    /// A fresh copy of the example, as another job checks it out: the same bytes as [`World::sources`]
    /// had when the world started.
    pub fn checkout(&self, to: &Path) -> Result<(), String> {
        copy_dir(&paths::workspace().join("examples/python-webapp"), to)
            .map_err(|e| format!("copy example: {e}"))
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

    /// The agent's temp folder of a run in this world.
    pub fn temp(&self) -> PathBuf {
        self.sources.join("_temp")
    }
}

fn secret(name: &str, value: &str) -> SeedSecret {
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

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}
