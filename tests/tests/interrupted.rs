//! Interrupted runs of the real binary against the emulator: a run killed or signalled at each step is
//! recognised by the next run of the same release and resumed, another release is refused while the
//! interrupted run's lock is live, and the lock it left is taken over once it is stale.

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};

use slot_release_emulator::Fault;
use slot_release_tests::{World, printed, stdout};

/// The app of the python example.
const APP: &str = "contoso-web";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_staging_run_is_refused_then_resumed() {
    let (world, _) = staging_killed_at_its_hook(&[]).await;
    // The killed run's lock is still live: another release is refused, having written nothing, and told
    // who holds the lock and how to take it over once it is stale.
    let before = world.emulator.snapshot();
    let out = world.cli(&["staging", "--release-id", "r2"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = printed(&out);
    assert!(
        err.contains("holds the release lock of contoso-web: release r1, stage staging"),
        "{err}"
    );
    assert!(err.contains("--take-over-lock"), "{err}");
    assert!(
        err.contains(" UTC"),
        "the time is a date, not a Unix time: {err}"
    );
    assert_eq!(
        world
            .emulator
            .snapshot()
            .slot(APP, "production")
            .unwrap()
            .tags,
        before.slot(APP, "production").unwrap().tags,
        "the refused run wrote nothing, the journal included"
    );
    // The agent's retry of the killed job (its next attempt) takes the earlier attempt's lock over.
    let out = world
        .cli_retry(&["staging", "--release-id", "r1", "--resume"], 2)
        .await;
    assert!(out.status.success(), "{}", printed(&out));
    assert_eq!(world.tag("slotrelease.phase").as_deref(), Some("staged"));
    assert_eq!(
        world.setting("staging", "RELEASE_VERSION").as_deref(),
        Some("r1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_during_the_watch_stops_within_three_seconds_and_records_the_phase() {
    // Well inside the agent's 7.5 s before its SIGTERM; nothing in the binary exits on a timer.
    let world = World::released(|t| t.replace("duration: 3s", "duration: 20s")).await;
    let out = world.cli(&["staging", "--release-id", "r1"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    let prober = world.watch_production();
    let mut child = world
        .cli_command(&["production", "--release-id", "r1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    // Signalled once the watch has probed production: the watch is under way, not about to start.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let watching = tokio::time::timeout(Duration::from_secs(60), async {
        let mut announced = false;
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("{line}");
            announced |= line.starts_with("Watching production for");
            if announced && line.starts_with("[health] probe") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(watching, Ok(true), "production was never watched");
    // The rest of the log, so the binary never blocks on a full pipe.
    let rest = tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("{line}");
        }
    });
    let signalled = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().await.unwrap();
    assert!(
        signalled.elapsed() < Duration::from_secs(3),
        "took {:?}",
        signalled.elapsed()
    );
    assert_ne!(exit.code(), Some(0));
    rest.await.unwrap();
    prober.assert_always_healthy().await;
    assert_eq!(
        world.tag("slotrelease.phase").as_deref(),
        Some("swapped"),
        "the journal says where it stopped"
    );
    assert_eq!(
        world.lock_claims(),
        Vec::<String>::new(),
        "the lock was given back"
    );
    // The next run recognises the unfinished release and resumes the watch.
    let out = world
        .cli(&["production", "--release-id", "r1", "--resume"])
        .await;
    assert!(out.status.success(), "{}", printed(&out));
    assert_eq!(world.tag("slotrelease.phase").as_deref(), Some("released"));
}

/// A released world in which a staging run of r1 (with `extra` arguments) was killed while its hook ran
/// (slowed so the run is caught there): the journal says `deployed` and the killed run's lock is left.
/// Also returns production's content digest from before that run.
async fn staging_killed_at_its_hook(extra: &[&str]) -> (World, String) {
    let world =
        World::released(|t| t.replace("python3 migrate.py up", "sleep 2; python3 migrate.py up"))
            .await;
    let before = world.slot("production").content_digest;
    let mut args = vec!["staging", "--release-id", "r1"];
    args.extend_from_slice(extra);
    interrupt_at(&world, &args, "deployed", "KILL").await;
    (world, before)
}

/// Starts `args`, waits until the journal reaches `phase`, then sends `signal` (`KILL` or `INT`).
/// Returns how long the process took to exit after the signal.
async fn interrupt_at(world: &World, args: &[&str], phase: &str, signal: &str) -> Duration {
    let mut child = world
        .cli_command(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap().to_string();
    let started = Instant::now();
    while world.tag("slotrelease.phase").as_deref() != Some(phase) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never reached phase {phase}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let signalled = Instant::now();
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().await.unwrap();
    assert!(
        !exit.success(),
        "an interrupted run does not report success"
    );
    signalled.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_interrupted_at_each_step_is_recognised_and_resumed() {
    // Slow steps so each phase lasts long enough to be hit: the hook and the watch.
    let slow = |t: String| t.replace("python3 migrate.py up", "sleep 1; python3 migrate.py up");
    let cases = [
        ("staging", "staging", "KILL"),
        ("staging", "deployed", "KILL"),
        ("staging", "deployed", "INT"),
        ("production", "swapping", "KILL"),
        ("production", "swapping", "INT"),
        ("production", "swapped", "KILL"),
    ];
    for (stage, phase, signal) in cases {
        eprintln!("--- {stage} interrupted with SIG{signal} at phase {phase}");
        let world = World::released(slow).await;
        if stage == "production" {
            let out = world.cli(&["staging", "--release-id", "r1"]).await;
            assert!(out.status.success(), "{}", printed(&out));
        }
        let prober = world.watch_production();
        let took = interrupt_at(&world, &[stage, "--release-id", "r1"], phase, signal).await;
        if signal == "INT" {
            assert!(
                took < Duration::from_secs(3),
                "SIGINT at {phase}: exit took {took:?}"
            );
            assert_eq!(
                world.lock_claims(),
                Vec::<String>::new(),
                "SIGINT at {phase}: the lock was given back"
            );
        }
        let recorded = world.tag("slotrelease.phase");
        assert!(
            recorded
                .as_deref()
                .is_some_and(|p| p != "staged" && p != "released"),
            "{stage} at {phase}: the journal shows an unfinished release, got {recorded:?}"
        );
        // The pipeline's retry of the same release (no flag: the task has none) recognises and resumes it.
        let out = world.cli_retry(&[stage, "--release-id", "r1"], 2).await;
        assert!(
            out.status.success(),
            "{stage} at {phase}: resume failed: {}",
            printed(&out)
        );
        assert!(
            stdout(&out).contains("Resuming release r1"),
            "{stage} at {phase}: {}",
            stdout(&out)
        );
        prober.assert_always_healthy().await;
        let expected = if stage == "staging" {
            "staged"
        } else {
            "released"
        };
        assert_eq!(
            world.tag("slotrelease.phase").as_deref(),
            Some(expected),
            "{stage} at {phase}"
        );
        if stage == "production" {
            let (status, body) = world.get("production", "/").await.unwrap();
            assert_eq!(status, 200);
            assert!(
                body.contains("r1"),
                "{stage} at {phase}: production serves r1: {body}"
            );
            assert_eq!(
                world.tag("slotrelease.lastKnownGood").as_deref(),
                Some("r1")
            );
        } else {
            assert_eq!(
                world.setting("staging", "RELEASE_VERSION").as_deref(),
                Some("r1")
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_staging_can_be_closed_by_the_next_release_with_rollback_unfinished() {
    let (world, before) = staging_killed_at_its_hook(&["--lock-ttl-seconds", "3"]).await;
    // The killed run's lock is live: refused, with the token that takes it over once it is stale.
    let out = world
        .cli(&["staging", "--release-id", "r2", "--rollback-unfinished"])
        .await;
    assert_eq!(out.status.code(), Some(1));
    let err = printed(&out);
    let token = err
        .split("--take-over-lock ")
        .nth(1)
        .and_then(|t| t.split('`').next())
        .unwrap_or_else(|| panic!("no token in {err}"))
        .to_owned();
    let take_over = [
        "staging",
        "--release-id",
        "r2",
        "--rollback-unfinished",
        "--take-over-lock",
        &token,
    ];
    // A live lock is never taken over, even when asked.
    let out = world.cli(&take_over).await;
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    // Once stale (the killed run had a 3 s lock), it is taken over as asked.
    world.lock_gone_stale(Duration::from_secs(30)).await;
    let out = world.cli(&take_over).await;
    assert!(out.status.success(), "{}", printed(&out));
    assert_eq!(world.lock_claims(), Vec::<String>::new());
    assert_eq!(world.tag("slotrelease.phase").as_deref(), Some("staged"));
    assert_eq!(world.tag("slotrelease.release").as_deref(), Some("r2"));
    assert_eq!(
        world.tag("slotrelease.lastKnownGood").as_deref(),
        Some("previous")
    );
    assert_eq!(
        world.slot("production").content_digest,
        before,
        "production was never touched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_staging_run_is_resumed_by_a_retry_of_the_same_release_only() {
    let (world, _) = staging_killed_at_its_hook(&[]).await;
    // Another release is refused: the killed run's lock is live.
    let out = world.cli(&["staging", "--release-id", "r2"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        printed(&out).contains("holds the release lock"),
        "{}",
        printed(&out)
    );
    // The pipeline's retry (the job's next attempt, no flag: the task has no input for one) continues it.
    let out = world.cli_retry(&["staging", "--release-id", "r1"], 2).await;
    assert!(out.status.success(), "{}", printed(&out));
    assert_eq!(world.tag("slotrelease.phase").as_deref(), Some("staged"));
    assert_eq!(world.lock_claims(), Vec::<String>::new());
    assert_eq!(
        world.setting("staging", "RELEASE_VERSION").as_deref(),
        Some("r1")
    );
}

/// The live state is read slot by slot, so a swap left running by a killed run can end between the read
/// of production and the read of the staged slot: both then show the previous release. The resume must
/// see the swap whole (it waits for the operation, then reads again) and finish the release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_ending_while_the_resume_reads_the_slots_is_seen_whole() {
    // A slow start keeps the swap's warm-up (and so the operation) running for seconds.
    let world = World::released(|t| {
        t.replace(
            "startupCommand: python3 app.py",
            "startupCommand: sleep 3; python3 app.py",
        )
    })
    .await;
    let out = world.cli(&["staging", "--release-id", "r1"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    world.emulator.clear_requests();

    let mut child = world
        .cli_command(&["production", "--release-id", "r1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let swap_accepted = || {
        world
            .emulator
            .requests()
            .iter()
            .any(|r| r.method == "POST" && r.path.ends_with("/slotsswap") && r.status == 202)
    };
    while !swap_accepted() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the swap never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    assert_eq!(world.tag("slotrelease.phase").as_deref(), Some("swapping"));

    // The resume reads production at once (the swap still running), and the staged slot only after the
    // swap has ended.
    world.emulator.inject(Fault::Latency {
        route: slot_release_emulator::RouteMatch {
            host: Some("contoso-web-staging.scm.*".into()),
            method: Some("GET".into()),
            path: Some("/api/deployments".into()),
            body_contains: None,
        },
        millis: 8_000,
        count: Some(1),
    });
    let out = world
        .cli_retry(&["production", "--release-id", "r1"], 2)
        .await;
    assert!(out.status.success(), "resume failed: {}", printed(&out));
    assert_eq!(world.tag("slotrelease.phase").as_deref(), Some("released"));
    let (status, body) = world.get("production", "/").await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("r1"), "production serves r1: {body}");
}

/// A production job killed during its watch leaves its lock behind; the pipeline's rollback stage is a job
/// of the same run, so it waits for that lock to go stale (not for a person), takes it over and restores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rollback_stage_after_a_killed_production_job_waits_for_its_lock_to_go_stale() {
    let world = World::released(|t| t).await;
    let out = world.cli(&["staging", "--release-id", "r1"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    interrupt_at(
        &world,
        &[
            "production",
            "--release-id",
            "r1",
            "--lock-ttl-seconds",
            "3",
        ],
        "swapped",
        "KILL",
    )
    .await;
    assert_eq!(
        world.lock_claims().len(),
        1,
        "the killed job's claim is left"
    );
    let out = world.cli(&["rollback", "--release-id", "r1"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    assert!(
        stdout(&out).contains("waiting for it to end or go stale"),
        "{}",
        stdout(&out)
    );
    assert_eq!(world.lock_claims(), Vec::<String>::new());
    assert_eq!(
        world.tag("slotrelease.phase").as_deref(),
        Some("rolledBack")
    );
    let (status, body) = world.get("production", "/").await.unwrap();
    assert_eq!(status, 200);
    assert!(
        body.contains("previous"),
        "production serves the previous release: {body}"
    );
}
