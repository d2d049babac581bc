//! Packaging: build the release binary, stage the task folder (task.json stamped with the workspace
//! version, the Node entry point, one binary per platform) and build the Marketplace `.vsix` with a
//! pinned tfx-cli installed from npm into `crates/xtask/npm` (never globally).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail, ensure};
use serde_json::Value;

/// Folder names for the platforms the entry point knows (`task/index.js`, `PLATFORMS`).
pub const PLATFORMS: [&str; 5] = [
    "linux-x64",
    "linux-arm64",
    "win-x64",
    "osx-x64",
    "osx-arm64",
];

/// The largest `.vsix` Azure DevOps Server 2019 accepts (26,214,400 bytes), in MiB.
const DEFAULT_MAX_VSIX_MIB: u64 = 25;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A folder with binaries built elsewhere: `<DIR>/<platform>/slot-release[.exe]`, platform one of
    /// linux-x64, linux-arm64, win-x64, osx-x64, osx-arm64.
    #[arg(long, value_name = "DIR")]
    binaries: Option<PathBuf>,
    /// Use this binary for the host platform instead of running `cargo build --release`.
    #[arg(long, value_name = "FILE")]
    host_binary: Option<PathBuf>,
    /// Marketplace publisher (overrides vss-extension.json).
    #[arg(long)]
    publisher: Option<String>,
    /// Extension id (overrides vss-extension.json).
    #[arg(long)]
    extension_id: Option<String>,
    /// Where to stage and write the .vsix.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Package only these platforms (comma-separated), for a .vsix that fits a size limit; each must
    /// have a binary. Default: every platform with a binary.
    #[arg(long, value_delimiter = ',', value_name = "PLATFORMS")]
    platforms: Vec<String>,
    /// Fail when the .vsix is larger than this many MiB (25 is the Azure DevOps Server 2019 limit).
    #[arg(long, default_value_t = DEFAULT_MAX_VSIX_MIB, value_name = "MIB")]
    max_size_mib: u64,
    /// Stage the task and extension folders only; do not run tfx.
    #[arg(long)]
    no_vsix: bool,
    /// Package the host's binary alone, for trying the task locally. Without it (or `--platforms`),
    /// packaging refuses a package that would lack any platform, which would fail on those agents.
    #[arg(long, conflicts_with = "platforms")]
    host_only: bool,
}

/// The workspace root: xtask lives in `crates/xtask`.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let root = workspace_root();
    let version = env!("CARGO_PKG_VERSION");
    let out = args.out.clone().unwrap_or_else(|| root.join("target/dist"));
    let host_binary = match &args.host_binary {
        Some(path) => path.clone(),
        None => build_release(&root)?,
    };

    let task_dir = out.join("task");
    let requested: Vec<String> = if args.host_only {
        vec![
            host_platform()
                .context("this host's platform is not one the task supports; --host-only has nothing to package")?
                .to_owned(),
        ]
    } else {
        args.platforms.clone()
    };
    let binaries = select_platforms(
        collect_binaries(args.binaries.as_deref(), &host_binary)?,
        &requested,
    )?;
    stage_task(&root, &task_dir, version, &binaries)?;
    println!(
        "staged {} with {}",
        task_dir.display(),
        binaries
            .iter()
            .map(|(p, _)| p.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );

    let ext_dir = out.join("extension");
    stage_extension(&root, &task_dir, &ext_dir, version)?;
    if args.no_vsix {
        println!("staged {} (no .vsix requested)", ext_dir.display());
        return Ok(());
    }
    let vsix = build_vsix(
        &root,
        &ext_dir,
        &out,
        version,
        args.publisher.as_deref(),
        args.extension_id.as_deref(),
    )?;
    let size = std::fs::metadata(&vsix)
        .with_context(|| format!("cannot read {}", vsix.display()))?
        .len();
    let limit = args.max_size_mib * 1024 * 1024;
    ensure!(
        size <= limit,
        "{} is {size} bytes, over the {} MiB limit; package fewer platforms per .vsix (--platforms)",
        vsix.display(),
        args.max_size_mib
    );
    println!(
        "built {} ({:.1} MiB)",
        vsix.display(),
        size as f64 / 1024.0 / 1024.0
    );
    Ok(())
}

/// `cargo build --release -p slot-release`, returning the binary's path.
fn build_release(root: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--locked", "-p", "slot-release"])
        .current_dir(root)
        .status()
        .context("cannot run cargo")?;
    ensure!(
        status.success(),
        "cargo build --release -p slot-release failed ({status})"
    );
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let binary = target
        .join("release")
        .join(exe_name(std::env::consts::OS == "windows"));
    ensure!(
        binary.is_file(),
        "the release build did not produce {}",
        binary.display()
    );
    Ok(binary)
}

fn exe_name(windows: bool) -> &'static str {
    if windows {
        "slot-release.exe"
    } else {
        "slot-release"
    }
}

/// The host's platform folder name, if it is one the entry point supports.
pub fn host_platform() -> Option<&'static str> {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => Some("linux-x64"),
        ("linux", "aarch64") => Some("linux-arm64"),
        ("windows", "x86_64") => Some("win-x64"),
        ("macos", "x86_64") => Some("osx-x64"),
        ("macos", "aarch64") => Some("osx-arm64"),
        _ => None,
    }
}

/// Binaries per platform: those found in `dir`, then the host's own (which wins for its platform,
/// being the one just built).
pub fn collect_binaries(
    dir: Option<&Path>,
    host_binary: &Path,
) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    if let Some(dir) = dir {
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read the binaries folder {}", dir.display()))?;
        for entry in entries {
            let entry = entry
                .with_context(|| format!("cannot read the binaries folder {}", dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !entry.path().is_dir() {
                continue;
            }
            ensure!(
                PLATFORMS.contains(&name.as_str()),
                "{} is not a platform folder; expected one of {}",
                entry.path().display(),
                PLATFORMS.join(", ")
            );
            let binary = entry.path().join(exe_name(name.starts_with("win-")));
            ensure!(
                binary.is_file(),
                "{} has no {}",
                entry.path().display(),
                exe_name(name.starts_with("win-"))
            );
            found.push((name, binary));
        }
    }
    match host_platform() {
        Some(host) => {
            ensure!(
                host_binary.is_file(),
                "the host binary {} does not exist",
                host_binary.display()
            );
            found.retain(|(platform, _)| platform != host);
            found.push((host.to_owned(), host_binary.to_path_buf()));
        }
        None => eprintln!(
            "warning: this host's platform is not one the task supports; only --binaries are packaged"
        ),
    }
    found.sort();
    ensure!(!found.is_empty(), "no binaries to package");
    Ok(found)
}

/// Keeps the requested platforms, each of which must have a binary. With none requested, every platform
/// must have one: a package silently without Windows or macOS would fail on those agents.
pub fn select_platforms(
    found: Vec<(String, PathBuf)>,
    requested: &[String],
) -> anyhow::Result<Vec<(String, PathBuf)>> {
    if requested.is_empty() {
        let missing: Vec<&str> = PLATFORMS
            .iter()
            .copied()
            .filter(|p| !found.iter().any(|(f, _)| f == p))
            .collect();
        ensure!(
            missing.is_empty(),
            "no binary for {}: the package would fail on those agents. Give the other platforms' binaries with --binaries DIR (the release pipeline builds them), choose platforms with --platforms, or pass --host-only for a local package with this host's binary only",
            missing.join(", ")
        );
        return Ok(found);
    }
    for platform in requested {
        ensure!(
            PLATFORMS.contains(&platform.as_str()),
            "unknown platform {platform}; expected one of {}",
            PLATFORMS.join(", ")
        );
        ensure!(
            found.iter().any(|(p, _)| p == platform),
            "no binary for {platform}"
        );
    }
    Ok(found
        .into_iter()
        .filter(|(p, _)| requested.contains(p))
        .collect())
}

/// Writes the task folder: task.json (version stamped), index.js, bin/<platform>/slot-release[.exe].
pub fn stage_task(
    root: &Path,
    task_dir: &Path,
    version: &str,
    binaries: &[(String, PathBuf)],
) -> anyhow::Result<()> {
    if task_dir.exists() {
        // tfx packs the folder recursively, so anything left from an earlier run would ship.
        std::fs::remove_dir_all(task_dir)
            .with_context(|| format!("cannot clear {}", task_dir.display()))?;
    }
    std::fs::create_dir_all(task_dir)
        .with_context(|| format!("cannot create {}", task_dir.display()))?;
    let task_json = stamp_task_json(&read_json(&root.join("task.json"))?, version)?;
    write_json(&task_dir.join("task.json"), &task_json)?;
    copy(&root.join("task/index.js"), &task_dir.join("index.js"))?;
    for (platform, binary) in binaries {
        let dest = task_dir
            .join("bin")
            .join(platform)
            .join(exe_name(platform.starts_with("win-")));
        copy(binary, &dest)?;
    }
    Ok(())
}

/// task.json with `version` set from a `major.minor.patch` string.
pub fn stamp_task_json(task: &Value, version: &str) -> anyhow::Result<Value> {
    let parts: Vec<u64> = version
        .split(['.', '-', '+'])
        .take(3)
        .map(|p| {
            p.parse::<u64>()
                .with_context(|| format!("version {version} is not major.minor.patch"))
        })
        .collect::<Result<_, _>>()?;
    let [major, minor, patch] = parts[..] else {
        bail!("version {version} is not major.minor.patch")
    };
    let mut task = task.clone();
    let Some(object) = task.as_object_mut() else {
        bail!("task.json is not an object")
    };
    object.insert(
        "version".into(),
        serde_json::json!({ "Major": major, "Minor": minor, "Patch": patch }),
    );
    Ok(task)
}

/// The extension root tfx packs: the manifest (version stamped), the staged task, icons and overview.
fn stage_extension(
    root: &Path,
    task_dir: &Path,
    ext_dir: &Path,
    version: &str,
) -> anyhow::Result<()> {
    if ext_dir.exists() {
        std::fs::remove_dir_all(ext_dir)
            .with_context(|| format!("cannot clear {}", ext_dir.display()))?;
    }
    let mut manifest = read_json(&root.join("vss-extension.json"))?;
    manifest["version"] = Value::String(version.to_owned());
    write_json(&ext_dir.join("vss-extension.json"), &manifest)?;
    copy_dir(task_dir, &ext_dir.join("task"))?;
    // Only the pictures: the script that draws the icon stays out of the package.
    copy(
        &root.join("images/icon.png"),
        &ext_dir.join("images/icon.png"),
    )?;
    copy(
        &root.join("docs/marketplace.md"),
        &ext_dir.join("docs/marketplace.md"),
    )?;
    Ok(())
}

/// Installs the pinned tfx-cli (`npm ci`) when needed and runs `tfx extension create`.
fn build_vsix(
    root: &Path,
    ext_dir: &Path,
    out: &Path,
    version: &str,
    publisher: Option<&str>,
    extension_id: Option<&str>,
) -> anyhow::Result<PathBuf> {
    let npm_dir = root.join("crates/xtask/npm");
    let tfx = npm_dir.join("node_modules/tfx-cli/_build/tfx-cli.js");
    if !tfx.is_file() {
        let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
        let status = Command::new(npm)
            .args([
                "ci",
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
                "--prefix",
            ])
            .arg(&npm_dir)
            .status()
            .context("cannot run npm (Node.js 20 or newer is needed to build the .vsix)")?;
        ensure!(
            status.success(),
            "npm ci in {} failed ({status})",
            npm_dir.display()
        );
        ensure!(tfx.is_file(), "npm ci did not install {}", tfx.display());
    }
    let vsix_dir = out.join("vsix");
    if vsix_dir.exists() {
        std::fs::remove_dir_all(&vsix_dir)
            .with_context(|| format!("cannot clear {}", vsix_dir.display()))?;
    }
    std::fs::create_dir_all(&vsix_dir)
        .with_context(|| format!("cannot create {}", vsix_dir.display()))?;
    let mut tfx_cmd = Command::new("node");
    tfx_cmd
        .arg(&tfx)
        .args([
            "extension",
            "create",
            "--no-prompt",
            "--manifest-globs",
            "vss-extension.json",
            "--root",
        ])
        .arg(ext_dir)
        .arg("--output-path")
        .arg(&vsix_dir)
        .arg("--override")
        .arg(serde_json::json!({ "version": version }).to_string());
    if let Some(publisher) = publisher {
        tfx_cmd.args(["--publisher", publisher]);
    }
    if let Some(id) = extension_id {
        tfx_cmd.args(["--extension-id", id]);
    }
    let status = tfx_cmd.status().context("cannot run node")?;
    ensure!(status.success(), "tfx extension create failed ({status})");
    let vsix = std::fs::read_dir(&vsix_dir)
        .with_context(|| format!("cannot read {}", vsix_dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "vsix"));
    vsix.with_context(|| format!("tfx wrote no .vsix into {}", vsix_dir.display()))
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

fn write_json(path: &Path, value: &Value) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("cannot serialise JSON")?;
    text.push('\n');
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::copy(from, to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?
    {
        let entry = entry.with_context(|| format!("cannot read {}", from.display()))?;
        let dest = to.join(entry.file_name());
        if entry
            .file_type()
            .with_context(|| format!("cannot stat {}", entry.path().display()))?
            .is_dir()
        {
            copy_dir(&entry.path(), &dest)?;
        } else {
            copy(&entry.path(), &dest)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_the_version_into_task_json() -> anyhow::Result<()> {
        let task = serde_json::json!({ "name": "SlotRelease", "version": { "Major": 1, "Minor": 0, "Patch": 0 } });
        let stamped = stamp_task_json(&task, "1.4.12")?;
        assert_eq!(
            stamped["version"],
            serde_json::json!({ "Major": 1, "Minor": 4, "Patch": 12 })
        );
        assert_eq!(stamped["name"], "SlotRelease");
        assert!(stamp_task_json(&task, "1.x").is_err());
        Ok(())
    }

    #[test]
    fn stages_the_task_with_binaries_per_platform() -> anyhow::Result<()> {
        let tmp_guard = tempfile::tempdir()?;
        let tmp = tmp_guard.path();
        let binaries = tmp.join("binaries");
        for platform in ["linux-arm64", "win-x64"] {
            let exe = binaries
                .join(platform)
                .join(exe_name(platform.starts_with("win-")));
            std::fs::create_dir_all(exe.parent().context("parent")?)?;
            std::fs::write(&exe, platform)?;
        }
        let host = tmp.join("host-slot-release");
        std::fs::write(&host, "host")?;
        let found = collect_binaries(Some(&binaries), &host)?;
        let task_dir = tmp.join("task");
        // Leftovers from an earlier run must not survive staging.
        std::fs::create_dir_all(task_dir.join("stale"))?;
        stage_task(&workspace_root(), &task_dir, "1.2.3", &found)?;
        let task = read_json(&task_dir.join("task.json"))?;
        assert_eq!(task["version"]["Minor"], 2);
        assert!(task_dir.join("index.js").is_file());
        assert!(!task_dir.join("stale").exists());
        assert_eq!(
            std::fs::read_to_string(task_dir.join("bin/win-x64/slot-release.exe"))?,
            "win-x64"
        );
        assert_eq!(
            std::fs::read_to_string(task_dir.join("bin/linux-arm64/slot-release"))?,
            "linux-arm64"
        );
        if let Some(platform) = host_platform() {
            let exe = task_dir
                .join("bin")
                .join(platform)
                .join(exe_name(platform.starts_with("win-")));
            assert_eq!(std::fs::read_to_string(exe)?, "host");
        }

        // Nothing requested: every platform must have a binary, or packaging says which are missing.
        let err = select_platforms(found.clone(), &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("osx-arm64") && err.contains("--host-only"),
            "{err}"
        );
        let linux_only = select_platforms(found.clone(), &["linux-arm64".to_owned()])?;
        assert_eq!(
            linux_only
                .iter()
                .map(|(p, _)| p.as_str())
                .collect::<Vec<_>>(),
            ["linux-arm64"]
        );
        assert!(
            select_platforms(found.clone(), &["osx-arm64".to_owned()]).is_err(),
            "a platform without a binary"
        );
        assert!(select_platforms(found.clone(), &["aix-ppc".to_owned()]).is_err());

        std::fs::create_dir_all(binaries.join("solaris-sparc"))?;
        assert!(
            collect_binaries(Some(&binaries), &host).is_err(),
            "unknown platform folders are refused"
        );
        Ok(())
    }
}
