//! `slot-release app start|stop|restart` and `slot-release slot delete` against the emulator: the slot's
//! state as App Service would show it (a stopped slot answers 403 "This web app is stopped"), the release
//! lock shared with releases, the journal entry each command leaves, and the slots a delete must spare.

use std::time::{Duration, Instant};

use slot_release_emulator::RunState;
use slot_release_engine::journal::{CommandEntry, JournalTags};
use slot_release_engine::state::SlotName;
use slot_release_tests::{World, printed};
use tokio_util::sync::CancellationToken;

fn last_command(world: &World) -> CommandEntry {
    let tags = world.slot("production").tags;
    JournalTags::from_tags(&tags)
        .expect("the journal reads")
        .command
        .map(|c| *c)
        .expect("the journal records the last app command")
}

fn process_port(world: &World, slot: &str) -> u16 {
    match world.slot(slot).running {
        RunState::Running { port } => port,
        other => panic!("slot {slot} does not run: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_makes_the_slot_answer_the_stopped_page_and_start_brings_it_back() {
    let world = World::released(|t| t).await;
    assert_eq!(
        world.get("production", "/health").await.map(|a| a.0),
        Some(200)
    );

    let out = world.cli(&["app", "stop"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    let snapshot = world.slot("production");
    assert_eq!(snapshot.state, "Stopped");
    assert_eq!(snapshot.running, RunState::Stopped, "its process ended");
    let (status, body) = world.get("production", "/health").await.expect("an answer");
    assert_eq!(status, 403);
    assert!(body.contains("This web app is stopped"), "{body}");
    let entry = last_command(&world);
    assert_eq!(
        (
            entry.command.as_str(),
            entry.slot.as_str(),
            entry.outcome.as_str()
        ),
        ("stop", "production", "succeeded")
    );
    assert!(world.lock_claims().is_empty(), "the lock was given back");

    let out = world.cli(&["app", "start", "--slot", "production"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    assert_eq!(world.slot("production").state, "Running");
    // `start` returned only once the slot answered its health path.
    let (status, body) = world.get("production", "/health").await.expect("an answer");
    assert_eq!((status, body.contains("ok")), (200, true), "{body}");
    assert_eq!(last_command(&world).command, "start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_is_refused_while_a_release_holds_the_lock_and_restarts_the_process_after() {
    // Not quick: the production watch (10 s) keeps the release's lock long enough to meet it.
    let world = World::builder()
        .previous_release()
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let release = world
        .cli_command(&["release", "--release-id", "r-lock"])
        .spawn()
        .expect("the release starts");
    let started = Instant::now();
    while world.lock_claims().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the release never took the lock"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let requests = world.emulator.requests().len();
    let out = world.cli(&["app", "restart", "--slot", "staging"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    let err = printed(&out);
    assert!(
        err.contains("another run holds the release lock") && err.contains("release r-lock"),
        "{err}"
    );
    let restarts = world.emulator.requests()[requests..]
        .iter()
        .filter(|r| r.path.ends_with("/restart"))
        .count();
    assert_eq!(restarts, 0, "a refused command changes nothing");

    let released = release.wait_with_output().await.expect("the release ends");
    assert!(released.status.success(), "{}", printed(&released));
    let journal = JournalTags::from_tags(&world.slot("production").tags).unwrap();
    assert_eq!(journal.command, None, "the refused command left no entry");

    let before = process_port(&world, "staging");
    let requests = world.emulator.requests().len();
    let out = world.cli(&["app", "restart", "--slot", "staging"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    let restarts: Vec<_> = world.emulator.requests()[requests..]
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/slots/staging/restart"))
        .map(|r| r.status)
        .collect();
    assert_eq!(restarts, vec![200]);
    assert_ne!(
        process_port(&world, "staging"),
        before,
        "a new process serves the slot"
    );
    assert_eq!(
        world.get("staging", "/health").await.map(|a| a.0),
        Some(200)
    );
    let entry = last_command(&world);
    assert_eq!(
        (entry.command.as_str(), entry.slot.as_str()),
        ("restart", "staging")
    );
    assert!(world.lock_claims().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slot_delete_spares_production_the_release_in_flight_and_the_rollback_slot() {
    let world = World::released(|t| t).await;
    let none = CancellationToken::new();

    let out = world.cli(&["slot", "delete", "--slot", "production"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        printed(&out).contains("production is the site itself"),
        "{}",
        printed(&out)
    );

    // A staged release waits in the staging slot for production.
    let out = world.cli(&["staging", "--release-id", "r2"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    let out = world.cli(&["slot", "delete", "--slot", "staging"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = printed(&out);
    assert!(
        err.contains("holds release r2, which is in flight"),
        "{err}"
    );
    assert!(err.contains("Nothing was changed"), "{err}");

    // Released: the staging slot now holds the release a rollback swaps back.
    let out = world.cli(&["production", "--release-id", "r2"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    let out = world.cli(&["slot", "delete", "--slot", "staging"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        printed(&out).contains("the one a rollback would swap back"),
        "{}",
        printed(&out)
    );
    assert!(
        world
            .emulator
            .snapshot()
            .slot(&world.app, "staging")
            .is_some()
    );

    // A slot no release needs goes; production goes on serving.
    let preview = SlotName::new("preview").unwrap();
    world.port.create_slot(&preview, &none).await.unwrap();
    let requests = world.emulator.requests().len();
    let out = world.cli(&["slot", "delete", "--slot", "preview"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    assert!(
        world
            .emulator
            .snapshot()
            .slot(&world.app, "preview")
            .is_none()
    );
    let deletes: Vec<_> = world.emulator.requests()[requests..]
        .iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert!(deletes[0].ends_with("/slots/preview"), "{deletes:?}");
    assert_eq!(
        world.get("production", "/health").await.map(|a| a.0),
        Some(200)
    );
    let entry = last_command(&world);
    assert_eq!(
        (
            entry.command.as_str(),
            entry.slot.as_str(),
            entry.outcome.as_str()
        ),
        ("delete", "preview", "succeeded")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_runs_app_commands_from_its_command_and_slot_inputs() {
    let world = World::released(|t| t).await;
    // The released world has no staging slot until a staging stage creates it.
    let staging = SlotName::new("staging").unwrap();
    world
        .port
        .create_slot(&staging, &CancellationToken::new())
        .await
        .unwrap();
    let run = world
        .run("appStop")
        .unwrap_or_else(|e| panic!("{e}"))
        .input("slot", "staging");
    let outcome = tokio::task::spawn_blocking(move || run.run(Duration::from_secs(120)))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        outcome.result,
        slot_release_tests::AgentResult::Succeeded,
        "{}",
        outcome.transcript()
    );
    assert_eq!(world.slot("staging").state, "Stopped");
    assert_eq!(world.slot("production").state, "Running");
    let entry = last_command(&world);
    assert_eq!(
        (entry.command.as_str(), entry.slot.as_str()),
        ("stop", "staging")
    );
    // The journal says who: the pipeline run as the agent describes it.
    assert!(entry.who.contains("run "), "{entry:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_is_refused_while_an_app_command_holds_the_lock() {
    let world = World::released(|t| t).await;
    // A slow restart keeps the command inside its lock while the release arrives.
    world
        .emulator
        .inject(slot_release_emulator::Fault::Latency {
            route: slot_release_emulator::RouteMatch {
                host: Some("management.emulator.test".into()),
                method: Some("POST".into()),
                path: Some("*/restart".into()),
                body_contains: None,
            },
            millis: 8_000,
            count: Some(1),
        });
    let restart = world
        .cli_command(&["app", "restart"])
        .spawn()
        .expect("the restart starts");
    let started = Instant::now();
    while world.lock_claims().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the command never took the lock"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = world.cli(&["staging", "--release-id", "r-after"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    let err = printed(&out);
    assert!(
        err.contains("another run holds the release lock") && err.contains("restart production"),
        "the refusal names the command: {err}"
    );
    let restarted = restart.wait_with_output().await.expect("the restart ends");
    assert!(restarted.status.success(), "{}", printed(&restarted));
    assert!(world.lock_claims().is_empty());
    let out = world.cli(&["staging", "--release-id", "r-after"]).await;
    assert!(out.status.success(), "{}", printed(&out));
}
