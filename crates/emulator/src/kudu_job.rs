//! One Kudu push deployment after its package arrived: status 0 → 1 (extraction into a fresh site
//! folder, zip-slip refused, and the Oryx build when `SCM_DO_BUILD_DURING_DEPLOYMENT` is true) → 2
//! → 4, or 3 with the reason in `status_text` and the log. A failed deployment leaves the slot's
//! previous content in place and running; a successful one switches the slot and restarts it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::fault::Fault;
use crate::state::{DeploymentRecord, new_content_dir, now_rfc3339};
use crate::{Shared, lock};

fn set_status(
    shared: &Shared,
    app: &str,
    slot: &str,
    id: &str,
    f: impl FnOnce(&mut DeploymentRecord),
) {
    if let Some(d) = lock(&shared.state)
        .apps
        .get_mut(app)
        .and_then(|a| a.slot_mut(slot))
        .and_then(|s| s.deployments.iter_mut().find(|d| d.id == id))
    {
        f(d);
    }
}

/// What the slot looks like when its deployment starts.
struct SlotNow {
    root: PathBuf,
    current: PathBuf,
    build: bool,
    /// `WEBSITE_RUN_FROM_PACKAGE=1`: the package is kept and the site runs from it, read-only.
    packages: Option<PathBuf>,
    stack: crate::stack::Stack,
    /// A Windows slot whose deployments take it offline (`SCM_CREATE_APP_OFFLINE` is not `0`).
    offline: bool,
}

fn slot_now(shared: &Shared, app: &str, slot: &str) -> SlotNow {
    let state = lock(&shared.state);
    let a = state.apps.get(app);
    let s = a.and_then(|a| a.slot(slot));
    SlotNow {
        root: a.map(|a| a.root_dir.clone()).unwrap_or_default(),
        current: s.map(|s| s.content_dir.clone()).unwrap_or_default(),
        build: s.is_some_and(|s| crate::oryx::wanted(&s.app_settings)),
        packages: a
            .zip(s)
            .filter(|(_, s)| run_from_package(&s.app_settings))
            .map(|(a, s)| site_packages(&a.root_dir, &s.name)),
        stack: s
            .map(|s| crate::stack::stack_of(&s.site_config))
            .unwrap_or(crate::stack::Stack::Other),
        offline: a.is_some_and(|a| a.os == crate::seed::AppOs::Windows)
            && s.is_some_and(|s| crate::iis::app_offline_wanted(&s.app_settings)),
    }
}

/// What a push deployment received and how to deploy it.
pub(crate) struct Received {
    /// The uploaded artifact.
    pub(crate) upload: PathBuf,
    /// Unzip into a fresh site folder (`clean`).
    pub(crate) clean: bool,
    /// Restart the app afterwards (`restart`).
    pub(crate) restart: bool,
    /// OneDeploy's `type=` (ZipDeploy: a zip).
    pub(crate) artifact: crate::onedeploy::Artifact,
}

pub(crate) async fn run_deployment(
    shared: Arc<Shared>,
    app: String,
    slot: String,
    id: String,
    received: Received,
) -> bool {
    // Kudu on Windows takes the site offline before it touches `wwwroot`, so IIS drains and lets go
    // of the files, and brings it back when the deployment ends, failed or not.
    let offline = {
        let now = slot_now(&shared, &app, &slot);
        now.offline
            .then(|| crate::iis::take_offline(&now.current))
            .flatten()
    };
    let ok = deploy_steps(&shared, &app, &slot, &id, received).await;
    if let Some(file) = offline {
        let _ = std::fs::remove_file(file);
    }
    ok
}

async fn deploy_steps(
    shared: &Arc<Shared>,
    app: &str,
    slot: &str,
    id: &str,
    received: Received,
) -> bool {
    let Received {
        upload,
        clean,
        restart,
        artifact,
    } = received;
    let (shared, app, slot, id) = (
        shared.clone(),
        app.to_owned(),
        slot.to_owned(),
        id.to_owned(),
    );
    let step = shared.deployment_step_delay;
    tokio::time::sleep(step).await;
    set_status(&shared, &app, &slot, &id, |d| {
        d.status = 1;
        d.status_text = "Building and Deploying".into();
        d.log.push("Building.".into());
    });
    let injected = lock(&shared.faults).take(|f| {
        matches!(f, Fault::DeploymentFails { app: a, slot: s }
            if a.eq_ignore_ascii_case(&app) && s.as_deref().is_none_or(|s| s.eq_ignore_ascii_case(&slot)))
    });
    let now = slot_now(&shared, &app, &slot);
    let upload = match &now.packages {
        Some(dir) if injected.is_none() => match keep_package(dir, &upload).await {
            Ok(kept) => kept,
            Err(e) => {
                let _ = std::fs::remove_file(&upload);
                finish(&shared, &app, &slot, &id, Err(e), false).await;
                return false;
            }
        },
        _ => upload,
    };
    // A site run from a package is always a fresh mount of it. A WAR or JAR replaces one file of
    // `wwwroot` and leaves the rest: Kudu does not consult `clean` for them.
    let target_file = artifact.target_file().filter(|_| now.packages.is_none());
    let clean = target_file.is_none() && (clean || now.packages.is_some());
    let result: Result<PathBuf, String> = if injected.is_some() {
        Err("Deployment failed: the package could not be deployed (injected fault).".into())
    } else {
        let upload2 = upload.clone();
        let (root, current) = (now.root.clone(), now.current.clone());
        tokio::task::spawn_blocking(move || {
            let target = if clean {
                new_content_dir(&root).map_err(|e| e.to_string())?
            } else {
                current
            };
            let placed = match target_file {
                Some(name) => place(&upload2, &target, name),
                None => extract(&upload2, &target),
            };
            match placed {
                Ok(()) => Ok(target),
                Err(e) => {
                    if clean {
                        let _ = std::fs::remove_dir_all(&target);
                    }
                    Err(e)
                }
            }
        })
        .await
        .unwrap_or_else(|e| Err(format!("extraction task failed: {e}")))
    };
    if let (Some(dir), Ok(_)) = (&now.packages, &result) {
        // Only a package that mounted becomes the current one; earlier packages stay.
        if let Some(name) = upload.file_name().and_then(|n| n.to_str()) {
            let tmp = dir.join("packagename.txt.tmp");
            let written = std::fs::write(&tmp, name)
                .and_then(|()| std::fs::rename(&tmp, dir.join("packagename.txt")));
            if let Err(e) = written {
                tracing::warn!(error = %e, "cannot write packagename.txt");
            }
            if let Some(s) = lock(&shared.state)
                .apps
                .get_mut(&app)
                .and_then(|a| a.slot_mut(&slot))
            {
                s.mounted_package = Some(name.to_owned());
            }
            purge_packages(dir, max_packages(&shared, &app, &slot), name);
        }
    } else if now.packages.is_none() {
        let _ = std::fs::remove_file(&upload);
    }
    // Kudu builds in the Building step, into the folder the site will run from.
    let result = match result {
        Ok(dir) if now.build && now.packages.is_none() => {
            let build =
                crate::oryx::build(now.stack, &dir, &shared.runtime, &shared.work_dir).await;
            set_status(&shared, &app, &slot, &id, |d| d.log.extend(build.lines));
            match build.failure {
                None => Ok(dir),
                Some(reason) => {
                    if dir != now.current {
                        let _ = tokio::fs::remove_dir_all(&dir).await;
                    }
                    Err(reason)
                }
            }
        }
        other => other,
    };
    tokio::time::sleep(step).await;
    if result.is_ok() {
        set_status(&shared, &app, &slot, &id, |d| {
            d.status = 2;
            d.status_text = "Deploying".into();
            d.log.push("Deploying the package.".into());
        });
        tokio::time::sleep(step).await;
    }
    finish(&shared, &app, &slot, &id, result, restart).await
}

/// Records the outcome, switches the slot to its new folder and restarts it on success.
async fn finish(
    shared: &Arc<Shared>,
    app: &str,
    slot: &str,
    id: &str,
    result: Result<PathBuf, String>,
    restart: bool,
) -> bool {
    let (app, slot) = (app.to_owned(), slot.to_owned());
    let ok = result.is_ok();
    let old_dir = {
        let mut state = lock(&shared.state);
        let Some(s) = state.apps.get_mut(&app).and_then(|a| a.slot_mut(&slot)) else {
            return false;
        };
        s.deploying = false;
        let now = now_rfc3339();
        let mut old = None;
        match result {
            Ok(dir) => {
                if dir != s.content_dir {
                    old = Some(std::mem::replace(&mut s.content_dir, dir));
                }
                s.forced_unhealthy = false;
                for d in &mut s.deployments {
                    d.active = false;
                }
                if let Some(d) = s.deployments.iter_mut().find(|d| d.id == id) {
                    d.status = 4;
                    d.status_text = String::new();
                    d.complete = true;
                    d.active = true;
                    d.end_time = Some(now.clone());
                    d.last_success_end_time = Some(now);
                    d.log.push("Deployment successful.".into());
                }
            }
            Err(message) => {
                if let Some(d) = s.deployments.iter_mut().find(|d| d.id == id) {
                    d.status = 3;
                    d.status_text = message.clone();
                    d.complete = true;
                    d.end_time = Some(now);
                    d.log.push(message);
                    d.log.push("Deployment Failed.".into());
                }
            }
        }
        old
    };
    if ok && restart {
        crate::runtime::restart(shared, &app, &slot);
    }
    if let Some(old) = old_dir {
        // The old process was stopped by the restart; give it a moment before removing its folder.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = tokio::fs::remove_dir_all(old).await;
    }
    ok
}

/// Whether the slot runs from a local package (`WEBSITE_RUN_FROM_PACKAGE=1`; a URL is a remote
/// package, which the emulator does not fetch).
pub(crate) fn run_from_package(settings: &std::collections::BTreeMap<String, String>) -> bool {
    settings
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("WEBSITE_RUN_FROM_PACKAGE"))
        .is_some_and(|(_, v)| v.trim() == "1")
}

/// The slot's `/home/data/SitePackages`.
pub(crate) fn site_packages(app_root: &Path, slot: &str) -> PathBuf {
    app_root
        .join("slot-home")
        .join(slot)
        .join("data")
        .join("SitePackages")
}

/// How many zips Kudu keeps in `SitePackages`: `SCM_MAX_ZIP_PACKAGE_COUNT`, 5 by default.
fn max_packages(shared: &Shared, app: &str, slot: &str) -> usize {
    lock(&shared.state)
        .apps
        .get(app)
        .and_then(|a| a.slot(slot))
        .and_then(|s| {
            s.app_settings
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("SCM_MAX_ZIP_PACKAGE_COUNT"))
                .and_then(|(_, v)| v.trim().parse().ok())
        })
        .unwrap_or(5)
        .max(1)
}

/// Removes the oldest zips beyond `keep`, never the one `packagename.txt` names, as Kudu purges
/// `SitePackages` after each deployment.
fn purge_packages(dir: &Path, keep: usize, current: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut zips: Vec<(std::time::SystemTime, String)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let modified = e.metadata().and_then(|m| m.modified()).ok()?;
            name.ends_with(".zip").then_some((modified, name))
        })
        .collect();
    // Newest first; names are timestamps, so they break ties within a second.
    zips.sort_by(|a, b| b.cmp(a));
    for (_, name) in zips.into_iter().skip(keep) {
        if name != current {
            let _ = std::fs::remove_file(dir.join(name));
        }
    }
}

/// Exchanges two slots' `/home/data` on a swap: the kept packages are part of the content.
pub(crate) fn swap_site_packages(app_root: &Path, a: &str, b: &str) {
    let data = |slot: &str| app_root.join("slot-home").join(slot).join("data");
    let (da, db) = (data(a), data(b));
    let tmp = app_root.join("slot-home").join(format!(".swap-{a}-{b}"));
    let moved_a = da.exists() && std::fs::rename(&da, &tmp).is_ok();
    if db.exists() {
        let _ = std::fs::create_dir_all(app_root.join("slot-home").join(a));
        if let Err(e) = std::fs::rename(&db, &da) {
            tracing::warn!(error = %e, "cannot swap /home/data");
        }
    }
    if moved_a {
        let _ = std::fs::create_dir_all(app_root.join("slot-home").join(b));
        if let Err(e) = std::fs::rename(&tmp, &db) {
            tracing::warn!(error = %e, "cannot swap /home/data");
        }
    }
}

/// The zip a restart of a site run from a package should mount, when `packagename.txt` names
/// another than the one mounted: as on App Service, pointing `packagename.txt` at a kept package
/// and restarting runs that package.
pub(crate) fn remount_wanted(app_root: &Path, slot: &crate::state::Slot) -> Option<PathBuf> {
    if !run_from_package(&slot.app_settings) {
        return None;
    }
    let dir = site_packages(app_root, &slot.name);
    let named = std::fs::read_to_string(dir.join("packagename.txt")).ok()?;
    let named = named.trim();
    if named.is_empty() || slot.mounted_package.as_deref() == Some(named) {
        return None;
    }
    let zip = dir.join(named);
    // A name that escapes the folder or names no kept zip leaves the site as it is.
    (Path::new(named).file_name() == Some(std::ffi::OsStr::new(named)) && zip.is_file())
        .then_some(zip)
}

/// Moves the upload into `SitePackages` under a UTC timestamp name, as Kudu names them.
async fn keep_package(dir: &Path, upload: &Path) -> Result<PathBuf, String> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let t = time::OffsetDateTime::now_utc();
    let stamp = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let mut path = dir.join(format!("{stamp}.zip"));
    let mut n = 1;
    while path.exists() {
        path = dir.join(format!("{stamp}-{n}.zip"));
        n += 1;
    }
    tokio::fs::rename(upload, &path)
        .await
        .map_err(|e| format!("cannot store the package: {e}"))?;
    Ok(path)
}

/// Writes a single-file artifact into `target` under the name Kudu gives it (`app.jar`, `app.war`),
/// through a temporary name so a running app never sees half a file.
fn place(upload: &Path, target: &Path, name: &str) -> Result<(), String> {
    std::fs::create_dir_all(target)
        .map_err(|e| format!("cannot create {}: {e}", target.display()))?;
    let tmp = target.join(format!(".{name}.tmp"));
    std::fs::copy(upload, &tmp).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, target.join(name))
        .map_err(|e| format!("cannot write {name} into {}: {e}", target.display()))
}

/// Extracts a zip into `target`, refusing entries that would escape it (zip-slip).
pub(crate) fn extract(zip_path: &Path, target: &Path) -> Result<(), String> {
    let file =
        std::fs::File::open(zip_path).map_err(|e| format!("cannot open the package: {e}"))?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| format!("the package is not a valid zip: {e}"))?;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| format!("cannot read zip entry {i}: {e}"))?;
        let Some(rel) = entry.enclosed_name() else {
            return Err(format!(
                "the zip entry '{}' would be extracted outside the site folder",
                String::from_utf8_lossy(entry.name_raw())
            ));
        };
        let out = target.join(rel);
        if entry.is_dir() {
            std::fs::create_dir_all(&out)
                .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
            continue;
        }
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        let mut f = std::fs::File::create(&out)
            .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
        std::io::copy(&mut entry, &mut f)
            .map_err(|e| format!("cannot extract {}: {e}", out.display()))?;
        f.flush()
            .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
        #[cfg(unix)]
        if let Some(mode) = entry.unix_mode() {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&out, std::fs::Permissions::from_mode(mode & 0o777));
        }
    }
    Ok(())
}
