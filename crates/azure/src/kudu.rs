//! Kudu (the SCM site) of one slot: OneDeploy from a file on disk with status polling and the log on
//! failure, `/api/command` (long commands run in the background and polled), and deployment history.

use crate::client::{Call, body_json, header, parse_json, retry_after, sleep_or_cancel};
use crate::error::{AzureError, Result};
use crate::upload::FileStream;
use crate::webapp::{SlotName, WebApp};
use azure_core::http::{Body, Context, Method, Pipeline, PipelineSendOptions, Request};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;
use url::Url;

mod packages;
pub use packages::SitePackages;

/// Kudu's deployment status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "i64", into = "i64")]
pub enum DeployStatus {
    /// 0.
    Pending,
    /// 1.
    Building,
    /// 2.
    Deploying,
    /// 3.
    Failed,
    /// 4.
    Success,
    /// Any other code.
    Other(i64),
}

impl From<i64> for DeployStatus {
    fn from(v: i64) -> Self {
        match v {
            0 => Self::Pending,
            1 => Self::Building,
            2 => Self::Deploying,
            3 => Self::Failed,
            4 => Self::Success,
            o => Self::Other(o),
        }
    }
}

impl From<DeployStatus> for i64 {
    fn from(s: DeployStatus) -> i64 {
        match s {
            DeployStatus::Pending => 0,
            DeployStatus::Building => 1,
            DeployStatus::Deploying => 2,
            DeployStatus::Failed => 3,
            DeployStatus::Success => 4,
            DeployStatus::Other(o) => o,
        }
    }
}

impl DeployStatus {
    /// Success or Failed.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Success | Self::Failed)
    }
}

/// A Kudu deployment (`DeployResult`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Deployment {
    /// Deployment id.
    pub id: String,
    /// Status.
    pub status: DeployStatus,
    /// Status text.
    pub status_text: String,
    /// Message.
    pub message: String,
    /// Author.
    pub author: String,
    /// Deployer (`OneDeploy`, `VSTS`, …).
    pub deployer: String,
    /// Whether Kudu has finalised the status.
    pub complete: bool,
    /// Whether this is the active deployment.
    pub active: bool,
    /// Received time (ISO 8601).
    pub received_time: Option<String>,
    /// Start time.
    pub start_time: Option<String>,
    /// End time.
    pub end_time: Option<String>,
    /// Log URL.
    pub log_url: Option<String>,
}

impl Default for Deployment {
    fn default() -> Self {
        Self {
            id: String::new(),
            status: DeployStatus::Pending,
            status_text: String::new(),
            message: String::new(),
            author: String::new(),
            deployer: String::new(),
            complete: false,
            active: false,
            received_time: None,
            start_time: None,
            end_time: None,
            log_url: None,
        }
    }
}

/// One line of a deployment log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogEntry {
    /// Time.
    pub log_time: Option<String>,
    /// Entry id.
    pub id: String,
    /// Text (from the service; neutralise before printing).
    pub message: String,
    /// 0 info, 1 warning, 2 error.
    #[serde(rename = "type")]
    pub kind: i64,
    /// Where nested details are.
    pub details_url: Option<String>,
}

/// How many of a failed deployment's last log lines its error shows.
pub const LOG_TAIL_LINES: usize = 20;

/// How many characters of one log line the error shows.
pub const LOG_TAIL_LINE_CHARS: usize = 240;

/// The last lines of a deployment log as a failed deployment's message ends: at most
/// [`LOG_TAIL_LINES`] non-blank lines, each cut at [`LOG_TAIL_LINE_CHARS`] characters, so a build that
/// printed megabytes still gives an error a person can read. Empty for an empty log.
pub(crate) fn log_tail(log: &[LogEntry]) -> String {
    let lines: Vec<&str> = log
        .iter()
        .flat_map(|e| e.message.lines())
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    if lines.is_empty() {
        return String::new();
    }
    let skipped = lines.len().saturating_sub(LOG_TAIL_LINES);
    let mut out = if skipped > 0 {
        format!(
            "\nlast {LOG_TAIL_LINES} lines of the deployment log ({skipped} earlier not shown):"
        )
    } else {
        "\nthe deployment log:".to_owned()
    };
    for line in &lines[skipped..] {
        out.push_str("\n  ");
        match line.char_indices().nth(LOG_TAIL_LINE_CHARS) {
            Some((cut, _)) => {
                out.push_str(&line[..cut]);
                out.push_str(" [...]");
            }
            None => out.push_str(line),
        }
    }
    out
}

/// A deployment-history record written after a swap or rollback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    /// Success or Failed.
    pub status: DeployStatus,
    /// Message (required by Kudu).
    pub message: String,
    /// Author (required by Kudu).
    pub author: String,
    /// Deployer (required by Kudu).
    pub deployer: String,
    /// Only a successful record may be active.
    pub active: bool,
    /// Free-form details.
    pub details: String,
}

/// Options of a OneDeploy upload.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    /// How long to wait for the deployment to finish (upload included).
    pub timeout: Duration,
    /// Stops the wait (an upload in progress is abandoned).
    pub cancel: CancellationToken,
    /// Artifact type (`zip`, `war`, `jar`, `static`, …).
    pub artifact_type: String,
    /// Remove files not in the package (`clean`).
    pub clean: bool,
    /// Restart the app after deployment.
    pub restart: bool,
    /// Deployment message (shows in the deployment history).
    pub message: Option<String>,
    /// How long to wait out a 409 "deployment in progress" before giving up.
    pub conflict_wait: Duration,
}

impl Default for DeployOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30 * 60),
            cancel: CancellationToken::new(),
            artifact_type: "zip".into(),
            clean: true,
            restart: true,
            message: None,
            conflict_wait: Duration::from_secs(10 * 60),
        }
    }
}

/// The result of `/api/command`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CommandOutput {
    /// Exit code (-1 when Kudu itself failed).
    #[serde(rename = "ExitCode")]
    pub exit_code: i64,
    /// Standard output.
    #[serde(rename = "Output", default)]
    pub output: String,
    /// Standard error.
    #[serde(rename = "Error", default)]
    pub error: String,
}

/// How Kudu requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KuduAuth {
    /// The ARM bearer token (default).
    #[default]
    Bearer,
    /// Basic publishing credentials when the app's policy allows them, else the bearer token.
    PublishingCredentialsIfAllowed,
}

/// Kudu of one slot.
#[derive(Debug, Clone)]
pub struct Kudu {
    app: WebApp,
    slot: SlotName,
    auth: KuduAuth,
    resolved: Arc<OnceCell<Resolved>>,
}

struct Resolved {
    base: Url,
    pipeline: Pipeline,
    basic: Option<String>,
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolved")
            .field("base", &self.base.as_str())
            .field("basic", &self.basic.is_some())
            .finish()
    }
}

/// Commands whose timeout exceeds this run in the background: Kudu's front end cuts requests at 230 s.
pub const SYNC_COMMAND_LIMIT: Duration = Duration::from_secs(200);

impl Kudu {
    pub(crate) fn new(app: WebApp, slot: SlotName) -> Self {
        Self {
            app,
            slot,
            auth: KuduAuth::Bearer,
            resolved: Arc::new(OnceCell::new()),
        }
    }

    /// Use another authentication mode.
    pub fn with_auth(mut self, auth: KuduAuth) -> Self {
        self.auth = auth;
        self.resolved = Arc::new(OnceCell::new());
        self
    }

    /// The slot this Kudu belongs to.
    pub fn slot(&self) -> &SlotName {
        &self.slot
    }

    /// The Kudu host and how to authenticate there, read from ARM once. A cancelled read leaves nothing
    /// behind: the next call reads again.
    async fn resolved(&self, cancel: &CancellationToken) -> Result<&Resolved> {
        self.resolved
            .get_or_try_init(|| async {
                let inner = self.app.inner();
                // The SCM host comes from ARM (the Repository host), never from a pattern: unique
                // default host names, shortened slot hosts, custom domains and App Service
                // Environments all name it their own way.
                let info = self.app.get_slot(&self.slot, cancel).await?;
                if info.scm_host.is_empty() {
                    return Err(AzureError::protocol(
                        format!("find the Kudu host of {}/{}", self.app.app().name, self.slot),
                        "ARM names no Kudu (SCM) host for the slot: properties.hostNameSslStates has no entry with hostType Repository and properties.enabledHostNames no .scm. host",
                    ));
                }
                let base = inner.cloud.host_url(&info.scm_host)?;
                // ARM named this host for the slot: the credentials may go there, and nowhere else.
                inner.trusted.trust(&base);
                let mut basic = None;
                let mut pipeline = inner.arm.clone();
                if self.auth == KuduAuth::PublishingCredentialsIfAllowed
                    && let Some((user, pass)) =
                        self.app.publishing_credentials(&self.slot, cancel).await?
                {
                    let token = base64::engine::general_purpose::STANDARD
                        .encode(format!("{user}:{}", pass.secret()));
                    basic = Some(format!("Basic {token}"));
                    pipeline = inner.plain.clone();
                }
                Ok(Resolved {
                    base,
                    pipeline,
                    basic,
                })
            })
            .await
    }

    pub(crate) async fn call(
        &self,
        call: Call<'_>,
        cancel: &CancellationToken,
    ) -> Result<azure_core::http::RawResponse> {
        let r = self.resolved(cancel).await?;
        let call = match &r.basic {
            Some(b) => call.header("authorization", b.clone()),
            None => call,
        };
        self.app.inner().send_with(&r.pipeline, call, cancel).await
    }

    /// [`Inner::get_streamed`](crate::client::Inner) with Kudu's sign-in.
    pub(crate) async fn get_streamed(
        &self,
        call: Call<'_>,
        cancel: &CancellationToken,
        sink: impl FnMut(&[u8]),
    ) -> Result<u64> {
        let r = self.resolved(cancel).await?;
        let call = match &r.basic {
            Some(b) => call.header("authorization", b.clone()),
            None => call,
        };
        self.app
            .inner()
            .get_streamed(&r.pipeline, call, cancel, sink)
            .await
    }

    pub(crate) async fn url(
        &self,
        path_and_query: &str,
        cancel: &CancellationToken,
    ) -> Result<Url> {
        let r = self.resolved(cancel).await?;
        r.base
            .join(path_and_query)
            .map_err(|e| AzureError::invalid("Kudu URL", path_and_query, e.to_string()))
    }

    pub(crate) fn op(&self, what: &str) -> String {
        format!("{what} on {}/{}", self.app.app().name, self.slot)
    }

    /// Upload a package with OneDeploy (`async=true`) and wait until Kudu reports success or failure.
    /// The upload streams from disk and is never repeated once the server has accepted it; a 409
    /// (another deployment running) is waited out up to `conflict_wait`, then the upload starts over.
    pub async fn deploy_zip(&self, package: &Path, opts: &DeployOptions) -> Result<Deployment> {
        let op = self.op("deploy");
        let started = Instant::now();
        let deadline = started + opts.timeout;
        let len = std::fs::metadata(package)
            .map_err(|source| AzureError::Io {
                operation: op.clone(),
                path: package.display().to_string(),
                source,
            })?
            .len();
        let mut url = self.url("api/publish", &opts.cancel).await?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("type", &opts.artifact_type)
                .append_pair("async", "true")
                .append_pair("clean", if opts.clean { "true" } else { "false" })
                .append_pair("restart", if opts.restart { "true" } else { "false" })
                .append_pair("deployer", "SlotRelease");
            if let Some(m) = &opts.message {
                q.append_pair("message", m);
            }
        }
        let r = self.resolved(&opts.cancel).await?;
        let mut conflict_since: Option<Instant> = None;
        let mut reauthenticated = false;
        let rsp = loop {
            let stream = FileStream::new(package.to_path_buf(), len);
            let mut req = Request::new(url.clone(), Method::Post);
            req.insert_header("content-type", "application/octet-stream");
            req.insert_header("content-length", len.to_string());
            if let Some(b) = &r.basic {
                req.insert_header("authorization", b.clone());
            }
            req.set_body(Body::SeekableStream(Box::new(stream)));
            let ctx = Context::new();
            let send = r.pipeline.send(
                &ctx,
                &mut req,
                Some(PipelineSendOptions {
                    skip_checks: true,
                    ..Default::default()
                }),
            );
            let remaining = deadline.saturating_duration_since(Instant::now());
            let rsp = tokio::select! {
                r = tokio::time::timeout(remaining, send) => match r {
                    Ok(Ok(rsp)) => rsp,
                    Ok(Err(e)) => return Err(crate::client::transport_error(&op, Method::Post, &url, e)),
                    Err(_) => return Err(AzureError::Timeout { operation: op, waited: opts.timeout }),
                },
                () = opts.cancel.cancelled() => return Err(AzureError::Cancelled { operation: op }),
            };
            let status = u16::from(rsp.status());
            if status == 401 && !reauthenticated {
                reauthenticated = true;
                continue;
            }
            if status == 409 {
                let err = crate::client::http_error(&op, Method::Post, &url, &rsp);
                let since = *conflict_since.get_or_insert_with(Instant::now);
                let wait = retry_after(&rsp).unwrap_or(
                    self.app
                        .inner()
                        .settings
                        .poll
                        .initial_interval
                        .max(Duration::from_secs(1)),
                );
                if since.elapsed() + wait > opts.conflict_wait || Instant::now() + wait > deadline {
                    return Err(err);
                }
                tracing::info!(operation = %op, "another deployment is in progress; waiting");
                sleep_or_cancel(wait, &opts.cancel, &op).await?;
                continue;
            }
            if !(200..300).contains(&status) {
                return Err(crate::client::http_error(&op, Method::Post, &url, &rsp));
            }
            break rsp;
        };
        // Poll this deployment by id when Kudu says which one it is: `latest` could be someone else's.
        let poll_url = match header(&rsp, "scm-deployment-id").filter(|id| {
            !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        }) {
            Some(id) => {
                self.url(&format!("api/deployments/{id}"), &opts.cancel)
                    .await?
            }
            None => match header(&rsp, "location") {
                Some(l) => self.url(l, &opts.cancel).await?,
                None => self.url("api/deployments/latest", &opts.cancel).await?,
            },
        };
        let mut wait = retry_after(&rsp);
        let mut interval = self.app.inner().settings.poll.initial_interval;
        let max = self.app.inner().settings.poll.max_interval;
        let deployment = loop {
            let d = wait
                .unwrap_or(interval)
                .min(max.max(Duration::from_secs(1)));
            if Instant::now() + d > deadline {
                return Err(AzureError::Timeout {
                    operation: op,
                    waited: opts.timeout,
                });
            }
            sleep_or_cancel(d, &opts.cancel, &op).await?;
            interval = (interval + interval / 2).min(max);
            let rsp = self
                .call(
                    Call::new(format!("{op} (status)"), Method::Get, poll_url.clone())
                        .accept(&[202]),
                    &opts.cancel,
                )
                .await?;
            wait = retry_after(&rsp);
            let d: Deployment = parse_json(&op, &rsp)?;
            if d.status.is_final() && (d.complete || u16::from(rsp.status()) == 200) {
                break d;
            }
        };
        if deployment.status == DeployStatus::Failed {
            let log = self
                .deployment_log(&deployment.id, &opts.cancel)
                .await
                .unwrap_or_default();
            let message = if deployment.status_text.is_empty() {
                deployment.message.clone()
            } else {
                deployment.status_text.clone()
            };
            return Err(AzureError::DeploymentFailed {
                id: deployment.id,
                message,
                log,
            });
        }
        Ok(deployment)
    }

    /// Run a command in the SCM container. Commands whose `timeout` exceeds [`SYNC_COMMAND_LIMIT`] run
    /// in the background and their result file is polled (Linux Kudu), so Kudu's 230 s request limit
    /// does not cut them off.
    pub async fn command(
        &self,
        cmd: &str,
        dir: &str,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<CommandOutput> {
        let limit = self.app.inner().settings.sync_command_limit;
        if timeout <= limit {
            self.command_sync(cmd, dir, timeout, cancel).await
        } else {
            self.command_background(cmd, dir, timeout, cancel).await
        }
    }

    async fn command_sync(
        &self,
        cmd: &str,
        dir: &str,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<CommandOutput> {
        let op = self.op("run command");
        let call = Call::new(&op, Method::Post, self.url("api/command", cancel).await?)
            .json(serde_json::json!({ "command": cmd, "dir": dir }))
            .header("if-match", "*".into());
        let rsp = tokio::select! {
            r = tokio::time::timeout(timeout, self.call(call, cancel)) => match r {
                Ok(r) => r?,
                Err(_) => return Err(AzureError::Timeout { operation: op, waited: timeout }),
            },
            () = cancel.cancelled() => return Err(AzureError::Cancelled { operation: op }),
        };
        parse_json(&op, &rsp)
    }

    async fn command_background(
        &self,
        cmd: &str,
        dir: &str,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<CommandOutput> {
        let op = self.op("run background command");
        let started = Instant::now();
        let id = uuid::Uuid::new_v4().simple().to_string();
        // The state lives in /home/data, shared storage whichever SCM instance answers, and writable
        // even when the site runs from its package (its wwwroot is read-only then).
        let state = format!("\"$HOME/data/.slot-release-cmd-{id}\"");
        let q = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
        let launcher = format!(
            "R={state}; mkdir -p \"$R\" && ( sh -c {cmd} > \"$R/out\" 2> \"$R/err\"; echo $? > \"$R/rc.tmp\"; mv \"$R/rc.tmp\" \"$R/rc\" ) < /dev/null > /dev/null 2>&1 &",
            cmd = q(cmd),
        );
        let short = Duration::from_secs(60);
        let launched = self.command_sync(&launcher, dir, short, cancel).await?;
        if launched.exit_code != 0 {
            return Err(AzureError::protocol(
                op,
                format!(
                    "could not start the command in the background: {}",
                    launched.error.trim()
                ),
            ));
        }
        let mut interval = self.app.inner().settings.poll.initial_interval;
        let max = self.app.inner().settings.poll.max_interval;
        let rc = loop {
            if started.elapsed() + interval > timeout {
                return Err(AzureError::Timeout {
                    operation: op,
                    waited: timeout,
                });
            }
            sleep_or_cancel(interval, cancel, &op).await?;
            interval = (interval + interval / 2).min(max);
            let r = self
                .command_sync(
                    &format!("cat {state}/rc 2>/dev/null || true"),
                    ".",
                    short,
                    cancel,
                )
                .await?;
            if let Ok(code) = r.output.trim().parse::<i64>() {
                break code;
            }
        };
        let out = self
            .command_sync(&format!("cat {state}/out"), ".", short, cancel)
            .await?
            .output;
        let err = self
            .command_sync(&format!("cat {state}/err"), ".", short, cancel)
            .await?
            .output;
        // Best effort: a leftover state directory is harmless.
        let _ = self
            .command_sync(&format!("rm -rf {state}"), ".", short, cancel)
            .await;
        Ok(CommandOutput {
            exit_code: rc,
            output: out,
            error: err,
        })
    }

    /// Deployment history, newest first as Kudu returns it.
    pub async fn deployments(&self, cancel: &CancellationToken) -> Result<Vec<Deployment>> {
        let op = self.op("list deployments");
        let rsp = self
            .call(
                Call::new(&op, Method::Get, self.url("api/deployments", cancel).await?),
                cancel,
            )
            .await?;
        parse_json(&op, &rsp)
    }

    /// Record a deployment in the history (after a swap or rollback).
    pub async fn put_deployment_record(
        &self,
        id: &str,
        record: &DeploymentRecord,
        cancel: &CancellationToken,
    ) -> Result<Deployment> {
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(AzureError::invalid(
                "deployment id",
                id,
                "use letters, digits, '-' and '_'",
            ));
        }
        let op = self.op("record deployment");
        let body =
            serde_json::to_value(record).map_err(|e| AzureError::protocol(&op, e.to_string()))?;
        let call = Call::new(
            &op,
            Method::Put,
            self.url(&format!("api/deployments/{id}"), cancel).await?,
        )
        .json(body);
        let rsp = self.call(call, cancel).await?;
        let v = body_json(&rsp);
        Ok(serde_json::from_value(v).unwrap_or_else(|_| Deployment {
            id: id.to_owned(),
            status: record.status,
            ..Deployment::default()
        }))
    }

    /// The log of a deployment, with one level of nested details expanded in place.
    pub async fn deployment_log(
        &self,
        id: &str,
        cancel: &CancellationToken,
    ) -> Result<Vec<LogEntry>> {
        let op = self.op("get deployment log");
        let rsp = self
            .call(
                Call::new(
                    &op,
                    Method::Get,
                    self.url(&format!("api/deployments/{id}/log"), cancel)
                        .await?,
                ),
                cancel,
            )
            .await?;
        let top: Vec<LogEntry> = parse_json(&op, &rsp)?;
        let mut out = Vec::with_capacity(top.len());
        for e in top {
            let details = e.details_url.clone();
            out.push(e);
            if let Some(u) = details.and_then(|u| Url::parse(&u).ok()) {
                // Details are best effort: the main log already says what failed.
                if let Ok(rsp) = self.call(Call::new(&op, Method::Get, u), cancel).await
                    && let Ok(more) = serde_json::from_slice::<Vec<LogEntry>>(rsp.body())
                {
                    out.extend(more);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(message: &str) -> LogEntry {
        LogEntry {
            message: message.to_owned(),
            ..LogEntry::default()
        }
    }

    #[test]
    fn a_failed_deployment_shows_the_last_lines_of_its_log_bounded() {
        assert_eq!(log_tail(&[]), "");
        let short = [
            entry("Running oryx build..."),
            entry(""),
            entry("Deployment Failed."),
        ];
        assert_eq!(
            log_tail(&short),
            "\nthe deployment log:\n  Running oryx build...\n  Deployment Failed."
        );
        // A build that printed a lot: the last lines only, each cut, multi-line entries split.
        let mut long: Vec<LogEntry> = (0..500).map(|i| entry(&format!("line {i}"))).collect();
        long.push(entry(&"é".repeat(10_000)));
        long.push(entry(
            "ERROR: No matching distribution found for missing==2.0\nDeployment Failed.",
        ));
        let tail = log_tail(&long);
        assert!(tail.contains("(483 earlier not shown)"), "{tail}");
        assert!(
            !tail.contains("line 482\n") && tail.contains("line 483"),
            "{tail}"
        );
        assert!(
            tail.ends_with("missing==2.0\n  Deployment Failed."),
            "{tail}"
        );
        assert_eq!(tail.lines().count(), 1 + LOG_TAIL_LINES + 1);
        assert!(
            tail.len() < (LOG_TAIL_LINES + 1) * (LOG_TAIL_LINE_CHARS * 2 + 16),
            "{}",
            tail.len()
        );
        assert!(tail.contains(" [...]"));
    }
}
