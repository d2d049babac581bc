//! The package inputs without Azure: `build --out` writes the package and its build record, the `package`
//! task input reaches the stages (an empty one the agent rooted at the sources means "build"), and a garbage
//! package or a package root outside the sources is refused before the service connection is even used.

use std::path::{Path, PathBuf};
use std::process::Command;

use slot_release_tests::{Example, paths};

/// The binary with a clean environment: nothing of an agent that may run these tests leaks in.
fn slot_release(cwd: &Path) -> Command {
    let mut cmd = Command::new(paths::slot_release_binary().unwrap());
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .current_dir(cwd);
    cmd
}

/// A checkout of the python example in `dir/s`, with `edit` applied to its config.
fn checkout(dir: &Path, edit: impl FnOnce(String) -> String) -> PathBuf {
    let sources = dir.join("s");
    let config = Example::Python.checkout(&sources).unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, edit(text)).unwrap();
    sources
}

fn output(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A pipeline step of the task: the agent's variables and the inputs, no arguments.
fn task(sources: &Path, temp: &Path, command: &str) -> Command {
    let mut cmd = slot_release(sources);
    cmd.env("TF_BUILD", "True")
        .env("AGENT_TEMPDIRECTORY", temp)
        .env("BUILD_SOURCESDIRECTORY", sources)
        .env("SYSTEM_DEFAULTWORKINGDIRECTORY", sources)
        .env("BUILD_BUILDNUMBER", "20261204.1")
        .env("INPUT_COMMAND", command)
        .env("INPUT_CONFIGFILE", sources.join("release.yml"));
    cmd
}

#[test]
fn build_writes_the_package_and_its_record_into_the_output_folder() {
    let dir = tempfile::tempdir().unwrap();
    let sources = checkout(dir.path(), |t| t);
    let out = dir.path().join("artifact");
    let (ok, text) = output(
        slot_release(&sources)
            .env(
                "BUILD_SOURCEVERSION",
                "0123456789abcdef0123456789abcdef01234567",
            )
            .args(["build", "--config", "release.yml", "--release-id", "r7"])
            .arg("--out")
            .arg(&out),
    );
    assert!(ok, "{text}");
    assert!(out.join("package.zip").is_file(), "{text}");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("slot-release-build.json")).unwrap())
            .unwrap();
    assert_eq!(record["releaseId"], "r7");
    assert_eq!(record["package"], "package.zip");
    assert_eq!(
        record["sourceCommit"],
        "0123456789abcdef0123456789abcdef01234567"
    );
    assert!(
        text.contains("Package ") && text.contains("prepared before the stage"),
        "the build stage did not build a second time: {text}"
    );
}

#[test]
fn a_package_root_outside_the_sources_is_refused_before_anything_is_built() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("outside")).unwrap();
    std::fs::write(dir.path().join("outside/app.py"), "x").unwrap();
    let sources = checkout(dir.path(), |t| t.replace("root: .", "root: ../outside"));
    let out = dir.path().join("artifact");
    let (ok, text) = output(
        slot_release(&sources)
            .args(["build", "--config", "release.yml", "--out"])
            .arg(&out),
    );
    assert!(!ok, "{text}");
    assert!(text.contains("outside the sources"), "{text}");
    assert!(!out.join("package.zip").exists());
    // The same before `staging` touches Azure: the error comes before the missing connection's.
    let (ok, text) = output(slot_release(&sources).args(["staging", "--config", "release.yml"]));
    assert!(!ok, "{text}");
    assert!(text.contains("outside the sources"), "{text}");
    assert!(!text.contains("no service connection"), "{text}");
}

#[test]
fn a_garbage_package_input_fails_before_the_service_connection_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let sources = checkout(dir.path(), |t| t);
    let temp = dir.path().join("_temp");
    std::fs::write(dir.path().join("garbage.zip"), "not a zip").unwrap();
    let (_, text) = output(
        task(&sources, &temp, "staging")
            .env("INPUT_PACKAGE", dir.path().join("garbage.zip"))
            .env(
                "INPUT_AZURESUBSCRIPTION",
                "00000000-0000-0000-0000-000000000000",
            ),
    );
    assert!(
        text.contains("##vso[task.complete result=Failed;]"),
        "{text}"
    );
    assert!(text.contains("is not a readable zip"), "{text}");
    assert!(!text.contains("cannot connect to Azure"), "{text}");
    assert!(!text.contains("No package given"), "{text}");
}

#[test]
fn an_empty_package_input_rooted_at_the_sources_means_build_one() {
    let dir = tempfile::tempdir().unwrap();
    let sources = checkout(dir.path(), |t| t);
    let temp = dir.path().join("_temp");
    // What the agent passes for a filePath input left empty: the sources folder itself.
    let (_, text) = output(
        task(&sources, &temp, "staging")
            .env("INPUT_PACKAGE", format!("{}/", sources.display()))
            .env("INPUT_OUTPUTFOLDER", dir.path().join("out")),
    );
    assert!(
        text.contains("No package given: building one from"),
        "{text}"
    );
    assert!(dir.path().join("out/package.zip").is_file(), "{text}");
    // It got as far as the connection, which this test does not give.
    assert!(text.contains("no service connection"), "{text}");
}

#[test]
fn rehearse_walks_the_pipelines_path_build_record_then_verified_package() {
    let dir = tempfile::tempdir().unwrap();
    let sources = checkout(dir.path(), |t| Example::Python.quick(&t).unwrap());
    let work = dir.path().join("work");
    let (ok, text) = output(
        slot_release(&sources)
            .env("TMPDIR", dir.path())
            .args(["rehearse", "--config", "release.yml", "--work-dir"])
            .arg(&work),
    );
    assert!(ok, "{text}");
    assert!(
        work.join("artifact/slot-release-build.json").is_file(),
        "{text}"
    );
    let built = text.find("Build record").unwrap_or(usize::MAX);
    let verified = text
        .find("Package verified against its build record")
        .unwrap_or(usize::MAX);
    let deployed = text.find("deploy package").unwrap_or(usize::MAX);
    assert!(
        built < verified && verified < deployed && deployed < usize::MAX,
        "build, record, verification, deployment out of order or missing:\n{text}"
    );
    assert!(!text.contains("No package given"), "{text}");
}

#[test]
fn production_and_container_apps_say_the_package_input_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let sources = checkout(dir.path(), |t| t);
    let (ok, text) = output(slot_release(&sources).args([
        "production",
        "--config",
        "release.yml",
        "--package",
        "nowhere.zip",
    ]));
    assert!(!ok, "{text}");
    assert!(
        text.contains("The package input is ignored by production"),
        "{text}"
    );
    assert!(!text.contains("nothing matches"), "{text}");
}

#[test]
fn plan_lists_a_package_root_that_cannot_be_built_from() {
    let dir = tempfile::tempdir().unwrap();
    let sources = checkout(dir.path(), |t| t.replace("root: .", "root: missing"));
    let state = paths::workspace().join("crates/engine/tests/fixtures/before-first-release.json");
    for stage in ["build", "staging"] {
        let (ok, text) = output(
            slot_release(&sources)
                .args([
                    "plan",
                    "--config",
                    "release.yml",
                    "--stage",
                    stage,
                    "--state",
                ])
                .arg(&state),
        );
        assert!(!ok, "{stage}: {text}");
        assert!(text.contains("FAIL package-root"), "{stage}: {text}");
        assert!(text.contains("does not exist"), "{stage}: {text}");
    }
    // A good root adds nothing to the plan.
    let good = checkout(&dir.path().join("good"), |t| t);
    let (ok, text) = output(
        slot_release(&good)
            .args([
                "plan",
                "--config",
                "release.yml",
                "--stage",
                "build",
                "--state",
            ])
            .arg(&state),
    );
    assert!(ok, "{text}");
    assert!(!text.contains("package-root"), "{text}");
}

#[test]
fn the_rollback_takes_the_package_input_and_plan_takes_its_stage_input() {
    let dir = tempfile::tempdir().unwrap();
    let sources = checkout(dir.path(), |t| t);
    let temp = dir.path().join("_temp");
    std::fs::write(dir.path().join("garbage.zip"), "not a zip").unwrap();
    // The artifact a rollback job downloaded reaches the rollback, and is checked before Azure is touched.
    let (_, text) = output(
        task(&sources, &temp, "rollback")
            .env("INPUT_PACKAGE", dir.path().join("garbage.zip"))
            .env("INPUT_ROLLBACKTO", "20261204.1"),
    );
    assert!(text.contains("is not a readable zip"), "{text}");
    // `planStage` chooses the stage a task-mode plan shows.
    let (_, text) = output(task(&sources, &temp, "plan").env("INPUT_PLANSTAGE", "rolback"));
    assert!(
        text.contains("##vso[task.complete result=Failed;]"),
        "{text}"
    );
    assert!(text.contains("rolback"), "{text}");
}
