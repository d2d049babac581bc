//! Start-up order: the binary signs in while its config is still being read, so the HTTPS client's
//! trust roots and the first token do not wait for the config's validation (issue 17's start-up target),
//! and a config that fails still fails first, as if nothing had started.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use slot_release_tests::World;
use slot_release_tests::cli::printed;

/// Replaces the world's config with a named pipe: the binary's read of it blocks until the test writes.
fn config_as_pipe(config: &Path) -> String {
    let text = std::fs::read_to_string(config).unwrap();
    std::fs::remove_file(config).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(config)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo {}", config.display());
    text
}

/// Writes `text` into the pipe the binary is reading (opening it waits for the reader).
async fn feed(config: &Path, text: String) {
    let config = config.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut pipe = std::fs::OpenOptions::new()
            .write(true)
            .open(&config)
            .unwrap();
        pipe.write_all(text.as_bytes()).unwrap();
    })
    .await
    .unwrap();
}

/// Whether the emulator has been asked for a token (a POST to the authority's token endpoint).
fn token_requested(world: &World) -> bool {
    world
        .emulator
        .requests()
        .iter()
        .any(|r| r.method == "POST" && r.path.ends_with("/token"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_token_is_asked_for_while_the_config_is_still_being_read() {
    let world = World::builder().quick().start().await.unwrap();
    let config = world.config();
    let text = config_as_pipe(&config);
    world.emulator.clear_requests();
    let run = world.cli_command(&["plan", "--stage", "staging"]).output();
    let run = tokio::spawn(run);

    // The config is not there yet: the only way a token can be asked for is a sign-in that does not
    // wait for it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !token_requested(&world) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no token was asked for in 30 s while the config was unread: signing in waits for the config"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tokens_before_config = world
        .emulator
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/token"))
        .count();
    feed(&config, text).await;
    let out = run.await.unwrap().unwrap();
    assert!(out.status.success(), "{}", printed(&out));
    assert!(
        printed(&out).contains("Plan for staging"),
        "{}",
        printed(&out)
    );
    // The token asked for early is the one the run used: no second sign-in.
    let tokens = world
        .emulator
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/token"))
        .count();
    assert_eq!(
        (tokens_before_config, tokens),
        (1, 1),
        "token requests before the config was read, and in the whole run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_config_is_reported_before_a_broken_service_connection() {
    let world = World::builder().quick().start().await.unwrap();
    let config = world.config();
    let text = std::fs::read_to_string(&config).unwrap();
    // A connection of a scheme no Azure connection has: signing in early fails, unheard.
    let broken = [(
        &*format!("ENDPOINT_AUTH_SCHEME_{}", world.cli_connection),
        "UsernamePassword".to_owned(),
    )];
    std::fs::write(&config, text.replace("environments:", "environmentz:")).unwrap();
    let out = world
        .cli_with(&["plan", "--stage", "staging"], &broken)
        .await;
    assert!(!out.status.success(), "{}", printed(&out));
    let shown = printed(&out);
    assert!(shown.contains("environmentz"), "{shown}");
    assert!(!shown.contains("cannot connect"), "{shown}");

    // With the config mended, the same connection is what fails, as before the sign-in moved.
    std::fs::write(&config, &text).unwrap();
    let out = world
        .cli_with(&["plan", "--stage", "staging"], &broken)
        .await;
    assert!(!out.status.success(), "{}", printed(&out));
    let shown = printed(&out);
    assert!(shown.contains("cannot connect to Azure"), "{shown}");
    assert!(shown.contains("UsernamePassword"), "{shown}");
}
