//! Running the apps: one real child process per slot (`sh -c <startup command>` in the site folder,
//! with the slot's settings, `PORT`, a shared `HOME`), its output and the platform's lines in the
//! slot's logs, readiness, restarts, warm-up for swaps, and killing every process group on shutdown.
//! The front end that routes and proxies requests to these processes is `crate::frontend`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::applog::LogTarget;
use crate::fault::glob_match;
use crate::seed::AppKind;
use crate::state::{App, PRODUCTION, RunState, Slot, State};
use crate::{Shared, lock};

/// What an instance is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InstanceStatus {
    Starting,
    Ready,
    DefaultPage,
    Failed(String),
}

/// One start of a slot's app.
#[derive(Debug)]
pub(crate) struct Instance {
    pub(crate) port: u16,
    status: watch::Sender<InstanceStatus>,
    cancel: CancellationToken,
    pid: Mutex<Option<u32>>,
}

impl Instance {
    fn with_status(port: u16, status: InstanceStatus) -> Arc<Self> {
        Arc::new(Self {
            port,
            status: watch::Sender::new(status),
            cancel: CancellationToken::new(),
            pid: Mutex::new(None),
        })
    }

    pub(crate) fn status(&self) -> InstanceStatus {
        self.status.borrow().clone()
    }

    /// Waits until the instance is no longer starting, or the timeout passes.
    pub(crate) async fn wait_started(&self, timeout: Duration) -> InstanceStatus {
        let mut rx = self.status.subscribe();
        let _ =
            tokio::time::timeout(timeout, rx.wait_for(|s| *s != InstanceStatus::Starting)).await;
        self.status()
    }

    /// Asks the monitor to kill the process group.
    pub(crate) fn stop(&self) {
        self.cancel.cancel();
    }

    /// Kills the process group right now, synchronously (used on shutdown and drop, where the
    /// monitor task may never run again).
    pub(crate) fn kill_now(&self) {
        self.cancel.cancel();
        if let Some(pid) = lock(&self.pid).take() {
            kill_group(pid);
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(pid) = lock(&self.pid).take() {
            kill_group(pid);
        }
    }
}

/// Kills a process group created with `process_group(0)` (its ID is the leader's PID). `kill(1)`
/// is used because the workspace forbids `unsafe` and so cannot call `libc::kill`.
fn kill_group(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Runs the startup command (`$1`) in place of the shell, next to a watchdog that kills the whole
/// process group once the emulator process (`$2`) is gone. Drop and shutdown kill the group
/// themselves; the watchdog covers an emulator killed by a signal, where no destructor runs (a
/// parent-death signal would need `unsafe`, which the workspace forbids).
const WATCHDOG: &str =
    r#"(while kill -0 "$2" 2>/dev/null; do sleep 1; done; kill -KILL 0) & exec sh -c "$1""#;

/// How to start a slot's app.
#[derive(Debug)]
pub(crate) struct LaunchSpec {
    command: Option<String>,
    cwd: PathBuf,
    env: Vec<(String, String)>,
    /// Why the image cannot run, with the status Docker's API answered the pull with.
    failure: Option<(&'static str, String)>,
    /// What the image prints before the app's own output (Oryx's detection).
    lines: Vec<String>,
    /// The image App Service would run (the container's, or the stack's built-in one).
    image: String,
    log: LogTarget,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Resolves `@Microsoft.KeyVault(...)` references from the emulated vaults, as App Service does
/// when it starts the app; an unresolvable reference stays as the literal text, like Azure.
pub(crate) fn resolve_reference(state: &State, value: &str) -> Option<String> {
    let inner = value
        .trim()
        .strip_prefix("@Microsoft.KeyVault(")?
        .strip_suffix(')')?;
    let (vault, name, version) = if let Some(uri) = inner.strip_prefix("SecretUri=") {
        let url = url::Url::parse(uri).ok()?;
        let vault = url.host_str()?.split('.').next()?.to_ascii_lowercase();
        let mut segs = url.path_segments()?.filter(|s| !s.is_empty());
        if segs.next()? != "secrets" {
            return None;
        }
        let name = segs.next()?.to_owned();
        (vault, name, segs.next().map(str::to_owned))
    } else {
        let mut vault = None;
        let mut name = None;
        let mut version = None;
        for part in inner.split(';') {
            let (k, v) = part.split_once('=')?;
            match k.trim().to_ascii_lowercase().as_str() {
                "vaultname" => vault = Some(v.trim().to_ascii_lowercase()),
                "secretname" => name = Some(v.trim().to_owned()),
                "secretversion" => version = Some(v.trim().to_owned()),
                _ => {}
            }
        }
        (vault?, name?, version)
    };
    let secret = state
        .vaults
        .get(&vault)?
        .secrets
        .get(&name.to_ascii_lowercase())?;
    if !secret.enabled {
        return None;
    }
    let v = match version {
        Some(ver) => secret.versions.iter().find(|v| v.id == ver)?,
        None => secret.versions.last()?,
    };
    Some(v.value.expose().to_owned())
}

/// The environment App Service gives a slot's processes: `PATH`, the app settings and the
/// prefixed connection strings (Key Vault references resolved), `HOME` shared by all slots of the
/// app, and the `WEBSITE_*` names.
pub(crate) fn app_env(
    shared: &Shared,
    state: &State,
    app: &App,
    slot: &Slot,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    // The image's own tools (`EmulatorOptions::runtime_path`) come first, as they would in it.
    let path = shared
        .runtime
        .path
        .iter()
        .map(|p| p.display().to_string())
        .chain(std::env::var("PATH").ok())
        .collect::<Vec<_>>()
        .join(":");
    env.push(("PATH".into(), path));
    for (k, v) in &slot.app_settings {
        let value = resolve_reference(state, v).unwrap_or_else(|| v.clone());
        env.push((k.clone(), value));
    }
    for (k, c) in &slot.connection_strings {
        let value = resolve_reference(state, &c.value).unwrap_or_else(|| c.value.clone());
        env.push((format!("{}{k}", c.kind.env_prefix()), value));
    }
    env.push(("HOME".into(), app.home_dir.display().to_string()));
    env.push(("WEBSITE_SITE_NAME".into(), app.name.clone()));
    let slot_name = if slot.name == PRODUCTION {
        "Production".to_owned()
    } else {
        slot.name.clone()
    };
    env.push(("WEBSITE_SLOT_NAME".into(), slot_name));
    // Both name the slot's default host as ARM gives it (App Service sets WEBSITE_DEFAULT_HOSTNAME
    // for apps that may have unique host names).
    let host = shared.host_with_port(&app.hosts(&slot.name).app);
    env.push(("WEBSITE_HOSTNAME".into(), host.clone()));
    env.push(("WEBSITE_DEFAULT_HOSTNAME".into(), host));
    env
}

/// Where a slot's next instance logs: its `/home/LogFiles`, an instance name stable for the slot,
/// and a container name new for each start, as App Service names them.
fn log_target(app: &App, slot: &Slot) -> LogTarget {
    let site = if slot.name == PRODUCTION {
        app.name.clone()
    } else {
        format!("{}__{}", app.name, slot.name)
    };
    LogTarget {
        dir: crate::applog::log_dir(&app.root_dir, &slot.name),
        machine: crate::hostnames::instance_name(&app.naming, &app.name, &slot.name),
        container: format!("{site}_0_{}", &crate::state::new_id()[..8]),
        site,
        guard: Arc::new(Mutex::new(())),
    }
}

/// Quotes a word for `sh`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Runs `command` with its site folder mounted read-only, as a site run from a package sees its
/// `wwwroot`: a private mount namespace (`unshare`, no privileges needed where user namespaces
/// are allowed) binds the folder over itself read-only, so only this app sees it so and nothing
/// is left behind. Where `unshare` cannot run, the app runs on a writable folder.
pub(crate) fn read_only(dir: &std::path::Path, command: &str) -> String {
    static UNSHARE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let available = *UNSHARE.get_or_init(|| {
        std::process::Command::new("unshare")
            .args(["-rm", "true"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !available {
        return command.to_owned();
    }
    let inner = r#"mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && cd "$0" && exec sh -c "$1""#;
    format!(
        "exec unshare -rm sh -c {} {} {}",
        sh_quote(inner),
        sh_quote(&dir.display().to_string()),
        sh_quote(command)
    )
}

/// Adds what a stack's image sets: folders in front of `PATH`, then its variables (which win over
/// app settings of the same name, as the image's run script sets them last).
fn with_image_env(
    mut env: Vec<(String, String)>,
    path: Vec<PathBuf>,
    extra: Vec<(String, String)>,
) -> Vec<(String, String)> {
    if !path.is_empty()
        && let Some((_, value)) = env.iter_mut().find(|(k, _)| k == "PATH")
    {
        let front: Vec<String> = path.iter().map(|p| p.display().to_string()).collect();
        *value = format!("{}:{value}", front.join(":"));
    }
    for (k, v) in extra {
        env.retain(|(name, _)| *name != k);
        env.push((k, v));
    }
    env
}

pub(crate) fn launch_spec(shared: &Shared, state: &State, app: &App, slot: &Slot) -> LaunchSpec {
    let env = app_env(shared, state, app, slot);
    let log = log_target(app, slot);
    let stack_image = slot
        .site_config
        .get("linuxFxVersion")
        .and_then(|v| v.as_str())
        .and_then(|v| v.split_once('|'))
        .map(|(stack, version)| format!("appsvc/{}:{version}", stack.to_ascii_lowercase()))
        .unwrap_or_else(|| "appsvc/python:3.12".to_owned());
    match app.kind {
        AppKind::Code => {
            let user = slot
                .site_config
                .get("appCommandLine")
                .and_then(|v| v.as_str())
                .map(str::trim)
                .filter(|c| !c.is_empty());
            let stack = crate::stack::stack_of(&slot.site_config);
            // A function app runs the Functions host, which starts the package itself: no startup
            // command and no stack detection apply.
            let startup = if app.function_app {
                crate::functions_host::startup(&slot.content_dir, &slot.app_settings)
            } else if app.os == crate::seed::AppOs::Windows {
                // IIS runs what the package's web.config names; `appCommandLine` is Linux's.
                crate::iis::startup(&slot.content_dir)
            } else {
                crate::stack::startup(stack, &slot.content_dir, user)
            };
            let command = if crate::kudu_job::run_from_package(&slot.app_settings) {
                startup.command.map(|c| read_only(&slot.content_dir, &c))
            } else {
                startup.command
            };
            LaunchSpec {
                command,
                cwd: slot.content_dir.clone(),
                env: with_image_env(env, startup.path, startup.env),
                failure: None,
                lines: startup.lines,
                image: stack_image,
                log,
            }
        }
        AppKind::Container => {
            let image = app.image(slot).unwrap_or_default();
            match shared
                .images
                .iter()
                .find(|m| !image.is_empty() && glob_match(&m.pattern, &image))
            {
                Some(m) if !may_pull(state, slot, m.private.as_ref()) => LaunchSpec {
                    command: None,
                    cwd: slot.content_dir.clone(),
                    env,
                    failure: Some((
                        "InternalServerError",
                        format!(
                            "Head \\\"https://{}/v2/{}/manifests/{}\\\": unauthorized: authentication required, visit https://aka.ms/acr/authorization for more information.",
                            m.private.as_ref().map_or("", |p| p.server.as_str()),
                            repository_path(&image),
                            image.rsplit_once(':').map_or("latest", |(_, tag)| tag),
                        ),
                    )),
                    lines: Vec::new(),
                    image,
                    log,
                },
                Some(m) => LaunchSpec {
                    command: Some(m.command.clone()),
                    cwd: m.dir.clone(),
                    env,
                    failure: None,
                    lines: Vec::new(),
                    image,
                    log,
                },
                None => LaunchSpec {
                    command: None,
                    cwd: slot.content_dir.clone(),
                    env,
                    failure: Some((
                        "NotFound",
                        format!(
                            "ImagePullFailure: pull access denied for '{image}', repository does not exist or may require authorization"
                        ),
                    )),
                    lines: Vec::new(),
                    image,
                    log,
                },
            }
        }
    }
}

/// Whether a slot may pull an image: a public one always; a private one with the app's managed
/// identity (`acrUseManagedIdentityCreds` on, which App Service then uses instead of any
/// credentials), or with `DOCKER_REGISTRY_SERVER_*` settings naming its server, user and password.
fn may_pull(state: &State, slot: &Slot, private: Option<&crate::PrivateImage>) -> bool {
    let Some(private) = private else {
        return true;
    };
    let identity = slot
        .site_config
        .get("acrUseManagedIdentityCreds")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    if identity {
        return private.identity;
    }
    let setting = |name: &str| slot.app_settings.get(name).map(String::as_str);
    let server = setting("DOCKER_REGISTRY_SERVER_URL").map(|url| {
        url.trim()
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_ascii_lowercase()
    });
    let password = setting("DOCKER_REGISTRY_SERVER_PASSWORD")
        .map(|v| resolve_reference(state, v).unwrap_or_else(|| v.to_owned()));
    server.as_deref() == Some(private.server.to_ascii_lowercase().as_str())
        && private.username.is_some()
        && setting("DOCKER_REGISTRY_SERVER_USERNAME") == private.username.as_deref()
        && private.password.is_some()
        && password == private.password
}

/// The repository of an image reference without its registry host and tag, as the registry's API
/// names it.
fn repository_path(image: &str) -> &str {
    let without_tag =
        image.rsplit_once(':').map_or(
            image,
            |(repo, tag)| {
                if tag.contains('/') { image } else { repo }
            },
        );
    without_tag
        .split_once('/')
        .map_or(without_tag, |(_, rest)| rest)
}

/// Starts an instance for a launch spec (returns at once; readiness is watched in the background).
pub(crate) fn spawn(shared: &Arc<Shared>, spec: LaunchSpec) -> Arc<Instance> {
    let log = spec.log;
    if let Some((status, reason)) = spec.failure {
        log.platform("INFO ", &format!("Pulling image: {}", spec.image));
        log.platform(
            "ERROR",
            &format!("Pulling docker image {} failed:", spec.image),
        );
        log.platform(
            "ERROR",
            &format!(
                "DockerApiException: Docker API responded with status code={status}, response={{\"message\":\"{reason}\"}}"
            ),
        );
        log.platform(
            "ERROR",
            "Image pull failed: Verify docker image configuration and credentials (if using private repository)",
        );
        log.platform(
            "INFO ",
            &format!(
                "Stopping site {} because it failed during startup.",
                log.site
            ),
        );
        return Instance::with_status(0, InstanceStatus::Failed(reason));
    }
    for line in &spec.lines {
        log.app(line);
    }
    let Some(command) = spec.command else {
        return Instance::with_status(0, InstanceStatus::DefaultPage);
    };
    let port = free_port();
    log.platform(
        "INFO ",
        &format!("Starting container for site {}", log.site),
    );
    log.platform(
        "INFO ",
        &format!(
            "docker run -d --expose={port} --name {} -e WEBSITE_SITE_NAME={} -e PORT={port} {}",
            log.container, log.site, spec.image
        ),
    );
    let instance = Instance::with_status(port, InstanceStatus::Starting);
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(WATCHDOG)
        .arg("sh")
        .arg(&command)
        .arg(std::process::id().to_string())
        .env_clear()
        .envs(spec.env)
        .env("PORT", port.to_string())
        .stdin(std::process::Stdio::null())
        // The app's output goes to its log, as App Service keeps it (`…_default_docker.log`).
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // An image mapping without a folder runs where the emulator runs.
    if !spec.cwd.as_os_str().is_empty() {
        cmd.current_dir(&spec.cwd);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let reason = format!("cannot start '{command}': {e}");
            log.platform("ERROR", &reason);
            instance.status.send_replace(InstanceStatus::Failed(reason));
            return instance;
        }
    };
    *lock(&instance.pid) = child.id();
    let mut pumps = Vec::new();
    if let Some(out) = child.stdout.take() {
        pumps.push(tokio::spawn(log.clone().pump(out)));
    }
    if let Some(err) = child.stderr.take() {
        pumps.push(tokio::spawn(log.clone().pump(err)));
    }
    tokio::spawn(monitor(
        instance.clone(),
        child,
        shared.app_start_timeout,
        log,
        pumps,
    ));
    instance
}

/// The exit status as Docker reports it: the code, or 128 + the signal that ended the process.
fn exit_code(status: std::process::ExitStatus) -> i32 {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return 128 + signal;
        }
    }
    status.code().unwrap_or(-1)
}

/// Writes the platform's lines for a container that exited, once its output is in the log.
async fn log_exit(
    log: &LogTarget,
    pumps: Vec<tokio::task::JoinHandle<()>>,
    code: i32,
    during_start: bool,
    port: u16,
) {
    // The group is dead, so the pipes close; wait briefly for the last lines to be written first.
    for pump in pumps {
        let _ = tokio::time::timeout(Duration::from_millis(500), pump).await;
    }
    if during_start {
        log.platform(
            "ERROR",
            &format!(
                "Container {} for site {} has exited with status {code}, failing site start",
                log.container, log.site
            ),
        );
        log.platform(
            "ERROR",
            &format!(
                "Container {} didn't respond to HTTP pings on port: {port}, failing site start. See container logs for debugging.",
                log.container
            ),
        );
        log.platform(
            "INFO ",
            &format!(
                "Stopping site {} because it failed during startup.",
                log.site
            ),
        );
    } else {
        log.platform(
            "ERROR",
            &format!(
                "Container {} for site {} has exited with status {code}",
                log.container, log.site
            ),
        );
    }
}

async fn monitor(
    instance: Arc<Instance>,
    mut child: tokio::process::Child,
    timeout: Duration,
    log: LogTarget,
    pumps: Vec<tokio::task::JoinHandle<()>>,
) {
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        // Poll the port only while starting; afterwards just wait for exit or cancellation.
        let starting = instance.status() == InstanceStatus::Starting;
        tokio::select! {
            _ = instance.cancel.cancelled() => {
                if let Some(pid) = lock(&instance.pid).take() {
                    kill_group(pid);
                }
                let _ = child.wait().await;
                return;
            }
            status = child.wait() => {
                if let Some(pid) = lock(&instance.pid).take() {
                    kill_group(pid);
                }
                let (reason, code) = match status {
                    Ok(s) => (format!("the startup command exited ({s})"), exit_code(s)),
                    Err(e) => (format!("the startup command could not be waited for: {e}"), -1),
                };
                // The log is complete before the status says the app failed: whoever reads the log
                // after seeing the failure finds the exit in it.
                log_exit(&log, pumps, code, starting, instance.port).await;
                instance.status.send_replace(InstanceStatus::Failed(reason));
                return;
            }
            _ = tick.tick(), if starting => {
                if instance.status() == InstanceStatus::Starting {
                    if tokio::net::TcpStream::connect(("127.0.0.1", instance.port)).await.is_ok() {
                        log.platform("INFO ", &format!(
                            "Container {} for site {} initialized successfully and is ready to serve requests.",
                            log.container, log.site
                        ));
                        instance.status.send_replace(InstanceStatus::Ready);
                    } else if started.elapsed() > timeout {
                        log.platform("ERROR", &format!(
                            "Container {} didn't respond to HTTP pings on port: {}, failing site start. See container logs for debugging.",
                            log.container, instance.port
                        ));
                        log.platform("INFO ", &format!(
                            "Stopping site {} because it failed during startup.", log.site
                        ));
                        instance.status.send_replace(InstanceStatus::Failed(format!(
                            "the app did not listen on PORT {} within {:?}", instance.port, timeout
                        )));
                        instance.cancel.cancel();
                    }
                }
            }
        }
    }
}

/// Restarts (or stops, if the slot is stopped) the app of one slot.
pub(crate) fn restart(shared: &Arc<Shared>, app_name: &str, slot_name: &str) {
    remount(shared, app_name, slot_name);
    let mut state = lock(&shared.state);
    let spec = {
        let Some(app) = state.apps.get(app_name) else {
            return;
        };
        let Some(slot) = app.slot(slot_name) else {
            return;
        };
        (!slot.stopped).then(|| launch_spec(shared, &state, app, slot))
    };
    let instance = spec.map(|spec| spawn(shared, spec));
    if let Some(slot) = state
        .apps
        .get_mut(app_name)
        .and_then(|a| a.slot_mut(slot_name))
    {
        slot.requests_served = 0;
        if let Some(old) = std::mem::replace(&mut slot.instance, instance) {
            old.stop();
        }
    }
}

/// Run from package: mounts the package `packagename.txt` names if it is not the one mounted.
fn remount(shared: &Arc<Shared>, app_name: &str, slot_name: &str) {
    let wanted = {
        let state = lock(&shared.state);
        let Some(app) = state.apps.get(app_name) else {
            return;
        };
        app.slot(slot_name).and_then(|s| {
            crate::kudu_job::remount_wanted(&app.root_dir, s).map(|zip| (app.root_dir.clone(), zip))
        })
    };
    let Some((root, zip)) = wanted else {
        return;
    };
    let Ok(dir) = crate::state::new_content_dir(&root) else {
        return;
    };
    if let Err(e) = crate::kudu_job::extract(&zip, &dir) {
        tracing::warn!(error = %e, "cannot mount {}", zip.display());
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let name = zip.file_name().map(|n| n.to_string_lossy().into_owned());
    let mut state = lock(&shared.state);
    if let Some(slot) = state
        .apps
        .get_mut(app_name)
        .and_then(|a| a.slot_mut(slot_name))
    {
        slot.mounted_package = name;
        let old = std::mem::replace(&mut slot.content_dir, dir);
        // The running process keeps its folder open until the restart stops it.
        let _ = std::fs::remove_dir_all(old);
    }
}

/// Starts every slot's app (at emulator start).
pub(crate) fn start_all(shared: &Arc<Shared>) {
    let slots: Vec<(String, String)> = {
        let state = lock(&shared.state);
        state
            .apps
            .values()
            .flat_map(|a| a.slots.keys().map(|s| (a.name.clone(), s.clone())))
            .collect()
    };
    for (a, s) in slots {
        restart(shared, &a, &s);
    }
}

/// Kills every app process now.
pub(crate) fn kill_all(shared: &Shared) {
    let state = lock(&shared.state);
    for app in state.apps.values() {
        for slot in app.slots.values() {
            if let Some(i) = &slot.instance {
                i.kill_now();
            }
        }
    }
}

pub(crate) fn run_state(slot: &Slot) -> RunState {
    if slot.stopped {
        return RunState::Stopped;
    }
    match slot.instance.as_ref().map(|i| (i.status(), i.port)) {
        None => RunState::Stopped,
        Some((InstanceStatus::Starting, _)) => RunState::Starting,
        Some((InstanceStatus::Ready, port)) => RunState::Running { port },
        Some((InstanceStatus::DefaultPage, _)) => RunState::DefaultPage,
        Some((InstanceStatus::Failed(reason), _)) => RunState::Failed { reason },
    }
}

/// Warms up an instance like App Service before a swap: `WEBSITE_SWAP_WARMUP_PING_PATH` (default
/// `/`) must answer, with a status in `WEBSITE_SWAP_WARMUP_PING_STATUSES` when that is set.
pub(crate) async fn warm_up(
    shared: &Shared,
    instance: &Instance,
    settings: &BTreeMap<String, String>,
) -> Result<(), String> {
    match instance.wait_started(shared.app_start_timeout).await {
        InstanceStatus::Ready => {}
        InstanceStatus::DefaultPage => return Ok(()),
        InstanceStatus::Starting => return Err("the app did not start in time".into()),
        InstanceStatus::Failed(reason) => return Err(reason),
    }
    let path = settings
        .get("WEBSITE_SWAP_WARMUP_PING_PATH")
        .filter(|p| !p.is_empty())
        .cloned()
        .unwrap_or_else(|| "/".to_owned());
    let path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    let statuses: Option<Vec<u16>> = settings
        .get("WEBSITE_SWAP_WARMUP_PING_STATUSES")
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect());
    let url = format!("http://127.0.0.1:{}{}", instance.port, path);
    let mut last = String::new();
    for _ in 0..5 {
        match shared
            .http
            .get(&url)
            .timeout(shared.app_start_timeout)
            .send()
            .await
        {
            Ok(resp) => {
                let code = resp.status().as_u16();
                return match &statuses {
                    Some(list) if !list.contains(&code) => Err(format!(
                        "warm-up request to {path} answered {code}, not one of WEBSITE_SWAP_WARMUP_PING_STATUSES"
                    )),
                    _ => Ok(()),
                };
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!("warm-up request to {path} failed: {last}"))
}
