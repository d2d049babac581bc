//! The binary run directly in a world, as a pipeline step's script would run it (no Node entry point):
//! a clean environment with the service connection's variables, the world's config and connection, and
//! the output echoed for the test's log.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Output;

use crate::world::{World, cli_env};

impl World {
    /// The environment the binary gets for the service-principal connection: its endpoint variables
    /// and the emulator's CA (`AGENT_CAINFO`).
    pub fn cli_env(&self) -> BTreeMap<String, String> {
        cli_env(&self.emulator, &self.cli_connection)
    }

    /// `slot-release <args> --config <the world's config> --service-connection <its connection>` with
    /// nothing of the test's environment but `PATH`, the job's first attempt, and packages and summaries
    /// in the world's folder. The process is killed when the command is dropped.
    pub fn cli_command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.binary);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .env("TMPDIR", self.dir.path())
            // Every job's first attempt, as the agent says; `cli_retry` runs the next one.
            .env("SYSTEM_JOBATTEMPT", "1")
            .envs(self.cli_env())
            .args(args)
            .arg("--config")
            .arg(self.config())
            .args(["--service-connection", &self.cli_connection])
            .kill_on_drop(true);
        cmd
    }

    /// Runs the binary to its end ([`World::cli_command`]), echoing the command and its output.
    pub async fn cli(&self, args: &[&str]) -> Output {
        self.cli_with(args, &[]).await
    }

    /// [`World::cli`] with extra environment variables.
    pub async fn cli_with(&self, args: &[&str], env: &[(&str, String)]) -> Output {
        let mut cmd = self.cli_command(args);
        cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        let out = cmd
            .output()
            .await
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.binary.display()));
        let shown: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        eprintln!(
            "$ {}slot-release {}\n{}",
            shown.concat(),
            args.join(" "),
            printed(&out)
        );
        out
    }

    /// Where [`World::cli_recorded`] has the binary write its release record: in the sources copy.
    pub fn record_path(&self) -> PathBuf {
        self.sources.join("record.json")
    }

    /// [`World::cli`] with `--record` [`World::record_path`], so [`World::record`] reads what it recorded.
    pub async fn cli_recorded(&self, args: &[&str]) -> Output {
        let record = self.record_path();
        let mut args = args.to_vec();
        args.extend(["--record", record.to_str().expect("a UTF-8 path")]);
        self.cli(&args).await
    }

    /// The release record the last [`World::cli_recorded`] run wrote.
    pub fn record(&self) -> serde_json::Value {
        let path = self.record_path();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("no release record at {}: {e}", path.display()));
        serde_json::from_str(&text).expect("the release record is JSON")
    }

    /// Runs again as the agent retries a failed or killed job: the same run, the next job attempt.
    pub async fn cli_retry(&self, args: &[&str], attempt: u32) -> Output {
        self.cli_with(args, &[("SYSTEM_JOBATTEMPT", attempt.to_string())])
            .await
    }
}

/// What the run wrote to stdout (outside a pipeline, the whole log).
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Everything the run printed, stdout then stderr (the log goes to stdout outside a pipeline, errors to
/// stderr).
pub fn printed(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
