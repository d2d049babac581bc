//! A release fanned out over three apps in two waves (`--targets`), with the real binary against the
//! emulator and real app processes: wave 0 is released and watched before wave 1 starts, a target of
//! wave 1 whose new release turns unhealthy in production is rolled back, the other targets are
//! reported as released, and the table shows every target. A second test throttles ARM with 429s and
//! Retry-After while several targets write at once.

use slot_release_emulator::{Fault, RouteMatch, Scope};
use slot_release_tests::{World, printed};

/// Three targets: the example's app in wave 0, two more apps in wave 1.
const TARGETS: &str = "
targets:
  - name: westeurope
    app: contoso-web
    resourceGroup: contoso-rg
    region: westeurope
    wave: 0
  - name: eastus
    app: contoso-web-us
    resourceGroup: contoso-rg
    region: eastus
    wave: 1
  - name: japaneast
    app: contoso-web-jp
    resourceGroup: contoso-rg
    region: japaneast
    wave: 1
fanOut:
  maxParallel: 2
";

/// The example's world with the two other apps seeded as copies of its app, each as its previous
/// release left it (production serving it, the journal naming it).
async fn three_apps() -> World {
    World::builder()
        .previous_release()
        .quick()
        .edit(|t| format!("{t}{TARGETS}"))
        .app_copies(&["contoso-web-us", "contoso-web-jp"])
        .start()
        .await
        .unwrap()
}

fn digest(world: &World, app: &str) -> String {
    world
        .emulator
        .snapshot()
        .slot(app, "production")
        .map(|s| s.content_digest.clone())
        .unwrap_or_else(|| panic!("{app} has no production slot"))
}

fn outcomes(record: &serde_json::Value) -> Vec<(String, String)> {
    record["targets"]
        .as_array()
        .expect("a fan-out record lists its targets")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap_or_default().to_owned(),
                t["outcome"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_target_of_wave_one_is_rolled_back_and_every_target_is_reported() {
    let world = three_apps().await;
    let before: Vec<String> = ["contoso-web", "contoso-web-us", "contoso-web-jp"]
        .iter()
        .map(|a| digest(&world, a))
        .collect();
    // The new release of the Japan app answers 500 in production once swapped in: its watch fails.
    world.emulator.inject(Fault::AppUnhealthyAfterSwap {
        app: "contoso-web-jp".into(),
    });
    let out = world.cli_recorded(&["release", "--release-id", "r1"]).await;
    let text = printed(&out);
    assert!(
        !out.status.success(),
        "a failed target fails the run: {text}"
    );
    assert_eq!(
        outcomes(&world.record()),
        [
            ("westeurope".to_owned(), "released".to_owned()),
            ("eastus".to_owned(), "released".to_owned()),
            ("japaneast".to_owned(), "rolledBack".to_owned()),
        ],
        "{text}"
    );
    for row in [
        "| westeurope | contoso-web | 0 | released |",
        "| eastus | contoso-web-us | 1 | released |",
        "| japaneast | contoso-web-jp | 1 | failed, rolled back |",
    ] {
        assert!(text.contains(row), "the summary misses `{row}`: {text}");
    }
    assert!(
        text.contains("Fan-out release: 2 of 3 target(s) released"),
        "{text}"
    );
    // Wave 0 ended before wave 1 began: its lines are written whole, before any of wave 1's.
    let wave0 = text.find("Target westeurope: release").expect("wave 0 ran");
    let wave1 = ["Target eastus: release", "Target japaneast: release"]
        .map(|t| text.find(t).unwrap_or_else(|| panic!("{t} ran: {text}")));
    assert!(wave1.iter().all(|w| *w > wave0), "{text}");
    // Production of the released targets serves the new release; the rolled-back one the previous.
    let after: Vec<String> = ["contoso-web", "contoso-web-us", "contoso-web-jp"]
        .iter()
        .map(|a| digest(&world, a))
        .collect();
    assert_ne!(after[0], before[0], "westeurope was released");
    assert_ne!(after[1], before[1], "eastus was released");
    assert_eq!(after[2], before[2], "japaneast serves its previous release");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_writes_are_retried_while_targets_run_at_once() {
    let world = three_apps().await;
    // ARM's write limit: the next writes are refused with 429 and Retry-After: 1.
    world.emulator.inject(Fault::Status {
        route: RouteMatch {
            host: Some("management.*".into()),
            method: Some("PUT".into()),
            ..RouteMatch::default()
        },
        status: 429,
        retry_after_secs: Some(1),
        scope: Some(Scope {
            count: Some(4),
            share: None,
        }),
    });
    let out = world
        .cli_recorded(&[
            "release",
            "--release-id",
            "r1",
            "--targets",
            "eastus,japaneast",
        ])
        .await;
    let text = printed(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        outcomes(&world.record()),
        [
            ("eastus".to_owned(), "released".to_owned()),
            ("japaneast".to_owned(), "released".to_owned()),
        ]
    );
    let throttled = world
        .emulator
        .requests()
        .iter()
        .filter(|r| r.status == 429)
        .count();
    assert_eq!(throttled, 4, "every injected 429 was answered and retried");
    // Named targets only: the example's own app was left alone.
    assert!(
        text.contains("Releasing 2 target(s) in 1 wave(s), at most 2 at once"),
        "{text}"
    );
}

/// `plan` under the agent sets `Matrix` for `strategy.matrix`: every target, or one wave's with
/// `--wave`, one entry per target keyed by its name, every value a string. The logging command is
/// pinned whole (escaping included); only the agent's temp folder varies between runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_sets_the_matrix_output_for_strategy_matrix() {
    let world = World::builder()
        .quick()
        .edit(|t| format!("{t}{TARGETS}"))
        .start()
        .await
        .unwrap();
    let temp = world.dir.path().join("agent-temp");
    std::fs::create_dir_all(&temp).unwrap();
    let env = [
        ("TF_BUILD", "True".to_owned()),
        ("AGENT_TEMPDIRECTORY", temp.display().to_string()),
    ];
    let mut lines = Vec::new();
    for args in [
        &["plan", "--stage", "staging"][..],
        &["plan", "--stage", "staging", "--wave", "1"][..],
    ] {
        let out = world.cli_with(args, &env).await;
        let text = slot_release_tests::stdout(&out);
        let matrix = text
            .lines()
            .find(|l| l.starts_with("##vso[task.setvariable variable=Matrix;"))
            .unwrap_or_else(|| panic!("no Matrix output: {text}"));
        let value = matrix.split_once(";]").map(|(_, v)| v).unwrap_or_default();
        let parsed: serde_json::Value = serde_json::from_str(value).unwrap();
        assert!(
            parsed
                .as_object()
                .unwrap()
                .values()
                .flat_map(|entry| entry.as_object().unwrap().values())
                .all(serde_json::Value::is_string),
            "matrix variables are strings: {parsed}"
        );
        lines.push(format!("$ slot-release {}", args.join(" ")));
        lines.push(matrix.replace(&temp.display().to_string(), "<agent-temp>"));
        lines.push(serde_json::to_string_pretty(&parsed).unwrap());
    }
    // A wave no target is in is refused before anything is read (`;` escaped in the agent's issue).
    let out = world
        .cli_with(&["plan", "--stage", "staging", "--wave", "2"], &env)
        .await;
    assert!(
        printed(&out).contains("no target is in wave 2%3B the config's targets use waves 0 to 1"),
        "{}",
        printed(&out)
    );
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"/tmp/\.tmp[A-Za-z0-9]+", "<tmp>");
    settings.bind(|| insta::assert_snapshot!(lines.join("\n")));
}

/// `rehearse` follows the release with a fan-out over three apps in two waves on its own emulator; with
/// `--fail-at watch` a target of wave 1 is rolled back and the others are released, and the run still
/// ends as the rehearsal meant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rehearsal_fans_out_over_two_waves_and_rolls_back_a_failed_target() {
    let world = World::start().await.unwrap();
    let out = tokio::process::Command::new(&world.binary)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .env("TMPDIR", world.dir.path())
        .args(["rehearse", "--quick", "--fail-at", "watch", "--config"])
        .arg(world.config())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let text = printed(&out);
    assert!(out.status.success(), "{text}");
    for row in [
        "| ring0 | contoso-web | 0 | released |",
        "| ring1a | contoso-web-r1a | 1 | released |",
        "| ring1b | contoso-web-r1b | 1 | failed, rolled back |",
    ] {
        assert!(text.contains(row), "the rehearsal misses `{row}`: {text}");
    }
    assert!(
        text.contains(
            "Fan-out: wave 0 released and watched before wave 1; ring1b turned unhealthy"
        ),
        "{text}"
    );
}
