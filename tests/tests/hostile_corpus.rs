//! The hostile-input corpus: secret values made to slip past a masker (`%`, `;`, `]`, `##vso[`, `##[`,
//! line breaks and a lone CR, unicode, one to three characters, a substring of a setting name, 64 KiB),
//! printed by hooks in every encoded form together with logging commands and formatting lines, run
//! through staging and production, a failing staging (its undo hooks run), a cancelled staging and its
//! resume, a refusal from Azure quoting the values, a failed watch and the rollback stage.
//!
//! After each run a scanner searches stdout, stderr, every file the task wrote and everything it wrote
//! to the emulator (tags, deployment records, site config, settings that are not meant to hold the
//! secret) for any clear or encoded secret, and the output for any command the hostile text injected.
#![cfg(unix)]

use std::time::Duration;

use slot_release_emulator::{Fault, RouteMatch};
use slot_release_tests::{AgentOutcome, AgentResult, LeakDetector, World};

const TIMEOUT: Duration = Duration::from_secs(300);

/// `(setting, vault secret, value)`: each value is delivered as an app setting and printed by hooks.
const CORPUS: [(&str, &str, &str); 9] = [
    ("CORPUS_PERCENT", "corpus-percent", "pc%25%AZP25%0A-7781"),
    ("CORPUS_SEMI", "corpus-semi", "sb;]x;]-5532"),
    (
        "CORPUS_COMMAND",
        "corpus-command",
        "##vso[task.setvariable variable=PWNED]gotcha5521",
    ),
    ("CORPUS_FORMAT", "corpus-format", "##[error]PWNED-7716"),
    (
        "CORPUS_LINES",
        "corpus-lines",
        "ml-first-8891\r\nml-second-8892\rml-third-8893",
    ),
    ("CORPUS_UNICODE", "corpus-unicode", "ünï çødé 🔑 4410"),
    ("CORPUS_ONE", "corpus-one", "Q"),
    ("CORPUS_TWO", "corpus-two", "Zy"),
    ("CORPUS_THREE", "corpus-three", "%;]"),
];

/// A value that is a substring of the DATABASE_PATH setting name (and of DATABASE__PASSWORD): the plan
/// prints setting names, so it is only masked there if the vault's values are registered before the
/// plan is printed.
const NAME_SUBSTRING: (&str, &str, &str) = ("CORPUS_NAME", "corpus-name", "DATABASE_PA");

/// Prints every environment value whose name starts with `CORPUS_` or `SECRET_CORPUS` in every form
/// a masker must catch, and tries to inject logging commands on stdout and stderr. `fail` exits 1.
const HOSTILE_PY: &str = r###"import base64, json, os, re, sys, urllib.parse
names = sorted(n for n in os.environ if n.startswith("CORPUS_") or n.startswith("SECRET_CORPUS"))
for name in names:
    v = os.environ[name]
    b = v.encode()
    print("raw", name, v)
    for prefix in (b"", b"u", b"u:"):
        print("base64", base64.b64encode(prefix + b + b"!").decode())
        print("base64url", base64.urlsafe_b64encode(prefix + b + b"!").decode())
    q = urllib.parse.quote(v, safe="")
    print("percent", q)
    print("percent-lower", re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), q))
    print("form", urllib.parse.quote_plus(v, safe=""))
    print("json", json.dumps({"v": v}))
    print("json-raw", json.dumps({"v": v}, ensure_ascii=False))
    sys.stderr.write("stderr " + v + "\n")
print("##vso[task.setvariable variable=PWNED]1")
print("##vso[task.complete result=Succeeded]PWNED")
print("##[error]PWNED formatting")
print("text\r##vso[task.setvariable variable=PWNED2]1")
sys.stderr.write("##vso[task.setvariable variable=PWNED3]1\n##[warning]PWNED\n")
sys.stdout.flush()
if len(sys.argv) > 1 and sys.argv[1] == "fail":
    sys.exit(1)
"###;

/// A 64 KiB single-line secret variable of the agent, printed by the agent hook.
fn big_secret() -> String {
    let unit = "b1g-%;]é~";
    let mut value = String::from("BIG64K-");
    while value.len() < 64 * 1024 {
        value.push_str(unit);
    }
    value
}

/// Runs blocking harness work off the runtime threads the emulator serves on.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(e) => panic!("harness thread failed: {e}"),
    }
}

/// A world whose vault holds the corpus, whose settings deliver it (by Key Vault reference, and by
/// value for some), and whose staging hooks print it. With `fail`, a last hook fails after printing.
async fn corpus_world(fail: bool) -> World {
    let last = if fail { FAILING_HOOK } else { "" };
    corpus_world_of(&CORPUS, last).await
}

/// A last staging hook that prints the corpus and fails.
const FAILING_HOOK: &str = "      - name: hostile-fail\n        run: python3 hostile.py fail\n        where: slot\n        timeout: 1m\n";

/// A last staging hook that keeps the stage running long enough to be cancelled in the middle.
const SLOW_HOOK: &str = "      - name: slow\n        run: sleep 20\n        where: agent\n        timeout: 1m\n        undo: \"true\"\n";

/// The corpus world with `last_hooks` (YAML list items) after the hostile hooks of staging.
async fn corpus_world_of(
    corpus: &[(&'static str, &'static str, &'static str)],
    last_hooks: &str,
) -> World {
    let extra: Vec<(&str, &str)> = corpus
        .iter()
        .map(|(_, name, value)| (*name, *value))
        .collect();
    let world = World::start_with_vault(&extra)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(world.sources.join("hostile.py"), HOSTILE_PY).unwrap_or_else(|e| panic!("{e}"));
    // A file name that is a command, for every place a package's file names are printed.
    std::fs::write(
        world
            .sources
            .join("##vso[task.setvariable variable=PWNED4]file.txt"),
        "x",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let config = world.config();
    let mut text = std::fs::read_to_string(&config).unwrap_or_else(|e| panic!("{e}"));
    let mut map = String::new();
    for (i, (setting, secret, _)) in corpus.iter().enumerate() {
        if i % 2 == 0 {
            map.push_str(&format!(
                "        {setting}:\n          secret: {secret}\n          delivery: value\n"
            ));
        } else {
            map.push_str(&format!("        {setting}: {secret}\n"));
        }
    }
    text = text.replace(
        "        API_KEY: api-key\n",
        &format!("        API_KEY: api-key\n{map}"),
    );
    let mut hooks = String::from(
        "      - name: hostile\n        run: python3 hostile.py\n        where: slot\n        timeout: 1m\n        undo: python3 hostile.py undo\n\
         \x20     - name: hostile-agent\n        run: python3 hostile.py\n        where: agent\n        timeout: 1m\n        undo: python3 hostile.py undo\n",
    );
    hooks.push_str(last_hooks);
    text = text.replace(
        "        undo: python3 migrate.py down\n",
        &format!("        undo: python3 migrate.py down\n{hooks}"),
    );
    std::fs::write(&config, text).unwrap_or_else(|e| panic!("{e}"));
    world
}

async fn run(world: &World, command: &str) -> AgentOutcome {
    run_as(world, command, "20261122-1").await
}

/// A run of `command` as build `build` (a release id).
async fn run_as(world: &World, command: &str, build: &str) -> AgentOutcome {
    let record = world.temp().join(format!("record-{command}-{build}.json"));
    let run = world
        .run(command)
        .unwrap_or_else(|e| panic!("{e}"))
        .env("BUILD_BUILDNUMBER", build)
        // Each build number is its own pipeline run, as on a real agent.
        .env("BUILD_BUILDID", &build_id(build))
        .input("releaseRecordPath", &record.display().to_string())
        .secret_variable("CORPUS_BIG", &big_secret());
    blocking(move || run.run(TIMEOUT))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A build id per build number (`20261122-2` is run 4000 + 2 of the pipeline).
fn build_id(build: &str) -> String {
    let n: u64 = build
        .rsplit(['-', '.'])
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (4000 + n).to_string()
}

/// Settings that deliver a secret by value: App Service holds the value there by design.
fn value_settings() -> Vec<&'static str> {
    // NAME_SUBSTRING is the first (so by-value) setting of its own world.
    let mut names = vec!["DATABASE__PASSWORD", NAME_SUBSTRING.0];
    names.extend(
        CORPUS
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, (setting, _, _))| *setting),
    );
    names
}

/// No secret anywhere a person can read it, and no command injected.
fn assert_clean(world: &World, outcome: &AgentOutcome) {
    let detector = world.leak_detector(outcome);
    let mut problems: Vec<String> = detector
        .scan_all(outcome, &[&world.temp()])
        .iter()
        .map(ToString::to_string)
        .collect();
    problems.extend(
        detector
            .scan_state(&world.emulator.snapshot(), &value_settings())
            .iter()
            .map(ToString::to_string),
    );
    problems.extend(
        LeakDetector::injected_commands(outcome)
            .into_iter()
            .map(|line| format!("injected: {line}")),
    );
    for name in ["PWNED", "PWNED2", "PWNED3", "PWNED4"] {
        if outcome.variables.contains_key(name) {
            problems.push(format!("the variable {name} was set"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}\n{}",
        problems.len(),
        problems.join("\n"),
        outcome.transcript()
    );
}

/// The hooks really printed the corpus: what the scanner found nothing of was there to find.
fn assert_printed(outcome: &AgentOutcome, values: usize) {
    let printed = outcome.stdout.matches("raw CORPUS_").count();
    assert!(
        printed >= values,
        "the hostile hook's output is missing ({printed} values):\n{}",
        outcome.transcript()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_through_staging_and_production_leaks_nothing_and_injects_nothing() {
    let world = corpus_world(false).await;
    let outcome = run(&world, "release").await;
    assert_eq!(
        outcome.result,
        AgentResult::Succeeded,
        "{}",
        outcome.transcript()
    );
    assert_printed(&outcome, CORPUS.len());
    assert_clean(&world, &outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_through_a_failing_staging_and_its_undo_hooks_leaks_nothing() {
    let world = corpus_world(true).await;
    let outcome = run(&world, "staging").await;
    assert_eq!(
        outcome.result,
        AgentResult::Failed,
        "{}",
        outcome.transcript()
    );
    assert_printed(&outcome, CORPUS.len());
    assert_clean(&world, &outcome);
}

/// Azure's error messages are text from outside: a settings write refused with a message that quotes
/// the values (as a validation error does) and tries to inject commands is masked and neutralised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_azure_error_quoting_the_secrets_leaks_nothing_and_injects_nothing() {
    let world = corpus_world(false).await;
    let quoted: Vec<&str> = CORPUS.iter().map(|(_, _, value)| *value).collect();
    world.emulator.inject(Fault::Refuse {
        route: RouteMatch {
            method: Some("PUT".into()),
            path: Some("*/slots/staging/config/appsettings".into()),
            body_contains: None,
            ..RouteMatch::default()
        },
        status: 400,
        code: "BadRequest ##vso[task.setvariable variable=PWNED]1".into(),
        message: format!(
            "invalid values: {}\n##vso[task.complete result=Succeeded]PWNED\r##[error]PWNED",
            quoted.join(" | ")
        ),
        scope: None,
    });
    let outcome = run(&world, "staging").await;
    assert_eq!(
        outcome.result,
        AgentResult::Failed,
        "{}",
        outcome.transcript()
    );
    assert!(
        outcome.stdout.contains("invalid values"),
        "the refusal is reported: {}",
        outcome.transcript()
    );
    assert_clean(&world, &outcome);
}

/// A staging run cancelled in the middle (after the hostile hooks printed), then retried: the retry
/// resumes the unfinished release and must mask what it prints, undo hooks included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_through_a_cancelled_and_resumed_staging_leaks_nothing() {
    let world = corpus_world_of(&CORPUS, SLOW_HOOK).await;
    let first = world
        .run("staging")
        .unwrap_or_else(|e| panic!("{e}"))
        // The same pipeline run as the retry below (`run` is build 20261122-1).
        .env("BUILD_BUILDID", &build_id("20261122-1"))
        .secret_variable("CORPUS_BIG", &big_secret());
    let cancelled = blocking(move || -> std::io::Result<AgentOutcome> {
        let mut running = first.spawn()?;
        // The hostile hooks have printed (the slow hook runs after them): cancel now.
        running.wait_for_output("raw CORPUS_", TIMEOUT);
        running.cancel()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        cancelled.result,
        AgentResult::Canceled,
        "{}",
        cancelled.transcript()
    );
    assert_printed(&cancelled, CORPUS.len());
    assert_clean(&world, &cancelled);
    let resumed = run(&world, "staging").await;
    assert_eq!(
        resumed.result,
        AgentResult::Succeeded,
        "{}",
        resumed.transcript()
    );
    assert_clean(&world, &resumed);
}

/// A secret that is part of a setting name is masked in the plan too, which the run prints before
/// anything else: the vault's values must be registered before the plan is printed (the engine prints
/// the plan in `stages.rs` before its `PullSecrets` step today; this test covers that order).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_inside_a_setting_name_is_masked_in_the_plan_too() {
    let world = corpus_world_of(&[NAME_SUBSTRING], "").await;
    let outcome = run(&world, "staging").await;
    assert_eq!(
        outcome.result,
        AgentResult::Succeeded,
        "{}",
        outcome.transcript()
    );
    assert_printed(&outcome, 1);
    assert_clean(&world, &outcome);
}

/// The rollback stage runs the undo hooks, which print the vault's values: it must pull and register
/// them like the other stages do (the lead's part of issue 12; this test covers it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_through_the_rollback_stage_leaks_nothing() {
    let world = corpus_world(false).await;
    let first = run_as(&world, "release", "20261122-1").await;
    assert_eq!(
        first.result,
        AgentResult::Succeeded,
        "{}",
        first.transcript()
    );
    // A second release whose watch fails, left for a manual rollback: the rollback swaps back to the
    // first and runs the undo hooks of the release taken out. The failed watch is a failure path too.
    let config = world.config();
    let text = std::fs::read_to_string(&config).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        &config,
        text.replace("rollback: automatic", "rollback: manual"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    world.emulator.inject(Fault::AppUnhealthyAfterSwap {
        app: "contoso-web".into(),
    });
    let released = run_as(&world, "release", "20261122-2").await;
    assert_eq!(
        released.result,
        AgentResult::Failed,
        "{}",
        released.transcript()
    );
    assert_clean(&world, &released);
    world.emulator.clear_faults();
    let outcome = run_as(&world, "rollback", "20261122-2").await;
    assert_printed(&outcome, CORPUS.len());
    assert_clean(&world, &outcome);
}

/// The scanner has teeth on a real run: a value the output does contain, declared as a secret, is
/// found, and so is an injected command in a copy of the output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_corpus_scanner_finds_what_it_is_shown() {
    let world = corpus_world(false).await;
    let mut outcome = run(&world, "validate").await;
    let config = world.config().display().to_string();
    assert!(
        !LeakDetector::new([config.as_str()])
            .scan_output(&outcome)
            .is_empty(),
        "the scanner missed a value in stdout"
    );
    assert!(LeakDetector::injected_commands(&outcome).is_empty());
    outcome
        .stderr
        .push_str("##vso[task.setvariable variable=PWNED]1\n");
    outcome.stdout.push_str("##[error]PWNED\n");
    assert_eq!(LeakDetector::injected_commands(&outcome).len(), 2);
}
