//! Runs one matrix case: a world with a released baseline, the stage under fault through the real
//! entry point, then the run the pipeline would make next, with production polled all along.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use slot_release_emulator::{Fault, RouteMatch, StateSnapshot};

use super::{Case, FaultKind, StageUnderTest, Step, Timing};
use crate::agent::{AgentOutcome, RunningTask};
use crate::leak::LeakDetector;
use crate::prober::{Prober, Sample};
use crate::world::World;

/// The release production serves before the case (released by a clean run).
pub const BASELINE: &str = "20261122-1";
/// The release the case tries to ship.
pub const CANDIDATE: &str = "20261122-2";
/// The longest one run may take: the config's waits (gate 20 s, hook 30 s, watch 3 s, rollback
/// gate 20 s), the 300 s default of the production gate after a swap back, and retries with their
/// back-off. A run past it is a wait without a deadline.
pub const RUN_DEADLINE: Duration = Duration::from_secs(400);
/// What the harness gives a run before killing it (so a hang fails the case instead of the suite).
const HARNESS_TIMEOUT: Duration = Duration::from_secs(450);
/// How often production is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// The example config with short waits, and two settings per release so a half-applied set shows.
pub const MATRIX_CONFIG: &str = r#"# The example release with the waits shortened for the fault matrix.
version: 1
app:
  name: contoso-web
  resourceGroup: contoso-rg
  kind: code
  stack: PYTHON|3.12
  startupCommand: python3 app.py
package:
  root: .
  exclude:
    - "tests/**"
    - "*.pyc"
    - "release.yml"
    - "_temp/**"
environments:
  staging:
    slot: staging
    settings:
      APP_ENV: staging
      DATABASE_PATH: data/app.db
      RELEASE_VERSION: $(Build.BuildNumber)
      RELEASE_MARK: mark-$(Build.BuildNumber)
    secrets:
      vault: contoso-kv
      map:
        API_KEY: api-key
        DATABASE__PASSWORD:
          secret: db-password
          delivery: value
  production:
    slot: production
    settings:
      APP_ENV: production
      DATABASE_PATH: data/app.db
      RELEASE_VERSION: $(Build.BuildNumber)
      RELEASE_MARK: mark-$(Build.BuildNumber)
    secrets:
      vault: contoso-kv
      map:
        API_KEY: api-key
        DATABASE__PASSWORD:
          secret: db-password
          delivery: value
stages:
  staging:
    environment: staging
    hooks:
      - name: migrate
        run: python3 migrate.py up
        where: slot
        timeout: 30s
        undo: python3 migrate.py down
    healthCheck:
      path: /health
      statuses: [200]
      interval: 1s
      successes: 2
      timeout: 20s
      bodyContains: ok
  production:
    environment: production
    sourceSlot: staging
    strategy: swap
    watch:
      duration: 3s
      maxFailures: 2
      healthCheck:
        path: /health
        statuses: [200]
        interval: 1s
        bodyContains: ok
    rollback: automatic
    undoHooks: run
  rollback:
    environment: production
    restore: swapBack
    undoHooks: run
    healthCheck:
      path: /health
      interval: 1s
      successes: 2
      timeout: 20s
"#;

/// One run of the task in the case.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// `staging`, `production` or `rollback`.
    pub command: String,
    pub outcome: AgentOutcome,
    /// Whether the harness killed or cancelled it on purpose.
    pub interrupted: bool,
    /// The journal tags and settings right after the run.
    pub after: StateSnapshot,
    /// Which release's package each slot holds right after the run (by the marker file), by slot.
    pub content: BTreeMap<String, Option<String>>,
}

/// The file each package carries naming its release, so a slot's content says which release it is.
pub const MARKER: &str = "release-id.txt";

/// The release whose package each slot of the app holds.
pub fn content_releases(snapshot: &StateSnapshot) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    for app in snapshot.apps.iter().filter(|a| a.name == "contoso-web") {
        for slot in &app.slots {
            let release = std::fs::read_to_string(slot.content_dir.join(MARKER))
                .ok()
                .map(|s| s.trim().to_owned());
            out.insert(slot.name.clone(), release);
        }
    }
    out
}

/// Prepares the sources as release `release`: its marker, and for the baseline a schema one version
/// older, so the candidate brings a real migration and its undo gives the baseline back its schema
/// (with equal schemas, the undo would take the baseline's own schema away).
fn mark_sources(world: &World, release: &str) -> Result<(), String> {
    std::fs::write(world.sources.join(MARKER), format!("{release}\n"))
        .map_err(|e| e.to_string())?;
    let example = crate::paths::workspace().join("examples/python-webapp");
    for (file, from, to) in [
        (
            "settings.py",
            "REQUIRED_SCHEMA_VERSION = 2",
            "REQUIRED_SCHEMA_VERSION = 1",
        ),
        ("migrate.py", "LATEST = max(MIGRATIONS)", "LATEST = 1"),
    ] {
        let text =
            std::fs::read_to_string(example.join(file)).map_err(|e| format!("{file}: {e}"))?;
        if !text.contains(from) {
            return Err(format!(
                "{file} no longer contains {from:?}: update the fault matrix"
            ));
        }
        let text = if release == BASELINE {
            text.replace(from, to)
        } else {
            text
        };
        std::fs::write(world.sources.join(file), text).map_err(|e| format!("{file}: {e}"))?;
    }
    Ok(())
}

fn report(command: &str, outcome: AgentOutcome, interrupted: bool, world: &World) -> RunReport {
    let after = world.emulator.snapshot();
    RunReport {
        command: command.to_owned(),
        outcome,
        interrupted,
        content: content_releases(&after),
        after,
    }
}

/// Everything a case produced, for the invariant checks.
#[derive(Debug, Clone)]
pub struct CaseReport {
    pub case: Case,
    /// The run under fault, then the pipeline's next run.
    pub runs: Vec<RunReport>,
    /// Production, sampled from the start of the first run to the end of the second.
    pub samples: Vec<Sample>,
    /// Faults set on the emulator (0 for signals).
    pub faults_injected: usize,
    /// Whether the fault's trigger was reached (the step ran at all).
    pub triggered: bool,
    /// Requests the emulator answered with a fault's status or not at all.
    pub faulted_requests: usize,
    /// Requests of the case's own step that its transport fault struck (delayed, answered with its
    /// status, or not answered); `None` for faults that act otherwise (signals, swaps, apps, tokens).
    /// `Some(0)` means the fault was aimed at requests the run never made: the case proved nothing.
    pub step_hits: Option<usize>,
    /// Secrets found by the leak detector in any run's output, summaries, records and plans.
    pub leaks: Vec<String>,
}

/// The route of a step, its host placeholders replaced by the hosts the emulator gave the app.
fn route(world: &World, step: Step) -> RouteMatch {
    let (host, method, path) = step.route();
    let host = match host {
        "{production}" => world.emulator.app_host("contoso-web", "production"),
        "{staging}" => world.emulator.app_host("contoso-web", "staging"),
        "{staging.scm}" => world.emulator.scm_host("contoso-web", "staging"),
        other => other.to_owned(),
    };
    RouteMatch {
        host: Some(host),
        method: Some(method.to_owned()),
        path: Some(path.to_owned()),
        body_contains: step.body_contains().map(str::to_owned),
    }
}

/// The emulator faults for a case (none for signals and token expiry, which act otherwise).
fn faults_for(world: &World, case: Case) -> Vec<Fault> {
    let r = route(world, case.step);
    let count = |n| {
        Some(slot_release_emulator::Scope {
            count: Some(n),
            share: None,
        })
    };
    match case.fault {
        FaultKind::LatencySpike => vec![Fault::Latency {
            route: r,
            millis: 1500,
            count: Some(3),
        }],
        FaultKind::ThrottleStorm => vec![Fault::Status {
            route: r,
            status: 429,
            retry_after_secs: Some(1),
            scope: count(3),
        }],
        FaultKind::ServerErrorBurst => vec![Fault::Status {
            route: r,
            status: 500,
            retry_after_secs: None,
            scope: count(3),
        }],
        FaultKind::ConnectionReset => vec![Fault::ConnectionReset {
            route: r,
            scope: count(2),
        }],
        FaultKind::RequestTimeout => vec![Fault::Hang {
            route: r,
            millis: Some(5000),
            scope: count(1),
        }],
        FaultKind::Conflict => vec![Fault::Status {
            route: r,
            status: 409,
            retry_after_secs: None,
            scope: count(1),
        }],
        FaultKind::SwapWarmupFails => vec![Fault::SwapWarmupFails {
            app: "contoso-web".into(),
        }],
        FaultKind::DeploymentFails => vec![Fault::DeploymentFails {
            app: "contoso-web".into(),
            slot: Some("staging".into()),
        }],
        FaultKind::AppCrash => vec![Fault::AppUnhealthyAfterRequests {
            app: "contoso-web".into(),
            slot: "staging".into(),
            after_requests: 1,
        }],
        FaultKind::UnhealthyAfterSwap => vec![Fault::AppUnhealthyAfterSwap {
            app: "contoso-web".into(),
        }],
        FaultKind::TokenExpiry | FaultKind::Kill | FaultKind::Cancel => Vec::new(),
    }
}

/// Runs blocking harness code on this runtime worker while the others keep serving the emulator.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn run_clean(world: &World, command: &str, release: &str) -> Result<AgentOutcome, String> {
    mark_sources(world, release)?;
    let run = world
        .run(command)?
        .env("BUILD_BUILDNUMBER", release)
        .env("BUILD_BUILDID", build_id(release))
        .input("releaseRecordPath", &record_path(world, command, release));
    let outcome = blocking(|| run.run(HARNESS_TIMEOUT)).map_err(|e| e.to_string())?;
    let result = outcome.variables.get("Result").map(|v| v.value.clone());
    if !matches!(result.as_deref(), Some("Succeeded" | "SucceededWithIssues")) {
        return Err(format!(
            "setup run `{command}` of {release} did not succeed ({result:?})\n{}",
            outcome.transcript()
        ));
    }
    Ok(outcome)
}

/// Each release is its own pipeline run, with a build id of its own.
fn build_id(release: &str) -> &'static str {
    if release == BASELINE { "4241" } else { "4242" }
}

/// The build number of a release the journal names by its identity (`build-<id>.def-17`), so the checks
/// can compare it with the marker in a slot's package.
pub fn release_name(identity: &str) -> String {
    [BASELINE, CANDIDATE]
        .into_iter()
        .find(|name| identity == format!("build-{}.def-17", build_id(name)))
        .map_or_else(|| identity.to_owned(), str::to_owned)
}

fn record_path(world: &World, command: &str, release: &str) -> String {
    world
        .temp()
        .join(format!("record-{command}-{release}.json"))
        .display()
        .to_string()
}

/// Starts the emulator world, releases the baseline, stages the candidate when the case is about
/// production, then runs the case and the pipeline's next run.
pub async fn run_case(case: Case) -> Result<CaseReport, String> {
    let world = World::start().await?;
    std::fs::write(world.config(), MATRIX_CONFIG).map_err(|e| e.to_string())?;
    if case.step.is_canary() {
        // The baseline and candidate are staged as any release; the candidate's production is a canary.
        run_clean(&world, "release", BASELINE)?;
        run_clean(&world, "staging", CANDIDATE)?;
        std::fs::write(world.config(), canary_config()).map_err(|e| e.to_string())?;
        return run_case_on(world, case).await;
    }
    run_clean(&world, "release", BASELINE)?;
    if case.step.stage() == StageUnderTest::Production {
        run_clean(&world, "staging", CANDIDATE)?;
    }
    run_case_on(world, case).await
}

/// [`MATRIX_CONFIG`] with production released as a canary: 10 % gated on the page, 50 % held.
pub fn canary_config() -> String {
    MATRIX_CONFIG.replace(
        "    strategy: swap\n",
        "    strategy: canary\n    canary:\n      steps:\n        - percent: 10\n          healthCheck:\n            path: /\n            interval: 1s\n            successes: 3\n            timeout: 20s\n        - percent: 50\n          pause: 3s\n",
    )
}

/// Runs the case on a world its baseline (and for production, its candidate's staging) was released
/// on, then the pipeline's next run.
async fn run_case_on(world: World, case: Case) -> Result<CaseReport, String> {
    let stage = case.step.stage();
    world.emulator.clear_requests();
    mark_sources(&world, CANDIDATE)?;

    let prober = Prober::start(&world, SAMPLE_EVERY)?;

    let mut faults_injected = 0;
    let mut runs = Vec::new();
    let first = first_run(&world, case, stage, &prober, &mut faults_injected);
    // Whatever happened, the emulator goes back to normal before the pipeline's next run.
    world.emulator.clear_faults();
    world.emulator.set_token_lifetime(Duration::from_secs(3600));
    let (first, triggered) = first?;
    let faulted_requests = world
        .emulator
        .requests()
        .iter()
        .filter(|r| r.status == 0 || r.status == 429 || r.status >= 500 || r.status == 409)
        .count();
    let step_hits = step_hits(&world, case);
    let first_result = first
        .outcome
        .variables
        .get("Result")
        .map(|v| v.value.clone());
    runs.push(first);

    // The pipeline's next run: a failed production stage triggers the rollback stage; anything
    // else is retried (the agent's "rerun failed jobs", same build number).
    let next = match (stage, first_result.as_deref()) {
        (StageUnderTest::Production, Some("Succeeded" | "SucceededWithIssues")) => "production",
        (StageUnderTest::Production, _) => "rollback",
        (StageUnderTest::Staging, _) => "staging",
    };
    prober.set_during_run(true);
    // A retry of the same stage is the job's next attempt; the rollback stage is a job of its own.
    let attempt = if next == stage.command() { "2" } else { "1" };
    let run = world
        .run(next)?
        .env("BUILD_BUILDNUMBER", CANDIDATE)
        .env("BUILD_BUILDID", build_id(CANDIDATE))
        .env("SYSTEM_JOBATTEMPT", attempt)
        .input("releaseRecordPath", &record_path(&world, next, "second"));
    let outcome = blocking(|| run.run(HARNESS_TIMEOUT)).map_err(|e| e.to_string());
    prober.set_during_run(false);
    // A few samples after the end: production must stay healthy once nobody touches it.
    let after_the_end = prober.await_samples(3, Duration::from_secs(30)).await;
    let samples = prober.stop().await;
    after_the_end?;
    runs.push(report(next, outcome?, false, &world));
    let secrets = runs
        .first()
        .map(|r| r.outcome.secrets.clone())
        .unwrap_or_default();
    // The leak detector reads the world's folders now, before the world (and its folders) goes away.
    // Declared secrets plus every credential the emulator handed out or holds (tokens issued during
    // the runs, publishing passwords, client secrets).
    let detector = LeakDetector::new(&secrets).with_credentials(&world.emulator.credentials());
    let temp = world.temp();
    let mut leaks: Vec<String> = Vec::new();
    for run in &runs {
        for leak in detector.scan_all(&run.outcome, &[temp.as_path()]) {
            leaks.push(format!("{} run: {leak}", run.command));
        }
    }
    for leak in detector.scan_journal(&world.emulator.snapshot()) {
        leaks.push(format!("journal: {leak}"));
    }
    // Tokens of another issuer (the embedded emulator of `rehearse`) are not in the list: any JWT
    // in what a person can see is one.
    for run in &runs {
        for (stream, text) in [
            ("stdout", &run.outcome.stdout),
            ("stderr", &run.outcome.stderr),
        ] {
            if let Some(at) = find_jwt(text) {
                leaks.push(format!(
                    "{} run: a JWT in {stream} at byte {at}",
                    run.command
                ));
            }
        }
    }
    for file in files_below(&temp) {
        if let Ok(bytes) = std::fs::read(&file)
            && let Some(at) = find_jwt(&String::from_utf8_lossy(&bytes))
        {
            leaks.push(format!("a JWT in {} at byte {at}", file.display()));
        }
    }
    leaks.sort();
    leaks.dedup();
    Ok(CaseReport {
        case,
        runs,
        samples,
        faults_injected,
        triggered,
        faulted_requests,
        step_hits,
        leaks,
    })
}

/// How many requests of the case's step its transport fault struck, told from the emulator's log:
/// the step's route (its body pattern aside, which the log cannot show) and the fault's mark on the
/// answer. The tags route is shared with the lock, but nothing else answers it 409, 429 or 5xx.
fn step_hits(world: &World, case: Case) -> Option<usize> {
    let struck: fn(&slot_release_emulator::RequestRecord) -> bool = match case.fault {
        FaultKind::LatencySpike => |r| r.duration_ms >= 1500,
        FaultKind::ThrottleStorm => |r| r.status == 429,
        FaultKind::ServerErrorBurst => |r| r.status == 500,
        FaultKind::ConnectionReset | FaultKind::RequestTimeout => |r| r.status == 0,
        FaultKind::Conflict => |r| r.status == 409,
        _ => return None,
    };
    let route = route(world, case.step);
    Some(
        world
            .emulator
            .requests()
            .iter()
            .filter(|r| route.matches(&r.host, &r.method, &r.path) && struck(r))
            .count(),
    )
}

fn first_run(
    world: &World,
    case: Case,
    stage: StageUnderTest,
    prober: &Prober,
    faults_injected: &mut usize,
) -> Result<(RunReport, bool), String> {
    let faults = faults_for(world, case);
    if case.fault == FaultKind::TokenExpiry {
        world.emulator.set_token_lifetime(Duration::from_secs(2));
        *faults_injected += 1;
    }
    if case.step == Step::RollbackSwap {
        // The swap back only happens when the watch fails: make production unhealthy after the swap.
        world.emulator.inject(Fault::AppUnhealthyAfterSwap {
            app: "contoso-web".into(),
        });
        *faults_injected += 1;
    }
    // The rollback swap's faults wait for the forward swap, or they would hit it instead.
    let set_at_start = case.timing == Timing::Before && case.step != Step::RollbackSwap;
    if set_at_start && !case.fault.is_signal() {
        for fault in &faults {
            world.emulator.inject(fault.clone());
            *faults_injected += 1;
        }
    }
    let run = world
        .run(stage.command())?
        .env("BUILD_BUILDNUMBER", CANDIDATE)
        .env("BUILD_BUILDID", build_id(CANDIDATE))
        .input(
            "releaseRecordPath",
            &record_path(world, stage.command(), "first"),
        );
    prober.set_during_run(true);
    let result = blocking(|| -> Result<(AgentOutcome, bool, bool), String> {
        let mut task = run.spawn().map_err(|e| e.to_string())?;
        let triggered = wait_for_trigger(world, &mut task, case);
        let mut interrupted = false;
        if triggered {
            match case.fault {
                FaultKind::Kill => {
                    kill_binary(task.pid())?;
                    *faults_injected += 1;
                    interrupted = true;
                }
                FaultKind::Cancel => {
                    *faults_injected += 1;
                    let outcome = task.cancel().map_err(|e| e.to_string())?;
                    return Ok((outcome, true, true));
                }
                _ if case.timing != Timing::Before || case.step == Step::RollbackSwap => {
                    for fault in &faults {
                        world.emulator.inject(fault.clone());
                        *faults_injected += 1;
                    }
                }
                _ => {}
            }
        }
        let outcome = task.wait(HARNESS_TIMEOUT).map_err(|e| e.to_string())?;
        Ok((outcome, triggered, interrupted))
    });
    prober.set_during_run(false);
    let (outcome, triggered, interrupted) = result?;
    Ok((
        report(stage.command(), outcome, interrupted, world),
        triggered,
    ))
}

/// Waits for the moment the case strikes: the first request of the step (before, during; the line
/// saying it began, for a step whose route the prober shares) or the line saying the step finished
/// (after). Returns false when the run ended first.
fn wait_for_trigger(world: &World, task: &mut RunningTask, case: Case) -> bool {
    if case.step == Step::RollbackSwap {
        return wait_for_rollback_swap(world, task, case.timing);
    }
    let deadline = Instant::now() + HARNESS_TIMEOUT;
    let matcher = route(world, case.step);
    let by_output =
        case.timing == Timing::After || (case.timing == Timing::Before && case.fault.is_signal());
    while Instant::now() < deadline {
        if !is_running(task.pid()) {
            return false;
        }
        let hit = if by_output {
            let marker = if case.timing == Timing::Before {
                // Before the step: as soon as the plan is printed and execution starts.
                "] take the release lock"
            } else {
                case.step.done_marker()
            };
            task.stdout_so_far().contains(marker)
        } else if case.timing == Timing::Before {
            // Faults set before the run need no trigger.
            return true;
        } else if let Some(began) = case.step.start_marker() {
            // The run's own word that the step began: by then node forwards signals and the step's
            // requests are in flight.
            task.stdout_so_far().contains(began)
        } else {
            world
                .emulator
                .requests()
                .iter()
                .any(|r| matcher.matches(&r.host, &r.method, &r.path))
        };
        if hit {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

/// The moments of the swap back: before it (the forward swap is done), during it (its first
/// request, the second swap request of the run), after it (the rollback is recorded).
fn wait_for_rollback_swap(world: &World, task: &mut RunningTask, timing: Timing) -> bool {
    let deadline = Instant::now() + HARNESS_TIMEOUT;
    let matcher = route(world, Step::RollbackSwap);
    while Instant::now() < deadline {
        if !is_running(task.pid()) {
            return false;
        }
        let hit = match timing {
            Timing::Before => task
                .stdout_so_far()
                .contains("] swap staging into production"),
            Timing::During => {
                world
                    .emulator
                    .requests()
                    .iter()
                    .filter(|r| matcher.matches(&r.host, &r.method, &r.path))
                    .count()
                    >= 2
            }
            Timing::After => task.stdout_so_far().contains("] write journal: rolledBack"),
        };
        if hit {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// Whether a process still runs (an exited child that was not reaped yet is a zombie, `Z`).
fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, rest) = stat.rsplit_once(')')?;
            rest.split_whitespace().next().map(|state| state != "Z")
        })
        .unwrap_or(false)
}

/// SIGKILL to the `slot-release` process node started (the agent's host dying under it).
fn kill_binary(node_pid: u32) -> Result<(), String> {
    let children = child_pids(node_pid);
    let target = children.first().copied().unwrap_or(node_pid);
    let status = std::process::Command::new("kill")
        .arg("-KILL")
        .arg(target.to_string())
        .status()
        .map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("kill -KILL {target} failed"))
    }
}

/// The processes whose parent is `pid`, from `/proc`.
fn child_pids(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The command name is in parentheses and may contain spaces: fields resume after the last ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let ppid = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

/// Where a JSON Web Token (`eyJ…`, three base64url parts) starts in `text`, if anywhere.
pub fn find_jwt(text: &str) -> Option<usize> {
    let is_b64 = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(pos) = text[from..].find("eyJ") {
        let start = from + pos;
        let mut i = start;
        let mut parts = 0;
        loop {
            let part = i;
            while i < bytes.len() && is_b64(bytes[i]) {
                i += 1;
            }
            if i - part < 8 {
                break;
            }
            parts += 1;
            if parts == 3 || i >= bytes.len() || bytes[i] != b'.' {
                break;
            }
            i += 1;
        }
        if parts == 3 {
            return Some(start);
        }
        from = start + 3;
    }
    None
}

fn files_below(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => stack.push(entry.path()),
                Ok(kind) if kind.is_file() => files.push(entry.path()),
                _ => {}
            }
        }
    }
    files
}

/// The journal tags of the app (held on the production site).
pub fn journal_tags(snapshot: &StateSnapshot) -> BTreeMap<String, String> {
    snapshot
        .slot("contoso-web", "production")
        .map(|s| s.tags.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jwt_is_found_and_look_alikes_are_not() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4eHh4eHgifQ.c2lnbmF0dXJlLXZhbHVl";
        assert_eq!(find_jwt(&format!("token: {jwt} end")), Some(7));
        assert_eq!(find_jwt("eyJhbGciOiJIUzI1NiJ9 and no more parts"), None);
        assert_eq!(find_jwt("eyJ.eyJ.x"), None);
    }
}
