//! Where things are: the workspace, the task entry point, the example, and the `slot-release` binary
//! (built once per test process, so it is never older than the sources).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.to_path_buf())
}

/// The Node entry point the agent runs.
pub fn entry_point() -> PathBuf {
    workspace().join("task").join("index.js")
}

/// `task.json`.
pub fn task_json() -> PathBuf {
    workspace().join("task.json")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

/// The `slot-release` binary: `SLOT_RELEASE_BIN` when set, else `target/debug/slot-release` after
/// `cargo build -p slot-release` (once per test process). The build runs even when the binary exists:
/// this crate cannot name another package's binary as a dependency, so without it a test would run the
/// binary of an older build after a change to the product (a no-op build takes about a second).
pub fn slot_release_binary() -> Result<PathBuf, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    if let Some(path) = std::env::var_os("SLOT_RELEASE_BIN") {
        return Ok(PathBuf::from(path));
    }
    BUILT
        .get_or_init(|| {
            let exe = if cfg!(windows) {
                "slot-release.exe"
            } else {
                "slot-release"
            };
            let path = target_dir().join("debug").join(exe);
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "--quiet", "-p", "slot-release"])
                .current_dir(workspace())
                .status()
                .map_err(|e| format!("cannot run cargo build: {e}"))?;
            if !status.success() {
                return Err(format!("cargo build -p slot-release failed: {status}"));
            }
            if path.is_file() {
                Ok(path)
            } else {
                Err(format!("{} was not built", path.display()))
            }
        })
        .clone()
}

/// `node`, or `NODE` when set.
pub fn node() -> PathBuf {
    std::env::var_os("NODE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("node"))
}

/// The `bin/<platform>` folder name `task/index.js` picks on this host.
pub fn host_platform() -> String {
    let os = match std::env::consts::OS {
        "macos" => "osx",
        "windows" => "win",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("{os}-{arch}")
}

/// Stages a task folder the way `cargo xtask dist` does (`index.js`, `task.json`,
/// `bin/<platform>/slot-release[.exe]`) under `dir`, with `binary` linked in (copied on Windows), and
/// returns the path of its `index.js`.
pub fn stage_task(dir: &Path, binary: &Path) -> std::io::Result<PathBuf> {
    let task = dir.join("task");
    let bin = task.join("bin").join(host_platform());
    std::fs::create_dir_all(&bin)?;
    std::fs::copy(entry_point(), task.join("index.js"))?;
    std::fs::copy(task_json(), task.join("task.json"))?;
    let exe = bin.join(if cfg!(windows) {
        "slot-release.exe"
    } else {
        "slot-release"
    });
    #[cfg(unix)]
    std::os::unix::fs::symlink(binary, &exe)?;
    #[cfg(not(unix))]
    std::fs::copy(binary, &exe)?;
    Ok(task.join("index.js"))
}
