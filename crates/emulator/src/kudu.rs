//! Kudu (SCM): OneDeploy and ZipDeploy with streamed uploads and asynchronous status 0→1→2→4/3,
//! extraction into the slot's site folder (zip-slip refused), deployment history and logs,
//! `/api/command`, `/api/settings`, and bearer or basic (publishing credentials) authentication.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::entra::check_bearer;
use crate::fault::Fault;
use crate::server::{json, query_param, read_json};
use crate::state::{DeploymentRecord, Slot, hex, new_id, now_rfc3339};
use crate::{ARM_AUDIENCE, Shared, lock};

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

fn authorized(shared: &Shared, app: &str, slot: &str, headers: &HeaderMap) -> bool {
    if check_bearer(shared, headers, ARM_AUDIENCE).is_ok() {
        return true;
    }
    let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(s, _)| s.eq_ignore_ascii_case("basic"))
        .and_then(|(_, b)| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
    else {
        return false;
    };
    let state = lock(&shared.state);
    let Some(a) = state.apps.get(app) else {
        return false;
    };
    let expected = format!(
        "{}:{}",
        a.publishing_user(slot),
        a.publishing_password.expose()
    );
    a.basic_auth && basic == expected
}

pub(crate) async fn handle(
    shared: Arc<Shared>,
    app: String,
    slot: String,
    req: Request<Body>,
) -> Response {
    if !authorized(&shared, &app, &slot, req.headers()) {
        let mut resp = text(
            StatusCode::UNAUTHORIZED,
            "401 - Unauthorized: Access is denied due to invalid credentials.",
        );
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"site\""),
        );
        return resp;
    }
    let path = req.uri().path().trim_end_matches('/').to_ascii_lowercase();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let method = req.method().clone();
    match (method.clone(), segs.as_slice()) {
        (Method::POST | Method::PUT, ["api", "publish"]) => {
            deploy(shared, app, slot, req, true).await
        }
        (Method::POST, ["api", "zipdeploy"]) => deploy(shared, app, slot, req, false).await,
        (Method::GET, ["api", "deployments"]) => {
            let state = lock(&shared.state);
            let list: Vec<DeploymentRecord> = state
                .apps
                .get(&app)
                .and_then(|a| a.slot(&slot))
                .map(|s| s.deployments.iter().rev().cloned().collect())
                .unwrap_or_default();
            json(
                StatusCode::OK,
                &serde_json::to_value(list).unwrap_or_default(),
            )
        }
        (Method::GET, ["api", "deployments", id]) => {
            let state = lock(&shared.state);
            let s = state.apps.get(&app).and_then(|a| a.slot(&slot));
            let record = s.and_then(|s| {
                if *id == "latest" {
                    s.deployments.last()
                } else {
                    s.deployments.iter().find(|d| d.id.eq_ignore_ascii_case(id))
                }
            });
            match record {
                // Kudu answers the status poll with 202 while running and 200 when complete.
                Some(d) => json(
                    if d.complete {
                        StatusCode::OK
                    } else {
                        StatusCode::ACCEPTED
                    },
                    &serde_json::to_value(d).unwrap_or_default(),
                ),
                None => text(
                    StatusCode::NOT_FOUND,
                    format!("Deployment '{id}' not found."),
                ),
            }
        }
        (Method::GET, ["api", "deployments", id, "log"]) => {
            let state = lock(&shared.state);
            let s = state.apps.get(&app).and_then(|a| a.slot(&slot));
            let record = s.and_then(|s| {
                if *id == "latest" {
                    s.deployments.last()
                } else {
                    s.deployments.iter().find(|d| d.id.eq_ignore_ascii_case(id))
                }
            });
            match record {
                Some(d) => {
                    let entries: Vec<serde_json::Value> = d
                        .log
                        .iter()
                        .map(|m| {
                            serde_json::json!({
                                "log_time": d.end_time.clone().or_else(|| d.start_time.clone()),
                                "id": new_id(),
                                "message": m,
                                "type": if d.status == 3 { 2 } else { 0 },
                                "details_url": null,
                            })
                        })
                        .collect();
                    json(StatusCode::OK, &serde_json::Value::Array(entries))
                }
                None => text(
                    StatusCode::NOT_FOUND,
                    format!("Deployment '{id}' not found."),
                ),
            }
        }
        (Method::PUT, ["api", "deployments", _]) => {
            let id = req
                .uri()
                .path()
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            let body = match read_json(req.into_body()).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let base = scm_base(&shared, &app, &slot);
            let mut state = lock(&shared.state);
            let Some(s) = state.apps.get_mut(&app).and_then(|a| a.slot_mut(&slot)) else {
                return text(StatusCode::NOT_FOUND, "Slot not found.");
            };
            let record = put_record(s, &app, &id, &body, Some(&base));
            json(
                StatusCode::OK,
                &serde_json::to_value(record).unwrap_or_default(),
            )
        }
        (Method::POST, ["api", "command"]) => {
            let body = match read_json(req.into_body()).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            command(&shared, &app, &slot, &body).await
        }
        (Method::GET, ["api", "logs", "docker"]) => {
            crate::kudu_logs::docker_logs(&shared, &app, &slot)
        }
        (Method::GET, ["api", "logstream", ..]) => {
            crate::kudu_logs::logstream(shared.clone(), &app, &slot)
        }
        (Method::GET, ["api", "vfs", ..]) => {
            crate::kudu_logs::vfs(&shared, &app, &slot, req.uri().path())
        }
        (Method::PUT, ["api", "vfs", ..]) => {
            let raw = req.uri().path().to_owned();
            let if_match = req.headers().contains_key(header::IF_MATCH);
            match axum::body::to_bytes(req.into_body(), 16 * 1024 * 1024).await {
                Ok(body) => crate::kudu_logs::vfs_put(&shared, &app, &slot, &raw, if_match, &body),
                Err(e) => text(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the body: {e}"),
                ),
            }
        }
        (Method::GET, ["api", "settings"]) => {
            let state = lock(&shared.state);
            let settings = state
                .apps
                .get(&app)
                .and_then(|a| a.slot(&slot))
                .map(|s| s.app_settings.clone())
                .unwrap_or_default();
            json(
                StatusCode::OK,
                &serde_json::to_value(settings).unwrap_or_default(),
            )
        }
        _ => text(
            StatusCode::NOT_FOUND,
            format!("No route registered for '{method} {path}' in the emulated Kudu."),
        ),
    }
}

/// `https://<scm host>:<port>` of a slot, as ARM names it.
fn scm_base(shared: &Shared, app: &str, slot: &str) -> String {
    let state = lock(&shared.state);
    let host = state
        .apps
        .get(app)
        .map(|a| a.hosts(slot).scm)
        .unwrap_or_default();
    format!("https://{}", shared.host_with_port(&host))
}

fn string_field(v: &serde_json::Value, key: &str) -> Option<String> {
    v.get(key).and_then(|x| x.as_str()).map(str::to_owned)
}

/// Creates or updates a deployment record (`PUT /api/deployments/{id}`, also ARM's
/// `PUT .../deployments/{id}`).
pub(crate) fn put_record(
    slot: &mut Slot,
    site: &str,
    id: &str,
    body: &serde_json::Value,
    base: Option<&str>,
) -> DeploymentRecord {
    let now = now_rfc3339();
    let status = body
        .get("status")
        .and_then(serde_json::Value::as_i64)
        .and_then(|s| i32::try_from(s).ok())
        .unwrap_or(4);
    let active = body
        .get("active")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    if active {
        for d in &mut slot.deployments {
            d.active = false;
        }
    }
    let idx = slot.deployments.iter().position(|d| d.id == id);
    let record = DeploymentRecord {
        id: id.to_owned(),
        status,
        status_text: String::new(),
        author_email: string_field(body, "author_email"),
        author: string_field(body, "author"),
        deployer: string_field(body, "deployer"),
        message: string_field(body, "message"),
        progress: String::new(),
        received_time: Some(now.clone()),
        start_time: string_field(body, "start_time").or_else(|| Some(now.clone())),
        end_time: string_field(body, "end_time").or_else(|| Some(now.clone())),
        last_success_end_time: (status == 4).then(|| now.clone()),
        complete: status == 3 || status == 4,
        active,
        is_temp: false,
        is_readonly: false,
        url: base.map(|b| format!("{b}/api/deployments/{id}")),
        log_url: base.map(|b| format!("{b}/api/deployments/{id}/log")),
        site_name: Some(site.to_owned()),
        details: body.get("details").cloned(),
        log: Vec::new(),
        // A record written over a push deployment still describes the package it received.
        received_sha256: idx.and_then(|i| slot.deployments[i].received_sha256.clone()),
    };
    match idx {
        Some(i) => slot.deployments[i] = record.clone(),
        None => slot.deployments.push(record.clone()),
    }
    record
}

fn truthy(v: Option<String>) -> Option<bool> {
    v.map(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Holds a slot's deployment lock until dropped (unless handed on by clearing `shared`).
struct DeployingGuard {
    shared: Option<Arc<Shared>>,
    app: String,
    slot: String,
}

impl Drop for DeployingGuard {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take()
            && let Some(s) = lock(&shared.state)
                .apps
                .get_mut(&self.app)
                .and_then(|a| a.slot_mut(&self.slot))
        {
            s.deploying = false;
        }
    }
}

async fn deploy(
    shared: Arc<Shared>,
    app: String,
    slot: String,
    req: Request<Body>,
    one_deploy: bool,
) -> Response {
    let q = req.uri().query().map(str::to_owned);
    let q = q.as_deref();
    let is_async = if one_deploy {
        truthy(query_param(q, "async")).unwrap_or(false)
    } else {
        truthy(query_param(q, "isAsync")).unwrap_or(false)
    };
    // OneDeploy defaults to a clean deployment; ZipDeploy replaces the folder's content too.
    let clean = truthy(query_param(q, "clean")).unwrap_or(true);
    let restart = truthy(query_param(q, "restart")).unwrap_or(true);
    let deployer = if one_deploy {
        "OneDeploy".to_owned()
    } else {
        query_param(q, "deployer").unwrap_or_else(|| "ZipDeploy".to_owned())
    };
    // ZipDeploy takes only zips; OneDeploy's `type=` may name a single-file artifact.
    let mut artifact = crate::onedeploy::Artifact::Zip;
    {
        let mut state = lock(&shared.state);
        let Some(a) = state.apps.get_mut(&app) else {
            return text(StatusCode::NOT_FOUND, "App not found.");
        };
        if a.busy.as_ref().is_some_and(|(_, n)| n == "SwapSiteSlots") {
            return text(
                StatusCode::CONFLICT,
                "There is a deployment currently in progress. Please try again when it completes.",
            );
        }
        let os = a.os;
        let Some(s) = a.slot_mut(&slot) else {
            return text(StatusCode::NOT_FOUND, "Slot not found.");
        };
        if one_deploy {
            let stack = crate::onedeploy::website_stack(os, &s.site_config, &s.metadata);
            match crate::onedeploy::artifact(query_param(q, "type").as_deref(), &stack) {
                Ok(a) => artifact = a,
                Err(message) => return text(StatusCode::BAD_REQUEST, message),
            }
        }
        if s.deploying {
            return text(
                StatusCode::CONFLICT,
                "There is a deployment currently in progress. Please try again when it completes.",
            );
        }
        s.deploying = true;
    }
    // Hyper drops this handler when the client goes away mid-upload; the guard gives the slot's
    // deployment lock back then too, as Kudu does, instead of leaving it held forever.
    let mut guard = DeployingGuard {
        shared: Some(shared.clone()),
        app: app.clone(),
        slot: slot.clone(),
    };
    let checksum = req
        .headers()
        .get("x-ms-artifact-checksum")
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    let upload_dir = shared.work_dir.join("uploads");
    let upload = upload_dir.join(format!("{}.zip", new_id()));
    let received = stream_to_file(req.into_body(), &upload_dir, &upload).await;
    let digest = match received {
        Ok(d) => d,
        Err(e) => {
            drop(guard);
            let _ = std::fs::remove_file(&upload);
            return text(
                StatusCode::BAD_REQUEST,
                format!("The package upload failed: {e}"),
            );
        }
    };
    if let Some(expected) = checksum
        && expected != digest
    {
        drop(guard);
        let _ = std::fs::remove_file(&upload);
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "The artifact checksum {expected} does not match the received content ({digest})."
            ),
        );
    }
    let id = new_id();
    let base = scm_base(&shared, &app, &slot);
    let now = now_rfc3339();
    {
        let mut state = lock(&shared.state);
        if let Some(s) = state.apps.get_mut(&app).and_then(|a| a.slot_mut(&slot)) {
            s.deployments.push(DeploymentRecord {
                id: id.clone(),
                status: 0,
                status_text: "Receiving changes.".into(),
                author_email: query_param(q, "authorEmail"),
                author: query_param(q, "author").or_else(|| Some("N/A".into())),
                deployer: Some(deployer.clone()),
                message: query_param(q, "message")
                    .or_else(|| Some("Created via a push deployment".into())),
                progress: String::new(),
                received_time: Some(now.clone()),
                start_time: Some(now.clone()),
                end_time: None,
                last_success_end_time: None,
                complete: false,
                active: false,
                is_temp: false,
                is_readonly: false,
                url: Some(format!("{base}/api/deployments/{id}")),
                log_url: Some(format!("{base}/api/deployments/{id}/log")),
                site_name: Some(app.clone()),
                details: None,
                log: vec!["Fetching changes.".into()],
                received_sha256: Some(digest.clone()),
            });
        }
    }
    // From here the deployment job owns the lock and gives it back when it ends.
    guard.shared = None;
    let job = tokio::spawn(crate::kudu_job::run_deployment(
        shared.clone(),
        app.clone(),
        slot.clone(),
        id.clone(),
        crate::kudu_job::Received {
            upload,
            clean,
            restart,
            artifact,
        },
    ));
    if is_async {
        let mut resp = StatusCode::ACCEPTED.into_response();
        let location = format!(
            "{base}/api/deployments/latest?deployer={deployer}&time={}",
            now.replace(':', "-")
        );
        if let Ok(v) = HeaderValue::from_str(&location) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        if let Ok(v) = HeaderValue::from_str(&id) {
            resp.headers_mut().insert("scm-deployment-id", v);
        }
        return resp;
    }
    let ok = job.await.unwrap_or(false);
    if ok {
        StatusCode::OK.into_response()
    } else {
        text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Deployment {id} failed; see {base}/api/deployments/{id}/log"),
        )
    }
}

/// Streams a request body to a file chunk by chunk (never holding it in memory) and returns the
/// SHA-256 of what was written, hex-encoded.
async fn stream_to_file(body: Body, dir: &Path, path: &Path) -> std::io::Result<String> {
    use tokio::io::AsyncWriteExt;
    tokio::fs::create_dir_all(dir).await?;
    let mut file = tokio::fs::File::create(path).await?;
    let mut hasher = Sha256::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(std::io::Error::other)?;
        hasher.update(&chunk);
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    Ok(hex(&hasher.finalize()[..]))
}

async fn command(
    shared: &Arc<Shared>,
    app: &str,
    slot: &str,
    body: &serde_json::Value,
) -> Response {
    let Some(cmd) = body
        .get("command")
        .and_then(|c| c.as_str())
        .map(str::to_owned)
    else {
        return json(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({"Message": "The 'command' field is required."}),
        );
    };
    let dir = body
        .get("dir")
        .and_then(|d| d.as_str())
        .unwrap_or("")
        .to_owned();
    let injected = lock(&shared.faults).take(
        |f| matches!(f, Fault::KuduCommandFails { app: a, .. } if a.eq_ignore_ascii_case(app)),
    );
    if let Some(Fault::KuduCommandFails { exit_code, .. }) = injected {
        return json(
            StatusCode::OK,
            &serde_json::json!({"Output": "", "Error": "The command failed (injected fault).", "ExitCode": exit_code}),
        );
    }
    let (cwd, env, cmd) = {
        let state = lock(&shared.state);
        let Some(a) = state.apps.get(app) else {
            return json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({"Message": "App not found."}),
            );
        };
        let Some(s) = a.slot(slot) else {
            return json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({"Message": "Slot not found."}),
            );
        };
        let env = crate::runtime::app_env(shared, &state, a, s);
        // A site run from its package has a read-only wwwroot for Kudu's commands too.
        let cmd = if crate::kudu_job::run_from_package(&s.app_settings) {
            crate::runtime::read_only(
                &s.content_dir,
                &format!(
                    "cd {} && {cmd}",
                    sh_quote_path(&resolve_dir(&s.content_dir, &dir))
                ),
            )
        } else {
            cmd
        };
        (resolve_dir(&s.content_dir, &dir), env, cmd)
    };
    let output = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .current_dir(&cwd)
        .env_clear()
        .envs(env)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(1800), output).await {
        Ok(Ok(out)) => json(
            StatusCode::OK,
            &serde_json::json!({
                "Output": String::from_utf8_lossy(&out.stdout),
                "Error": String::from_utf8_lossy(&out.stderr),
                "ExitCode": out.status.code().unwrap_or(-1),
            }),
        ),
        Ok(Err(e)) => json(
            StatusCode::OK,
            &serde_json::json!({"Output": "", "Error": e.to_string(), "ExitCode": -1}),
        ),
        Err(_) => json(
            StatusCode::OK,
            &serde_json::json!({"Output": "", "Error": "Command timed out.", "ExitCode": -1}),
        ),
    }
}

/// A path quoted for `sh`.
fn sh_quote_path(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// Maps Kudu's `dir` (relative to `/home`, usually `site/wwwroot`) onto the slot's site folder.
fn resolve_dir(content: &Path, dir: &str) -> PathBuf {
    let d = dir.replace('\\', "/");
    let d = d.trim_start_matches("/home").trim_start_matches('/');
    let rest = d
        .strip_prefix("site/wwwroot")
        .map(|r| r.trim_start_matches('/'))
        .unwrap_or(d);
    let rel = Path::new(rest);
    if rest.is_empty()
        || rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        content.to_path_buf()
    } else {
        content.join(rel)
    }
}
