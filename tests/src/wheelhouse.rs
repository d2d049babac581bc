//! The offline Python package index of the tests: real wheels of Flask, gunicorn and what they need, pinned
//! with hashes in `tests/fixtures/simplechat/requirements.lock` and kept in `target/wheelhouse`. `.ci/run`
//! downloads them; a test finds them there, or downloads them the same way when they are missing (the one
//! step that needs PyPI: the product and the emulator then install from the folder with no network).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use crate::paths;

/// The lock file naming every wheel and its hashes.
pub fn lock_file() -> PathBuf {
    paths::workspace().join("tests/fixtures/simplechat/requirements.lock")
}

/// `target/wheelhouse` of the workspace, where `.ci/run` puts the wheels.
pub fn dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| paths::workspace().join("target"))
        .join("wheelhouse")
}

/// `python3 -m pip download` of the lock into `into`: with `offline`, only checks that `into` already
/// holds every wheel with its hash (no index is asked).
fn download(into: &Path, offline: bool) -> Result<(), String> {
    let mut cmd = Command::new("python3");
    cmd.args([
        "-m",
        "pip",
        "download",
        "--quiet",
        "--disable-pip-version-check",
    ])
    .args(["--require-hashes", "--only-binary=:all:", "-r"])
    .arg(lock_file())
    .arg("-d")
    .arg(into);
    if offline {
        cmd.arg("--no-index").arg("--find-links").arg(into);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run python3 -m pip (the tests need python3 with pip): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "pip download {}failed: {}",
            if offline { "--no-index " } else { "" },
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The wheelhouse, complete: checked offline first, downloaded from PyPI when a wheel is missing (once
/// per test process, and never two downloads at once).
pub fn wheelhouse() -> Result<PathBuf, String> {
    static READY: OnceLock<Mutex<Option<PathBuf>>> = OnceLock::new();
    let mut ready = READY
        .get_or_init(|| Mutex::new(None))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(dir) = ready.as_ref() {
        return Ok(dir.clone());
    }
    let dir = dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    if download(&dir, true).is_err() {
        download(&dir, false)?;
        download(&dir, true)?;
    }
    *ready = Some(dir.clone());
    Ok(dir)
}

/// What a pipeline's build step runs to vendor the app's packages: `pip install --no-index --find-links
/// <wheelhouse> -r requirements.txt --target __oryx_packages__` in the package root `root`.
pub fn vendor(root: &Path) -> Result<(), String> {
    let wheels = wheelhouse()?;
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--no-index", "--find-links"])
        .arg(&wheels)
        .args(["-r", "requirements.txt", "--target", "__oryx_packages__"])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run python3 -m pip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "pip install --target __oryx_packages__ failed in {}: {}",
            root.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
