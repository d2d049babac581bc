//! The Oryx build Kudu runs on a Linux deployment when the slot's `SCM_DO_BUILD_DURING_DEPLOYMENT`
//! is true: Python gets a virtual environment (`antenv`) and `pip install -r requirements.txt`,
//! Node `npm ci` (with a lockfile) or `npm install`, both without dev dependencies. Builds never
//! reach the network: pip installs from the emulator's local package folder (`--no-index
//! --find-links`), npm from its offline cache (`--offline --cache`). Every line the tools print
//! goes to the deployment's log; a failing tool fails the deployment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::RuntimeTools;
use crate::stack::{Stack, VENV};

/// Whether Kudu builds this deployment: `SCM_DO_BUILD_DURING_DEPLOYMENT` true-like (Kudu reads
/// `true`/`1` in any case); a push deployment does not build by default.
pub(crate) fn wanted(settings: &BTreeMap<String, String>) -> bool {
    settings
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("SCM_DO_BUILD_DURING_DEPLOYMENT"))
        .is_some_and(|(_, v)| {
            let v = v.trim();
            v.eq_ignore_ascii_case("true") || v == "1"
        })
}

/// The build's outcome: its log lines, and the reason it failed, if it did.
#[derive(Debug, Default)]
pub(crate) struct Build {
    pub(crate) lines: Vec<String>,
    pub(crate) failure: Option<String>,
}

impl Build {
    fn line(&mut self, l: impl Into<String>) {
        self.lines.push(l.into());
    }
}

/// Builds the site in `dir` (already extracted) for `stack`.
pub(crate) async fn build(stack: Stack, dir: &Path, tools: &RuntimeTools, work: &Path) -> Build {
    let mut b = Build::default();
    b.line("Running oryx build...");
    let platform = match stack {
        Stack::Python => "python",
        Stack::Node => "nodejs",
        _ => "",
    };
    b.line(format!(
        "Command: oryx build {} -o {} --platform {platform} -p virtualenv_name={VENV}",
        dir.display(),
        dir.display()
    ));
    b.line("Operation performed by Microsoft Oryx, https://github.com/Microsoft/Oryx");
    b.line("Detecting platforms...");
    match stack {
        Stack::Python => python(&mut b, dir, tools).await,
        Stack::Node => node(&mut b, dir, tools, work).await,
        _ => {
            b.line("Could not detect any platform in the source directory.");
            b.failure =
                Some("Oryx build failed: the emulator builds only Python and Node apps".to_owned());
        }
    }
    if b.failure.is_none() {
        b.line("Build Summary :");
        b.line("===============");
        b.line("Errors (0)");
        b.line("Warnings (0)");
    }
    b
}

/// Runs one build command, copying its output to the build's lines; false when it failed.
async fn run(
    b: &mut Build,
    program: &Path,
    args: &[&str],
    dir: &Path,
    env: &[(String, String)],
) -> bool {
    let out = tokio::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await;
    match out {
        Ok(out) => {
            for stream in [&out.stdout, &out.stderr] {
                for l in String::from_utf8_lossy(stream).lines() {
                    if !l.trim().is_empty() {
                        b.line(l.to_owned());
                    }
                }
            }
            if out.status.success() {
                true
            } else {
                let name = program
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let msg = format!(
                    "Oryx build failed: '{name} {}' exited with code {}",
                    args.join(" "),
                    out.status.code().unwrap_or(-1)
                );
                b.line(msg.clone());
                b.failure = Some(msg);
                false
            }
        }
        Err(e) => {
            let msg = format!("Oryx build failed: cannot run {}: {e}", program.display());
            b.line(msg.clone());
            b.failure = Some(msg);
            false
        }
    }
}

/// `PATH` as a build sees it: the image's tools first, then the emulator's own.
fn build_path(tools: &RuntimeTools, front: &[PathBuf]) -> String {
    front
        .iter()
        .chain(tools.path.iter())
        .map(|p| p.display().to_string())
        .chain(std::env::var("PATH").ok())
        .collect::<Vec<_>>()
        .join(":")
}

/// The real interpreter behind `python3` (pyenv shims need the emulator's own environment), so
/// the virtual environment points at a Python that runs with any `HOME`.
async fn python3(tools: &RuntimeTools) -> Option<PathBuf> {
    let out = tokio::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .env("PATH", build_path(tools, &[]))
        .stdin(Stdio::null())
        .output()
        .await
        .ok()?;
    let path = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
}

async fn python(b: &mut Build, dir: &Path, tools: &RuntimeTools) {
    b.line("Detected following platforms:");
    b.line("  python");
    let Some(py) = python3(tools).await else {
        let msg = "Oryx build failed: no python3 found for the build".to_owned();
        b.line(msg.clone());
        b.failure = Some(msg);
        return;
    };
    b.line(format!("Python Version: {}", py.display()));
    b.line(format!("Python Virtual Environment: {VENV}"));
    b.line("Creating virtual environment...");
    let venv = dir.join(VENV);
    let env = vec![
        ("PATH".to_owned(), build_path(tools, &[])),
        ("PIP_DISABLE_PIP_VERSION_CHECK".to_owned(), "1".to_owned()),
        ("PIP_NO_INPUT".to_owned(), "1".to_owned()),
    ];
    if !run(b, &py, &["-m", "venv", VENV], dir, &env).await {
        return;
    }
    b.line("Activating virtual environment...");
    if !dir.join("requirements.txt").is_file() {
        b.line("Could not find requirements.txt; no packages to install.");
        return;
    }
    b.line("Running pip install...");
    let mut env = env;
    env[0].1 = build_path(tools, &[venv.join("bin")]);
    env.push(("VIRTUAL_ENV".to_owned(), venv.display().to_string()));
    let links = tools
        .python_packages
        .as_ref()
        .map(|p| p.display().to_string());
    // `--no-index` always: without a local package folder nothing can be installed, as offline.
    let mut args = vec!["-m", "pip", "install", "--no-index"];
    if let Some(l) = &links {
        args.extend(["--find-links", l.as_str()]);
    }
    args.extend(["-r", "requirements.txt"]);
    let venv_python = venv.join("bin").join("python");
    run(b, &venv_python, &args, dir, &env).await;
}

async fn node(b: &mut Build, dir: &Path, tools: &RuntimeTools, work: &Path) {
    if !dir.join("package.json").is_file() {
        b.line("Could not detect any platform in the source directory.");
        let msg = "Oryx build failed: no package.json in the package".to_owned();
        b.line(msg.clone());
        b.failure = Some(msg);
        return;
    }
    b.line("Detected following platforms:");
    b.line("  nodejs");
    // Without a cache of its own, npm gets an empty one: offline, any dependency then fails.
    let cache = tools
        .npm_cache
        .clone()
        .unwrap_or_else(|| work.join("npm-cache"));
    let cache = cache.display().to_string();
    let lock = dir.join("package-lock.json").is_file();
    let verb = if lock { "ci" } else { "install" };
    b.line(format!("Running 'npm {verb} --omit=dev'..."));
    let env = vec![
        ("PATH".to_owned(), build_path(tools, &[])),
        ("HOME".to_owned(), work.display().to_string()),
        ("npm_config_audit".to_owned(), "false".to_owned()),
        ("npm_config_fund".to_owned(), "false".to_owned()),
        ("npm_config_update_notifier".to_owned(), "false".to_owned()),
    ];
    run(
        b,
        Path::new("npm"),
        &[verb, "--omit=dev", "--offline", "--cache", &cache],
        dir,
        &env,
    )
    .await;
}
