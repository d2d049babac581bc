//! An app's logs as App Service keeps them, read through Kudu: `GET /api/logs/docker` lists the
//! container logs of a slot (`…_default_docker.log`, what the app printed, and `…_docker.log`, the
//! platform's own lines), each read from its `href`. [`start_failure`] reads the platform's lines to
//! tell whether the app's latest start failed (the container exited, or never answered HTTP pings),
//! so a health gate can stop at once and say why instead of probing a 503 until its timeout.

use std::time::Duration;

use azure_core::http::Method;
use serde::Deserialize;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::client::{Call, parse_json};
use crate::error::{AzureError, Result};
use crate::kudu::Kudu;

/// How much of a log file is kept: its last bytes hold the lines that matter.
const TAIL_BYTES: usize = 64 * 1024;
/// How many of the app's own lines a failure quotes.
const TAIL_LINES: usize = 10;

/// One entry of `GET /api/logs/docker`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerLog {
    /// The instance, e.g. `lw1sdlwk000ABC` (`…_default` for the app's own log).
    #[serde(default)]
    pub machine_name: String,
    /// Last write (RFC 3339).
    #[serde(default)]
    pub last_updated: String,
    /// Size in bytes.
    #[serde(default)]
    pub size: u64,
    /// Where to read it (`https://<scm host>/api/vfs/LogFiles/<file>`).
    pub href: String,
    /// The file on the instance, e.g. `/home/LogFiles/2026_12_05_lw1sdlwk000ABC_docker.log`.
    #[serde(default)]
    pub path: String,
}

impl DockerLog {
    fn file_name(&self) -> &str {
        let from = if self.path.is_empty() {
            &self.href
        } else {
            &self.path
        };
        from.rsplit('/').next().unwrap_or_default()
    }

    /// The platform's log (`…_docker.log`), not the app's (`…_default_docker.log`).
    pub fn is_platform(&self) -> bool {
        let name = self.file_name();
        name.ends_with("_docker.log") && !name.ends_with("_default_docker.log")
    }

    /// The app's own output (`…_default_docker.log`).
    pub fn is_app(&self) -> bool {
        self.file_name().ends_with("_default_docker.log")
    }
}

/// Why the app's latest start failed, as the platform's log says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartFailure {
    /// The container (the startup command) exited.
    Exited {
        /// Its exit status, when the log gives it.
        status: Option<i32>,
        /// How long after the container started.
        after: Option<Duration>,
        /// Whether it exited during start-up (App Service then fails the site start).
        during_start: bool,
    },
    /// It never answered HTTP pings on its port.
    NoAnswer {
        /// The port pinged.
        port: Option<u16>,
    },
    /// The image could not be pulled (a wrong tag, a missing registry credential).
    ImagePull {
        /// The registry's answer as the platform quotes it (untrusted text).
        message: String,
    },
}

/// A failed start and the app's last lines since that start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppStartReport {
    /// What the platform says.
    pub failure: StartFailure,
    /// The app's last lines (timestamps removed), oldest first; untrusted text.
    pub app_lines: Vec<String>,
}

/// Splits `2026-12-05T01:02:03.456Z rest` into its time and the rest.
fn timestamped(line: &str) -> Option<(OffsetDateTime, &str)> {
    let (stamp, rest) = line.split_once(' ')?;
    let at = OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339).ok()?;
    Some((at, rest.trim_start()))
}

fn number_after(text: &str, marker: &str) -> Option<i64> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    digits.parse().ok()
}

/// The failure of the latest start in a platform log, if it failed: a start clears what came before
/// (a failure of an older start says nothing about the app now), an exit or an unanswered ping
/// after it is the failure. Also returns when that start began, to pick the app's lines since.
pub fn start_failure(platform: &str) -> Option<(StartFailure, Option<OffsetDateTime>)> {
    let mut started: Option<OffsetDateTime> = None;
    let mut failure: Option<StartFailure> = None;
    for line in platform.lines() {
        let (at, text) = match timestamped(line) {
            Some((at, text)) => (Some(at), text),
            None => (None, line),
        };
        let lower = text.to_ascii_lowercase();
        if lower.contains("starting container for site") {
            started = at;
            failure = None;
        } else if lower.contains("has exited") {
            failure = Some(StartFailure::Exited {
                status: number_after(&lower, "with status ")
                    .or_else(|| number_after(&lower, "exit code"))
                    .and_then(|n| i32::try_from(n).ok()),
                after: started
                    .zip(at)
                    .and_then(|(s, e)| Duration::try_from(e - s).ok()),
                during_start: lower.contains("failing site start"),
            });
        } else if lower.contains("dockerapiexception") {
            // The registry's answer: the most telling line of a failed pull.
            failure = Some(StartFailure::ImagePull {
                message: text
                    .split_once(" - ")
                    .map_or(text, |(_, m)| m)
                    .trim()
                    .to_owned(),
            });
        } else if (lower.contains("image pull failed")
            || (lower.contains("pulling") && lower.contains("failed")))
            && failure.is_none()
        {
            failure = Some(StartFailure::ImagePull {
                message: text
                    .split_once(" - ")
                    .map_or(text, |(_, m)| m)
                    .trim()
                    .to_owned(),
            });
        } else if lower.contains("didn't respond to http pings") && failure.is_none() {
            failure = Some(StartFailure::NoAnswer {
                port: number_after(&lower, "port:").and_then(|n| u16::try_from(n).ok()),
            });
        }
    }
    failure.map(|f| (f, started))
}

/// The app's last lines since `since` (all kept lines when unknown), timestamps removed.
pub fn app_lines(app_log: &str, since: Option<OffsetDateTime>) -> Vec<String> {
    let lines: Vec<String> = app_log
        .lines()
        .filter_map(|line| match timestamped(line) {
            Some((at, text)) => since.is_none_or(|s| at >= s).then(|| text.to_owned()),
            None => Some(line.to_owned()),
        })
        .filter(|l| !l.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].to_vec()
}

impl Kudu {
    /// `GET /api/logs/docker`: the slot's container logs.
    pub async fn docker_logs(&self, cancel: &CancellationToken) -> Result<Vec<DockerLog>> {
        let op = self.op("list container logs");
        let rsp = self
            .call(
                Call::new(&op, Method::Get, self.url("api/logs/docker", cancel).await?),
                cancel,
            )
            .await?;
        parse_json(&op, &rsp)
    }

    /// The last bytes of a log file named by `GET /api/logs/docker` (its `href`, on the SCM host).
    pub async fn read_log(&self, log: &DockerLog, cancel: &CancellationToken) -> Result<String> {
        let op = self.op("read a container log");
        let url = Url::parse(&log.href)
            .map_err(|e| AzureError::invalid("log URL", &log.href, e.to_string()))?;
        let rsp = self.call(Call::new(&op, Method::Get, url), cancel).await?;
        let body = rsp.body();
        let tail = &body[body.len().saturating_sub(TAIL_BYTES)..];
        Ok(String::from_utf8_lossy(tail).into_owned())
    }

    /// Whether the app's latest start failed, with its last lines: reads the newest platform log
    /// and the newest app log. `None` when the app started (or is starting) or keeps no logs.
    pub async fn start_report(&self, cancel: &CancellationToken) -> Result<Option<AppStartReport>> {
        let mut logs = self.docker_logs(cancel).await?;
        // Newest last: the file names start with the day, and lastUpdated orders a day's files.
        logs.sort_by(|a, b| {
            (a.file_name().get(..10), &a.last_updated)
                .cmp(&(b.file_name().get(..10), &b.last_updated))
        });
        let Some(platform) = logs.iter().rev().find(|l| l.is_platform()) else {
            return Ok(None);
        };
        let Some((failure, since)) = start_failure(&self.read_log(platform, cancel).await?) else {
            return Ok(None);
        };
        let app_lines = match logs.iter().rev().find(|l| l.is_app()) {
            Some(log) => app_lines(&self.read_log(log, cancel).await?, since),
            None => Vec::new(),
        };
        Ok(Some(AppStartReport { failure, app_lines }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRASH: &str = "\
2026-12-05T01:00:00.000Z INFO  - Starting container for site shop
2026-12-05T01:00:00.100Z INFO  - Container shop_0_1 for site shop initialized successfully and is ready to serve requests.
2026-12-05T01:05:00.000Z INFO  - Starting container for site shop
2026-12-05T01:05:00.000Z INFO  - docker run -d --expose=8000 --name shop_0_2 appsvc/python:3.12
2026-12-05T01:05:00.400Z ERROR - Container shop_0_2 for site shop has exited with status 1, failing site start
2026-12-05T01:05:00.400Z ERROR - Container shop_0_2 didn't respond to HTTP pings on port: 8000, failing site start. See container logs for debugging.
";

    #[test]
    fn an_exit_after_the_latest_start_is_its_failure_with_status_and_time() {
        let (failure, since) = start_failure(CRASH).expect("a failure");
        assert_eq!(
            failure,
            StartFailure::Exited {
                status: Some(1),
                after: Some(Duration::from_millis(400)),
                during_start: true
            }
        );
        let app = "\
2026-12-05T01:00:00.050Z an old line
2026-12-05T01:05:00.200Z Traceback (most recent call last):
2026-12-05T01:05:00.300Z ModuleNotFoundError: No module named 'gunicorn'
";
        assert_eq!(
            app_lines(app, since),
            vec![
                "Traceback (most recent call last):".to_owned(),
                "ModuleNotFoundError: No module named 'gunicorn'".to_owned()
            ]
        );
    }

    #[test]
    fn a_later_start_clears_an_older_failure_and_azure_lines_without_status_count() {
        let restarted =
            format!("{CRASH}2026-12-05T01:06:00.000Z INFO  - Starting container for site shop\n");
        assert_eq!(start_failure(&restarted), None, "the new start is pending");
        // App Service's own wording has no status.
        let azure = "2026-12-05T01:05:00.000Z INFO  - Starting container for site shop\n\
            2026-12-05T01:05:02.000Z ERROR - Container shop_0_2 for site shop has exited, failing site start\n";
        let (failure, _) = start_failure(azure).expect("a failure");
        assert_eq!(
            failure,
            StartFailure::Exited {
                status: None,
                after: Some(Duration::from_secs(2)),
                during_start: true
            }
        );
        let silent = "2026-12-05T01:05:00.000Z INFO  - Starting container for site shop\n\
            2026-12-05T01:09:00.000Z ERROR - Container shop_0_2 didn't respond to HTTP pings on port: 8080, failing site start.\n";
        assert_eq!(
            start_failure(silent).map(|f| f.0),
            Some(StartFailure::NoAnswer { port: Some(8080) })
        );
        assert_eq!(
            start_failure(
                &CRASH
                    .replace("has exited with status 1, failing site start", "x")
                    .replace("didn't respond", "y")
            ),
            None
        );
    }
}
