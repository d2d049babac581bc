//! Kudu's log and file routes for a slot: `GET /api/logs/docker` (the slot's log files, each with the
//! `href` to read it), `GET /api/logstream` (new log lines as they are written) and `GET /api/vfs/…`
//! (read a file or list a folder of `/home`: `LogFiles/`, `data/` and `site/wwwroot/`) and `PUT
//! /api/vfs/…` (write a file; `site/wwwroot` of a site run from a package is read-only).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::server::json;
use crate::{Shared, lock};

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

/// The slot's `/home/LogFiles` and site folder, and `https://<scm host>:<port>`.
fn slot_dirs(shared: &Shared, app: &str, slot: &str) -> Option<(PathBuf, PathBuf, String)> {
    let state = lock(&shared.state);
    let a = state.apps.get(app)?;
    let s = a.slot(slot)?;
    Some((
        crate::applog::log_dir(&a.root_dir, &s.name),
        s.content_dir.clone(),
        format!("https://{}", shared.host_with_port(&a.hosts(slot).scm)),
    ))
}

/// `GET /api/logs/docker`: Kudu's list of the container logs, newest day last.
pub(crate) fn docker_logs(shared: &Shared, app: &str, slot: &str) -> Response {
    let Some((logs, _, base)) = slot_dirs(shared, app, slot) else {
        return text(StatusCode::NOT_FOUND, "Slot not found.");
    };
    let list: Vec<serde_json::Value> = crate::applog::list(&logs)
        .into_iter()
        .filter(|(name, _, _)| name.ends_with("docker.log"))
        .map(|(name, size, modified)| {
            // `<date>_<machine>_default_docker.log` is the app's, `<date>_<machine>_docker.log` the
            // platform's; Kudu names the machine of the first `<machine>_default`.
            let machine = name
                .strip_suffix("_docker.log")
                .and_then(|rest| rest.split_once('_').map(|(_, m)| m))
                .and_then(|rest| rest.split_once('_').map(|(_, m)| m))
                .and_then(|rest| rest.split_once('_').map(|(_, m)| m))
                .unwrap_or_default()
                .to_owned();
            serde_json::json!({
                "machineName": machine,
                "lastUpdated": modified,
                "size": size,
                "href": format!("{base}/api/vfs/LogFiles/{name}"),
                "path": format!("/home/LogFiles/{name}"),
            })
        })
        .collect();
    json(StatusCode::OK, &serde_json::Value::Array(list))
}

/// The file or folder a `/api/vfs/<path>` names, inside the slot's `/home` (only `LogFiles` and
/// `site/wwwroot` exist in the emulator); `..` and other escapes are refused.
fn vfs_path(logs: &Path, site: &Path, rel: &str) -> Option<PathBuf> {
    let segs: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
    if segs
        .iter()
        .any(|s| *s == ".." || *s == "." || s.contains('\\'))
    {
        return None;
    }
    match segs.as_slice() {
        [first, rest @ ..] if first.eq_ignore_ascii_case("LogFiles") => {
            Some(rest.iter().fold(logs.to_path_buf(), |p, s| p.join(s)))
        }
        [first, second, rest @ ..]
            if first.eq_ignore_ascii_case("site") && second.eq_ignore_ascii_case("wwwroot") =>
        {
            Some(rest.iter().fold(site.to_path_buf(), |p, s| p.join(s)))
        }
        // The slot's `/home/data` (e.g. `SitePackages`) sits next to its `LogFiles`.
        [first, rest @ ..] if first.eq_ignore_ascii_case("data") => Some(
            rest.iter()
                .fold(logs.parent()?.join("data"), |p, s| p.join(s)),
        ),
        _ => None,
    }
}

/// `GET /api/vfs/<path>`: a file's bytes, or a folder's entries as Kudu lists them.
pub(crate) fn vfs(shared: &Shared, app: &str, slot: &str, raw_path: &str) -> Response {
    let Some((logs, site, base)) = slot_dirs(shared, app, slot) else {
        return text(StatusCode::NOT_FOUND, "Slot not found.");
    };
    let rel = raw_path
        .strip_prefix("/api/vfs")
        .or_else(|| raw_path.strip_prefix("/API/VFS"))
        .unwrap_or_default();
    let Some(path) = vfs_path(&logs, &site, rel) else {
        return text(
            StatusCode::NOT_FOUND,
            format!(
                "'{rel}' not found: the emulated /home has LogFiles/, data/ and site/wwwroot/ only."
            ),
        );
    };
    if path.is_dir() {
        let rel = format!("{}/", rel.trim_matches('/'));
        let entries: Vec<serde_json::Value> = std::fs::read_dir(&path)
            .map(|d| {
                d.flatten()
                    .map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        let meta = e.metadata().ok();
                        let is_dir = meta.as_ref().is_some_and(std::fs::Metadata::is_dir);
                        let mtime = meta
                            .as_ref()
                            .and_then(|m| m.modified().ok())
                            .map(time::OffsetDateTime::from)
                            .and_then(|t| {
                                t.format(&time::format_description::well_known::Rfc3339)
                                    .ok()
                            });
                        let slash = if is_dir { "/" } else { "" };
                        serde_json::json!({
                            "name": name,
                            "size": meta.as_ref().map_or(0, std::fs::Metadata::len),
                            "mtime": mtime,
                            "crtime": mtime,
                            "mime": if is_dir { "inode/directory" } else { "text/plain" },
                            "href": format!("{base}/api/vfs/{rel}{name}{slash}"),
                            "path": format!("/home/{rel}{name}"),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        return json(StatusCode::OK, &serde_json::Value::Array(entries));
    }
    match std::fs::read(&path) {
        Ok(bytes) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            bytes,
        )
            .into_response(),
        Err(_) => text(StatusCode::NOT_FOUND, format!("'{rel}' not found.")),
    }
}

/// `PUT /api/vfs/<path>`: writes a file, as Kudu does: replacing an existing file needs `If-Match`
/// (412 without it), and a site run from its package has a read-only `site/wwwroot` (409).
pub(crate) fn vfs_put(
    shared: &Shared,
    app: &str,
    slot: &str,
    raw_path: &str,
    if_match: bool,
    body: &[u8],
) -> Response {
    let Some((logs, site, _)) = slot_dirs(shared, app, slot) else {
        return text(StatusCode::NOT_FOUND, "Slot not found.");
    };
    let rel = raw_path
        .strip_prefix("/api/vfs")
        .or_else(|| raw_path.strip_prefix("/API/VFS"))
        .unwrap_or_default();
    let Some(path) = vfs_path(&logs, &site, rel) else {
        return text(StatusCode::NOT_FOUND, format!("'{rel}' cannot be written."));
    };
    let run_from_package = lock(&shared.state)
        .apps
        .get(app)
        .and_then(|a| a.slot(slot))
        .is_some_and(|s| crate::kudu_job::run_from_package(&s.app_settings));
    if run_from_package && path.starts_with(&site) {
        return text(
            StatusCode::CONFLICT,
            "site/wwwroot is read-only: the site runs from its package (WEBSITE_RUN_FROM_PACKAGE=1); deploy a new package instead.",
        );
    }
    if path.is_dir() || rel.ends_with('/') {
        return text(StatusCode::CONFLICT, format!("'{rel}' is a folder."));
    }
    let existed = path.is_file();
    if existed && !if_match {
        return text(
            StatusCode::PRECONDITION_FAILED,
            format!("'{rel}' exists: send If-Match (an ETag or *) to replace it."),
        );
    }
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&path, body));
    match written {
        Ok(()) if existed => StatusCode::NO_CONTENT.into_response(),
        Ok(()) => StatusCode::CREATED.into_response(),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot write '{rel}': {e}"),
        ),
    }
}

/// `GET /api/logstream`: Kudu's welcome line, then every line written to the slot's logs from now
/// on, until the client goes away.
pub(crate) fn logstream(shared: Arc<Shared>, app: &str, slot: &str) -> Response {
    let Some((logs, _, _)) = slot_dirs(&shared, app, slot) else {
        return text(StatusCode::NOT_FOUND, "Slot not found.");
    };
    // Start at the current end of every file: the stream shows what happens after connecting.
    let offsets: BTreeMap<String, u64> = crate::applog::list(&logs)
        .into_iter()
        .map(|(name, size, _)| (name, size))
        .collect();
    let welcome = format!(
        "{}  Welcome, you are now connected to log-streaming service.\n",
        crate::state::now_rfc3339()
    );
    let first = futures::stream::once(async move { Ok::<_, std::io::Error>(welcome.into_bytes()) });
    let follow = futures::stream::unfold((logs, offsets), |(logs, mut offsets)| async move {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let mut out = Vec::new();
            for (name, size, _) in crate::applog::list(&logs) {
                let seen = offsets.get(&name).copied().unwrap_or(0);
                if size > seen
                    && let Ok(bytes) = std::fs::read(logs.join(&name))
                {
                    let from = usize::try_from(seen).unwrap_or(usize::MAX).min(bytes.len());
                    out.extend_from_slice(&bytes[from..]);
                }
                offsets.insert(name, size);
            }
            if !out.is_empty() {
                return Some((Ok(out), (logs, offsets)));
            }
        }
    });
    let stream = futures::StreamExt::chain(first, follow);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(stream),
    )
        .into_response()
}
