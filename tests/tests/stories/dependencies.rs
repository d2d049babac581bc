//! Apps whose dependencies must be installed (issue 16): a SimpleChat-shaped Flask app released through
//! staging and production by both routes — App Service's build of `requirements.txt` from an offline
//! wheelhouse, and packages vendored in `__oryx_packages__` by a build step — a failed build failing staging
//! with the build's log and production untouched, and a Node app with no startup command.

use std::path::Path;
use std::time::Duration;

use slot_release_emulator::EmulatorOptions;
use slot_release_tests::{Example, World, printed, stdout, wheelhouse};

/// The SimpleChat fixture's package root inside a world's sources.
fn app_dir(world: &World) -> std::path::PathBuf {
    world.sources.join("application/single_app")
}

/// A SimpleChat world whose production already runs the previous release with its packages vendored (so
/// production is healthy from the start), the emulator's builds reading the wheelhouse; `edit` changes the
/// config first.
async fn simplechat(edit: impl FnOnce(String) -> String + Send + 'static) -> World {
    let wheels = wheelhouse::wheelhouse().unwrap_or_else(|e| panic!("{e}"));
    World::builder()
        .example(Example::SimpleChat)
        .previous_release()
        .edit(edit)
        .prepare(|sources| wheelhouse::vendor(&sources.join("application/single_app")))
        .emulator(move |o: &mut EmulatorOptions| {
            o.python_packages = Some(wheels);
            o.deployment_step_delay = Duration::from_millis(20);
        })
        .start()
        .await
        .unwrap_or_else(|e| panic!("the world did not start: {e}"))
}

fn preflight_line<'a>(out: &'a str, check: &str) -> &'a str {
    let prefix = format!("ok   {check}: ");
    out.lines()
        .find_map(|l| l.trim_start().strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no passing {check} line in:\n{out}"))
}

async fn assert_flask_answers(world: &World, slot: &str, env: &str) {
    let (status, body) = world
        .get(slot, "/")
        .await
        .unwrap_or_else(|| panic!("{slot} did not answer"));
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&format!("SimpleChat on Flask 3.1.0 ({env})")),
        "{slot} must serve the Flask app, not App Service's default page: {body}"
    );
}

/// Releases the world's app through staging and production, checking the plan's dependencies line and
/// that production answered throughout.
async fn release_through_production(world: &World, route: &str) {
    let prober = world.watch_production();
    let out = world.cli(&["staging", "--release-id", "r1"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    let line = preflight_line(&stdout(&out), "dependencies").to_owned();
    assert!(line.starts_with(route), "{line}");
    assert_flask_answers(world, "staging", "staging").await;
    let out = world.cli(&["production", "--release-id", "r1"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    prober.assert_always_healthy().await;
    assert_flask_answers(world, "production", "production").await;
    assert_eq!(world.tag("slotrelease.phase").as_deref(), Some("released"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simplechat_releases_with_app_service_building_its_requirements() {
    let world = simplechat(|t| t).await;
    // This release brings no packages: App Service's build installs requirements.txt.
    std::fs::remove_dir_all(app_dir(&world).join("__oryx_packages__")).unwrap();
    release_through_production(&world, "built by App Service (Oryx) from requirements.txt").await;
    let production = world.slot("production");
    assert!(
        production.content_dir.join("antenv").is_dir(),
        "the build's virtual environment came with the swap"
    );
    assert!(!production.content_dir.join("__oryx_packages__").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simplechat_releases_with_packages_vendored_by_a_build_step() {
    let world = simplechat(|t| {
        t.replace(
            "SCM_DO_BUILD_DURING_DEPLOYMENT: \"true\"",
            "SCM_DO_BUILD_DURING_DEPLOYMENT: \"false\"",
        )
    })
    .await;
    // The pipeline's build step vendored the packages (the world's `prepare`); the package carries them.
    assert!(app_dir(&world).join("__oryx_packages__/flask").is_dir());
    release_through_production(&world, "vendored in the package (__oryx_packages__)").await;
    let production = world.slot("production");
    assert!(
        production
            .content_dir
            .join("__oryx_packages__/flask")
            .is_dir()
    );
    assert!(
        !production.content_dir.join("antenv").exists(),
        "no build ran"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_build_fails_staging_with_its_log_and_production_is_untouched() {
    let world = simplechat(|t| t).await;
    let app = app_dir(&world);
    std::fs::remove_dir_all(app.join("__oryx_packages__")).unwrap();
    let requirements = app.join("requirements.txt");
    let mut text = std::fs::read_to_string(&requirements).unwrap();
    text.push_str("not-in-the-wheelhouse==1.0\n");
    std::fs::write(&requirements, text).unwrap();
    // Production serves before the snapshot: Python writes its bytecode caches into the site as it starts.
    assert_flask_answers(&world, "production", "production").await;
    let before = world.slot("production");
    let prober = world.watch_production();
    let out = world.cli(&["staging", "--release-id", "r1"]).await;
    assert!(!out.status.success(), "{}", printed(&out));
    let text = printed(&out);
    for wanted in [
        "Oryx build failed",
        "lines of the deployment log",
        "No matching distribution found for not-in-the-wheelhouse==1.0",
        "Deployment Failed.",
    ] {
        assert!(text.contains(wanted), "{wanted:?} not in:\n{text}");
    }
    prober.assert_always_healthy().await;
    let after = world.slot("production");
    assert_eq!(after.content_dir, before.content_dir);
    assert_eq!(after.content_digest, before.content_digest);
    assert_eq!(after.app_settings, before.app_settings);
    assert_flask_answers(&world, "production", "production").await;
    assert_eq!(world.tag("slotrelease.phase").as_deref(), Some("failed"));
}

/// A Node app with no startup command: App Service runs `npm start`, the plan says so, and nothing needs
/// installing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_app_with_no_startup_command_releases_through_production() {
    let world = World::builder()
        .example(Example::NodeHttp)
        .previous_release()
        .emulator(|o: &mut EmulatorOptions| o.deployment_step_delay = Duration::from_millis(20))
        .start()
        .await
        .unwrap_or_else(|e| panic!("the world did not start: {e}"));
    let command = world
        .slot("production")
        .site_config
        .get("appCommandLine")
        .cloned();
    assert!(
        command
            .as_ref()
            .and_then(|c| c.as_str())
            .is_none_or(str::is_empty),
        "no startup command: {command:?}"
    );
    let prober = world.watch_production();
    let out = world.cli(&["staging", "--release-id", "r1"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    let log = stdout(&out);
    assert!(
        preflight_line(&log, "startup-command").contains("runs `npm start`"),
        "{log}"
    );
    assert!(
        preflight_line(&log, "dependencies").contains("package.json lists no dependencies"),
        "{log}"
    );
    let out = world.cli(&["production", "--release-id", "r1"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    prober.assert_always_healthy().await;
    let (status, body) = world
        .get("production", "/")
        .await
        .expect("production answers");
    assert_eq!(status, 200);
    assert!(
        body.contains("Node http app (production), release r1"),
        "{body}"
    );
    assert!(Path::new(&world.slot("production").content_dir.join("server.js")).is_file());
}
