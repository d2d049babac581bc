//! Diagnostics from the libraries (`tracing` events: retries and their Retry-After, waits for a running
//! deployment, and at trace level every HTTP request) reach the user as debug lines of the log: `##[debug]`
//! under the agent when System.Debug is on. Their warnings (a secret skipped) are warnings of the run in any
//! mode. Masked and neutralised like every other line.

use std::io::Write;

use slot_release_pipelines::Log;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// How much the libraries say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Retries, waits and skipped secrets (System.Debug, `logLevel: debug`).
    Debug,
    /// Also every HTTP request: method, host and path, status (`logLevel: trace`).
    Trace,
}

impl Detail {
    /// What the agent's variables and the task's input ask for, if anything.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Option<Detail> {
        let level = lookup("INPUT_LOGLEVEL").unwrap_or_default();
        if level.eq_ignore_ascii_case("trace") {
            return Some(Detail::Trace);
        }
        let system_debug = lookup("SYSTEM_DEBUG").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        (level.eq_ignore_ascii_case("debug") || system_debug).then_some(Detail::Debug)
    }
}

/// Sends the `tracing` events of this project's crates to `log`: warnings always, as warnings; at `detail`
/// (when asked) the rest, as debug lines.
pub fn install(log: &Log, detail: Option<Detail>) {
    let level = match detail {
        None => "warn",
        Some(Detail::Debug) => "debug",
        Some(Detail::Trace) => "trace",
    };
    // Only this project's crates: a dependency's events could quote a request's headers.
    let filter = EnvFilter::new(format!(
        "off,slot_release={level},slot_release_azure={level},slot_release_engine={level}"
    ));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(ToLog(log.clone()))
        .with_ansi(false)
        .without_time()
        .with_level(false)
        .with_target(false)
        .finish();
    // A second install (tests running main twice in one process) keeps the first.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// A writer per event, into the log.
struct ToLog(Log);

impl<'a> MakeWriter<'a> for ToLog {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter {
            log: self.0.clone(),
            warning: false,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> LineWriter {
        LineWriter {
            log: self.0.clone(),
            warning: *meta.level() <= tracing::Level::WARN,
        }
    }
}

/// Each line written becomes one line of the log: a warning, or a debug line.
struct LineWriter {
    log: Log,
    warning: bool,
}

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for line in String::from_utf8_lossy(buf).lines() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if self.warning {
                self.log.warning(line);
            } else {
                self.log.debug(line);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_follows_the_input_and_system_debug() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(Detail::from_env(env(&[])), None);
        assert_eq!(
            Detail::from_env(env(&[("SYSTEM_DEBUG", "True")])),
            Some(Detail::Debug)
        );
        assert_eq!(
            Detail::from_env(env(&[("INPUT_LOGLEVEL", "debug")])),
            Some(Detail::Debug)
        );
        assert_eq!(
            Detail::from_env(env(&[
                ("INPUT_LOGLEVEL", "Trace"),
                ("SYSTEM_DEBUG", "false")
            ])),
            Some(Detail::Trace)
        );
        assert_eq!(
            Detail::from_env(env(&[
                ("INPUT_LOGLEVEL", "info"),
                ("SYSTEM_DEBUG", "false")
            ])),
            None
        );
    }
}
