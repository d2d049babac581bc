//! The command line: each command and its arguments, as clap parses them (the task's inputs become the
//! same arguments through `task_inputs`).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use slot_release_engine::release;
use slot_release_engine::spec::HealthTimeout;
use slot_release_pipelines::Log;
use slot_release_rehearse::FailAt;

/// Release web apps to Azure App Service through deployment slots.
#[derive(Debug, Parser)]
#[command(name = "slot-release", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Cmd,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Cmd {
    /// Check release.yml and print every problem found.
    Validate(Common),
    /// Print the plan of a stage without changing anything.
    Plan(PlanArgs),
    /// Build the package (code apps) or resolve the image tag (container apps).
    Build(BuildArgs),
    /// Deploy to the staging slot, run hooks, health-gate it.
    Staging(RunArgs),
    /// Swap the staged release into production and watch it.
    Production(RunArgs),
    /// Restore the last known-good release.
    Rollback(RunArgs),
    /// Build, staging and production in one run, rolling back on failure.
    Release(RunArgs),
    /// Start, stop or restart a slot's app, under the release lock, recorded in the journal.
    App(AppArgs),
    /// Delete a deployment slot, under the release lock, recorded in the journal.
    Slot(SlotArgs),
    /// The whole release against an embedded emulator seeded from the config.
    Rehearse(RehearseArgs),
    /// Print a JSON Schema (release.yml by default).
    Schema(SchemaArgs),
    /// Serve the Azure emulator until Ctrl-C.
    Emulator(EmulatorArgs),
    /// Print, as JSON, the task inputs the binary reads and the commands that read each (for tests of
    /// task.json).
    #[command(hide = true)]
    TaskInputs,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct Common {
    /// The release config.
    #[arg(long, default_value = "release.yml")]
    pub(crate) config: PathBuf,
    /// The environment (overrides the stage's).
    #[arg(long)]
    pub(crate) environment: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct Connection {
    /// The AzureRM service connection id (default: the task input azureSubscription).
    #[arg(long, env = "INPUT_AZURESUBSCRIPTION", hide_env_values = true)]
    pub(crate) service_connection: Option<String>,
    /// The release id (default: the pipeline run's identity, shown as Build.BuildNumber; else a local
    /// timestamp).
    #[arg(long)]
    pub(crate) release_id: Option<String>,
}

/// Values given from outside release.yml that adjust it for one run.
#[derive(Debug, Clone, Args)]
pub(crate) struct Overrides {
    /// Bound every health gate (staging, swap preview, after a rollback) to this many seconds
    /// instead of the config's `timeout` (the task input healthTimeoutSeconds).
    #[arg(long, value_name = "SECONDS")]
    pub(crate) health_timeout_seconds: Option<u64>,
}

impl Overrides {
    pub(crate) fn apply(&self, loaded: &mut release::LoadedRelease, log: &Log) -> Result<()> {
        if let Some(seconds) = self.health_timeout_seconds {
            let timeout = HealthTimeout::from_secs(seconds)?;
            loaded.spec.override_health_timeout(timeout)?;
            log.info(&format!(
                "Health gates time out after {seconds}s (healthTimeoutSeconds), not the config's timeout"
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) connection: Connection,
    #[command(flatten)]
    pub(crate) overrides: Overrides,
    /// The stage to plan.
    #[arg(long, default_value = "staging")]
    pub(crate) stage: String,
    /// Read the live state from this JSON file instead of Azure.
    #[arg(long)]
    pub(crate) state: Option<PathBuf>,
    /// With `--stage rollback`: the release the rollback would return to.
    #[arg(long = "to", value_name = "RELEASE")]
    pub(crate) rollback_to: Option<String>,
    /// With `--stage production`: plan as if the staging stage had staged this release (always so in a
    /// pull-request run, whose release is never staged).
    #[arg(long)]
    pub(crate) as_if_staged: bool,
    /// Plan for this target of `targets` (default: the config's `app`, else the first target).
    #[arg(long = "targets", visible_alias = "target", value_name = "TARGET")]
    pub(crate) targets: Vec<String>,
    /// Set the `Matrix` output to this wave's targets only (default: every target).
    #[arg(long, value_name = "WAVE")]
    pub(crate) wave: Option<u32>,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) connection: Connection,
    #[command(flatten)]
    pub(crate) overrides: Overrides,
    /// Write the release record (JSON) here.
    #[arg(long)]
    pub(crate) record: Option<PathBuf>,
    /// The package to deploy instead of building one: the zip an earlier `build` wrote (its build record
    /// beside it is verified), or a zip or folder made by another tool. Wildcards select exactly one match
    /// (`drop/*.zip`, `**/*.zip`).
    #[arg(long, value_name = "PATH_OR_PATTERN")]
    pub(crate) package: Option<String>,
    /// The build record to verify the package against (default: `slot-release-build.json` beside a zip).
    #[arg(long, value_name = "PATH", requires = "package")]
    pub(crate) build_record: Option<PathBuf>,
    /// Where a built package and its build record are written, for the pipeline to publish (default: the
    /// work dir).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
    /// Where packages, plans and summaries are written.
    #[arg(long)]
    pub(crate) work_dir: Option<PathBuf>,
    /// Continue a release that stopped half-way.
    #[arg(long, conflicts_with = "rollback_unfinished")]
    pub(crate) resume: bool,
    /// Roll back a release that stopped half-way, then run.
    #[arg(long)]
    pub(crate) rollback_unfinished: bool,
    /// Stop starting new steps after this many minutes (the run then ends as cancelled).
    #[arg(long)]
    pub(crate) timeout_minutes: Option<u64>,
    /// The targets of `targets` to release, comma-separated (default: every target): wave by wave, at
    /// most `fanOut.maxParallel` at once, each with its own lock and journal.
    #[arg(
        long = "targets",
        visible_alias = "target",
        value_name = "TARGET[,TARGET…]"
    )]
    pub(crate) targets: Vec<String>,
    /// Take over the stale release lock with this token (the refusal names it).
    #[arg(long, value_name = "TOKEN")]
    pub(crate) take_over_lock: Option<String>,
    /// How long the release lock lives without renewal; renewed every third of it while the stage runs.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 180,
        env = "SLOT_RELEASE_LOCK_TTL_SECONDS"
    )]
    pub(crate) lock_ttl_seconds: u64,
    /// rollback: the release to return to, by id or build number (default: the one before the current release).
    #[arg(long = "to", value_name = "RELEASE")]
    pub(crate) rollback_to: Option<String>,
    /// The pipeline artifact the package was downloaded from, kept in the release history with the run that
    /// built it so a later rollback can name what to download again.
    #[arg(long, value_name = "NAME", default_value = "slot-release-package")]
    pub(crate) artifact_name: String,
}

/// What `build` takes: it never reaches Azure, so no connection, lock or rollback options.
#[derive(Debug, Clone, Args)]
pub(crate) struct BuildArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// The release id (default: the pipeline run's identity, else a local timestamp).
    #[arg(long)]
    pub(crate) release_id: Option<String>,
    /// Write the release record (JSON) here.
    #[arg(long)]
    pub(crate) record: Option<PathBuf>,
    /// Record this zip or folder (made by another tool) instead of building from `package.root`; a folder
    /// is zipped. Wildcards select exactly one match.
    #[arg(long, value_name = "PATH_OR_PATTERN")]
    pub(crate) package: Option<String>,
    /// Where the package and its build record are written, for the pipeline to publish (default: the
    /// work dir).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
    /// Where packages and summaries are written.
    #[arg(long)]
    pub(crate) work_dir: Option<PathBuf>,
    /// Stop after this many minutes (the run then ends as cancelled).
    #[arg(long)]
    pub(crate) timeout_minutes: Option<u64>,
    /// Accepted so a script that passes it to every stage keeps working; a build never uses it.
    #[arg(long, hide = true)]
    pub(crate) service_connection: Option<String>,
}

impl BuildArgs {
    /// The stage options a build runs with; the ones it does not take keep their defaults.
    pub(crate) fn into_run(self) -> RunArgs {
        RunArgs {
            common: self.common,
            connection: Connection {
                service_connection: self.service_connection,
                release_id: self.release_id,
            },
            overrides: Overrides {
                health_timeout_seconds: None,
            },
            record: self.record,
            package: self.package,
            build_record: None,
            out: self.out,
            work_dir: self.work_dir,
            resume: false,
            rollback_unfinished: false,
            timeout_minutes: self.timeout_minutes,
            targets: Vec::new(),
            take_over_lock: None,
            lock_ttl_seconds: 180,
            rollback_to: None,
            artifact_name: "slot-release-package".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub(crate) struct RehearseArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) overrides: Overrides,
    /// Show a failure path and its recovery: none, health, migration or watch.
    #[arg(long, default_value = "none")]
    pub(crate) fail_at: FailAt,
    /// Short gates (every 250 ms, at most 2 successes) and a 3 s watch, said in the log: proves the path
    /// in seconds, e.g. in a pull-request run. Azure's own pace (Retry-After, deployments) is kept.
    #[arg(long)]
    pub(crate) quick: bool,
    /// Write the release record (JSON) here.
    #[arg(long)]
    pub(crate) record: Option<PathBuf>,
    /// Keep the emulator's files here (default: a temporary folder).
    #[arg(long)]
    pub(crate) work_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct SchemaArgs {
    /// Print the schema of the plan's JSON instead.
    #[arg(long)]
    pub(crate) plan: bool,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct EmulatorArgs {
    /// The seed (YAML or JSON); default: a sample.
    #[arg(long)]
    pub(crate) seed: Option<PathBuf>,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub(crate) port: u16,
    /// Folder for the emulator's files.
    #[arg(long)]
    pub(crate) work_dir: Option<PathBuf>,
    /// How apps' default hosts are named: `unique` (`<app>-<hash>.<region>.azurewebsites…`, as apps
    /// created since 2024 may be) or `classic` (`<app>[-<slot>].azurewebsites…`); default: the
    /// seed's `hostNameStyle` (unique).
    #[arg(long, value_name = "unique|classic")]
    pub(crate) host_names: Option<slot_release_emulator::HostNameStyle>,
    /// A container image the emulator runs as a local command: `PATTERN=COMMAND`, e.g.
    /// `'contoso.azurecr.io/contoso/app:*=python3 app.py'` (`*` matches any run of characters);
    /// repeatable, and ahead of the seed's `images`.
    #[arg(long = "image", value_name = "PATTERN=COMMAND")]
    pub(crate) images: Vec<String>,
    /// The folder the `--image` commands run in (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub(crate) image_dir: Option<PathBuf>,
    /// A folder put in front of `PATH` for code apps and their builds, standing in for the tools
    /// App Service's images carry (e.g. `gunicorn`); repeatable.
    #[arg(long = "runtime-path", value_name = "DIR")]
    pub(crate) runtime_path: Vec<PathBuf>,
    /// The local package folder (wheels, sdists) Python builds install from, offline
    /// (`pip install --no-index --find-links DIR`).
    #[arg(long, value_name = "DIR")]
    pub(crate) python_packages: Option<PathBuf>,
    /// The npm cache Node builds install from, offline (`npm ci --offline --cache DIR`).
    #[arg(long, value_name = "DIR")]
    pub(crate) npm_cache: Option<PathBuf>,
}

impl Cmd {
    /// Whether the command was asked for JSON output.
    pub(crate) fn json(&self) -> bool {
        match self {
            Cmd::Validate(c) => c.json,
            Cmd::Plan(a) => a.common.json,
            Cmd::Build(a) => a.common.json,
            Cmd::Staging(a) | Cmd::Production(a) | Cmd::Rollback(a) | Cmd::Release(a) => {
                a.common.json
            }
            Cmd::Rehearse(a) => a.common.json,
            Cmd::App(a) => match &a.action {
                AppCmd::Start(t) | AppCmd::Stop(t) | AppCmd::Restart(t) => t.run.common.json,
            },
            Cmd::Slot(a) => match &a.action {
                SlotCmd::Delete(t) => t.run.common.json,
            },
            Cmd::Schema(_) | Cmd::Emulator(_) | Cmd::TaskInputs => false,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub(crate) struct AppArgs {
    #[command(subcommand)]
    pub(crate) action: AppCmd,
}

#[derive(Debug, Clone, Subcommand)]
pub(crate) enum AppCmd {
    /// Start a stopped slot and wait until it answers its health path.
    Start(AppTarget),
    /// Stop a slot: its app ends and its host answers 403 until it is started.
    Stop(AppTarget),
    /// Restart a slot's app and wait until it answers its health path.
    Restart(AppTarget),
}

#[derive(Debug, Clone, Args)]
pub(crate) struct AppTarget {
    /// The slot (default: production).
    #[arg(long, default_value = "production")]
    pub(crate) slot: String,
    #[command(flatten)]
    pub(crate) run: CommandRun,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct SlotArgs {
    #[command(subcommand)]
    pub(crate) action: SlotCmd,
}

#[derive(Debug, Clone, Subcommand)]
pub(crate) enum SlotCmd {
    /// Delete a deployment slot (never production, nor the slot a release or its rollback needs).
    Delete(SlotTarget),
}

#[derive(Debug, Clone, Args)]
pub(crate) struct SlotTarget {
    /// The slot to delete.
    #[arg(long)]
    pub(crate) slot: String,
    #[command(flatten)]
    pub(crate) run: CommandRun,
}

/// What an app command takes besides its slot: the config, the connection, the lock and the deadlines.
#[derive(Debug, Clone, Args)]
pub(crate) struct CommandRun {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) connection: Connection,
    #[command(flatten)]
    pub(crate) overrides: Overrides,
    /// Write the command's record (JSON: the command, slot, result, errors, the health wait) here.
    #[arg(long)]
    pub(crate) record: Option<PathBuf>,
    /// Stop after this many minutes (the command then ends as failed; the lock is given back).
    #[arg(long)]
    pub(crate) timeout_minutes: Option<u64>,
    /// Take over the stale release lock with this token (the refusal names it).
    #[arg(long, value_name = "TOKEN")]
    pub(crate) take_over_lock: Option<String>,
    /// How long the release lock lives without renewal; renewed every third of it while the command runs.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 180,
        env = "SLOT_RELEASE_LOCK_TTL_SECONDS"
    )]
    pub(crate) lock_ttl_seconds: u64,
}
