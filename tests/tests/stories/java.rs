//! A Java SE app (issue 16): the pipeline's build makes an executable JAR (javac and jar here, Maven or
//! Gradle in a real pipeline), `build` records it as the release's package, and the staging job deploys it
//! through OneDeploy with `type=jar`: Kudu puts it in `wwwroot` as `app.jar` and the Java SE image runs it
//! with `java -jar` on a real JVM; production gets it by the swap. The same JAR on a Tomcat app is refused
//! by Kudu, and the refusal is shown.

use std::path::{Path, PathBuf};
use std::time::Duration;

use slot_release_emulator::EmulatorOptions;
use slot_release_engine::state::SlotName;
use slot_release_tests::{AgentOutcome, AgentResult, Example, World};

use super::jobs::{finish, job};
use tokio_util::sync::CancellationToken;

/// Builds `target/app.jar` from `src/Hello.java`, as the pipeline's build step would.
fn build_jar(sources: &Path) -> Result<(), String> {
    let run = |program: &str, args: &[&str]| -> Result<(), String> {
        let out = std::process::Command::new(program)
            .args(args)
            .current_dir(sources)
            .output()
            .map_err(|e| {
                format!("{program}: {e} (a JDK must be installed: .ci/run installs one)")
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{program} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    run("javac", &["-d", "target/classes", "src/Hello.java"])?;
    std::fs::write(sources.join("target/manifest.txt"), "Main-Class: Hello\n")
        .map_err(|e| e.to_string())?;
    run(
        "jar",
        &[
            "cfm",
            "target/app.jar",
            "target/manifest.txt",
            "-C",
            "target/classes",
            ".",
        ],
    )
}

async fn java_world(edit: impl FnOnce(String) -> String + Send + 'static) -> World {
    World::builder()
        .example(Example::JavaJar)
        .previous_release()
        .edit(edit)
        .prepare(build_jar)
        .emulator(|o: &mut EmulatorOptions| o.deployment_step_delay = Duration::from_millis(20))
        .start()
        .await
        .unwrap_or_else(|e| panic!("the world did not start: {e}"))
}

fn result(outcome: &AgentOutcome, want: AgentResult) {
    assert_eq!(outcome.result, want, "{}", outcome.transcript());
}

/// Build job: the JAR the build step made, recorded as the release's package in `a/`.
async fn build(world: &World) -> PathBuf {
    let artifact = world.dir.path().join("a");
    let run = world
        .run("build")
        .unwrap_or_else(|e| panic!("{e}"))
        .input(
            "package",
            &world.sources.join("target/app.jar").display().to_string(),
        )
        .input("outputFolder", &artifact.display().to_string());
    result(&finish(run).await, AgentResult::Succeeded);
    assert!(artifact.join("app.jar").is_file(), "the JAR is the package");
    artifact
}

async fn wwwroot(world: &World, slot: &str) -> String {
    let slot = SlotName::new(slot).unwrap_or_else(|e| panic!("{e}"));
    let out = world
        .port
        .run_command(
            &slot,
            "ls -A",
            Duration::from_secs(30),
            &CancellationToken::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    out.output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jar_goes_through_onedeploy_as_type_jar_and_runs_on_java_se() {
    let world = java_world(|t| t).await;
    let artifact = build(&world).await;

    let staging_job = job(&world, &artifact, "job2");
    let run = world
        .run_in("staging", &staging_job.join("s"))
        .unwrap_or_else(|e| panic!("{e}"))
        .input("package", &format!("{}/drop/*.jar", staging_job.display()));
    let outcome = finish(run).await;
    result(&outcome, AgentResult::Succeeded);
    assert!(
        outcome.stdout.contains("(OneDeploy type=jar)"),
        "the plan names the deployment's type: {}",
        outcome.transcript()
    );
    // Kudu wrote the JAR as app.jar: only a type=jar deployment lands so (a zip would be unpacked).
    let listing = wwwroot(&world, "staging").await;
    assert!(
        listing.lines().any(|l| l.trim() == "app.jar") && !listing.contains("Hello.class"),
        "{listing}"
    );
    let release = world
        .setting("staging", "RELEASE_VERSION")
        .expect("the release's version on staging");
    let (status, body) = world.get("staging", "/health").await.expect("staging");
    assert_eq!((status, body.contains(&release)), (200, true), "{body}");

    let production_job = job(&world, &artifact, "job3");
    let run = world
        .run_in("production", &production_job.join("s"))
        .unwrap_or_else(|e| panic!("{e}"));
    result(&finish(run).await, AgentResult::Succeeded);
    let (status, body) = world
        .get("production", "/health")
        .await
        .expect("production");
    assert_eq!((status, body.contains(&release)), (200, true), "{body}");
    assert_eq!(world.tag("slotrelease.phase").as_deref(), Some("released"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jar_for_a_tomcat_app_is_refused_before_any_change() {
    let world =
        java_world(|t| t.replace("stack: JAVA|17-java17", "stack: TOMCAT|10.1-java17")).await;
    let artifact = build(&world).await;
    let before = world.slot("staging").content_digest;
    world.emulator.clear_requests();
    // In the build's checkout: the config names the Tomcat stack (a fresh checkout would hold the
    // example's JAVA one).
    let run = world
        .run("staging")
        .unwrap_or_else(|e| panic!("{e}"))
        .input("package", &format!("{}/*.jar", artifact.display()));
    let outcome = finish(run).await;
    result(&outcome, AgentResult::Failed);
    assert!(
        outcome
            .stdout
            .contains("a .jar package is deployed with OneDeploy type=jar, which Kudu takes only on the JAVA (e.g. JAVA|17-java17) stack; slot staging runs TOMCAT|10.1-java17"),
        "{}",
        outcome.transcript()
    );
    assert_eq!(world.slot("staging").content_digest, before);
    let writes: Vec<String> = world
        .emulator
        .requests()
        .into_iter()
        .filter(|r| !matches!(r.method.as_str(), "GET" | "HEAD") && !r.path.ends_with("/list"))
        // The sign-in: the agent's OIDC token and Entra's token endpoint.
        .filter(|r| !r.host.starts_with("login.") && !r.path.ends_with("/oidctoken"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(writes.is_empty(), "refused, yet wrote: {writes:?}");
}
