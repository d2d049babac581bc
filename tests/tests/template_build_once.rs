//! The templates build once and deploy many: the build step writes the package to the folder the build job
//! publishes, the staging job downloads that artifact and deploys it with `package:`, and the rollback
//! downloads the artifact of the run that built the release it brings back, as its plan names it.

use serde_json::Value;
use slot_release_tests::paths;

fn template() -> Value {
    load("multi-stage.yml")
}

fn load(name: &str) -> Value {
    let path = paths::workspace().join("pipelines/templates").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("not YAML: {e}"))
}

/// Every step of a stage, whether in a job or in a deployment job's `runOnce.deploy`.
fn steps(doc: &Value, stage: &str) -> Vec<Value> {
    let stage = doc["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["stage"] == stage)
        .unwrap_or_else(|| panic!("no stage {stage}"));
    let mut out = Vec::new();
    for job in stage["jobs"].as_array().into_iter().flatten() {
        let lists = [
            &job["steps"],
            &job["strategy"]["runOnce"]["deploy"]["steps"],
        ];
        for list in lists {
            out.extend(list.as_array().into_iter().flatten().cloned());
        }
    }
    out
}

fn task<'a>(steps: &'a [Value], name: &str, command: Option<&str>) -> &'a Value {
    steps
        .iter()
        .find(|s| s["task"] == name && command.is_none_or(|c| s["inputs"]["command"] == c))
        .unwrap_or_else(|| panic!("no {name} {command:?} step"))
}

fn input<'a>(step: &'a Value, name: &str) -> &'a str {
    step["inputs"][name]
        .as_str()
        .unwrap_or_else(|| panic!("step {step} has no input {name}"))
}

#[test]
fn staging_deploys_the_artifact_the_build_published() {
    let doc = template();
    let build = steps(&doc, "build");
    let out = input(task(&build, "SlotRelease@1", Some("build")), "outputFolder");
    let publish = task(&build, "PublishPipelineArtifact@1", None);
    assert_eq!(
        input(publish, "targetPath"),
        out,
        "the build job publishes the folder the package and its record are written to"
    );
    let artifact = input(publish, "artifact");

    let staging = steps(&doc, "staging");
    let download = task(&staging, "DownloadPipelineArtifact@2", None);
    assert_eq!(input(download, "artifactName"), artifact);
    let target = input(download, "targetPath");
    let deploy = task(&staging, "SlotRelease@1", Some("staging"));
    let package = input(deploy, "package");
    assert!(
        package.starts_with(&format!("{target}/")) && package.ends_with(".zip"),
        "staging deploys {package}, not the downloaded artifact in {target}"
    );
    // The download comes before the step that deploys it.
    let position = |step: &Value| staging.iter().position(|s| s == step);
    assert!(position(download) < position(deploy));
}

/// The variable a job declares as `$[ dependencies.<job>.outputs['<step>.<output>'] ]`.
fn variable_for(job: &Value, dependency: &str) -> String {
    job["variables"]
        .as_object()
        .into_iter()
        .flatten()
        .find(|(_, v)| v.as_str().is_some_and(|v| v.contains(dependency)))
        .map(|(k, _)| k.clone())
        .unwrap_or_else(|| {
            panic!(
                "job {} declares no variable from {dependency}",
                job["deployment"]
            )
        })
}

#[test]
fn the_rollback_downloads_the_artifact_its_plan_names() {
    let doc = load("rollback.yml");
    let stage = &doc["stages"][0];
    let jobs = stage["jobs"].as_array().unwrap();
    let plan_job = jobs.iter().find(|j| j["job"].is_string()).unwrap();
    let plan = plan_job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["inputs"]["command"] == "plan")
        .expect("a plan step");
    assert_eq!(input(plan, "planStage"), "rollback");
    let step_name = plan["name"].as_str().expect("the plan step is named");
    let rollback_job = jobs.iter().find(|j| j["deployment"].is_string()).unwrap();
    assert_eq!(rollback_job["dependsOn"], plan_job["job"]);
    // The outputs the binary sets (task.json declares them; the e2e test
    // rollback_reverts_a_code_release_that_passed_its_watch checks their values).
    let task: Value = serde_json::from_str(
        &std::fs::read_to_string(paths::workspace().join("task.json")).unwrap(),
    )
    .unwrap();
    let var = |output: &str| {
        assert!(
            task["outputVariables"]
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o["name"] == output),
            "task.json declares no output {output}"
        );
        variable_for(
            rollback_job,
            &format!(
                "dependencies.{}.outputs['{step_name}.{output}']",
                plan_job["job"].as_str().unwrap()
            ),
        )
    };
    let run = var("RollbackArtifactRunId");
    let pipeline = var("RollbackArtifactPipelineId");
    let name = var("RollbackArtifactName");

    let steps = steps(&doc, "rollback");
    let download = task_step(&steps, "DownloadPipelineArtifact@2");
    assert_eq!(input(download, "buildType"), "specific");
    assert_eq!(input(download, "buildVersionToDownload"), "specific");
    assert_eq!(input(download, "pipelineId"), format!("$({run})"));
    assert_eq!(input(download, "definition"), format!("$({pipeline})"));
    assert_eq!(input(download, "artifactName"), format!("$({name})"));
    assert!(
        download["condition"]
            .as_str()
            .unwrap()
            .contains(&format!("ne(variables.{run}, '')")),
        "the download runs only when the plan names an artifact"
    );
    let target = input(download, "targetPath");
    let rollbacks: Vec<&Value> = steps
        .iter()
        .filter(|s| s["inputs"]["command"] == "rollback")
        .collect();
    let with_package = rollbacks
        .iter()
        .find(|s| s["inputs"]["package"].is_string())
        .expect("a rollback with the downloaded package");
    assert!(input(with_package, "package").starts_with(&format!("{target}/")));
    assert_eq!(with_package["condition"], download["condition"]);
    let without = rollbacks
        .iter()
        .find(|s| !s["inputs"]["package"].is_string())
        .expect("a rollback that needs no artifact");
    assert!(
        without["condition"]
            .as_str()
            .unwrap()
            .contains(&format!("eq(variables.{run}, '')")),
        "exactly one of the two rollback steps runs"
    );
    let position = |step: &Value| steps.iter().position(|s| s == step);
    assert!(position(download) < position(with_package));
}

#[test]
fn the_multi_stage_template_rolls_back_with_the_rollback_template_and_queues_on_the_environment_lock()
 {
    let doc = template();
    let stages = doc["stages"].as_array().unwrap();
    let include = stages
        .iter()
        .find(|s| s["template"] == "rollback.yml")
        .expect("multi-stage.yml includes rollback.yml");
    assert_eq!(include["parameters"]["condition"], "failed('production')");
    for name in ["staging", "production"] {
        let stage = stages.iter().find(|s| s["stage"] == name).unwrap();
        assert_eq!(stage["lockBehavior"], "sequential", "stage {name}");
    }
    assert_eq!(
        load("rollback.yml")["stages"][0]["lockBehavior"],
        "sequential"
    );
}

fn task_step<'a>(steps: &'a [Value], name: &str) -> &'a Value {
    task(steps, name, None)
}
