//! The multi-stage template builds once and deploys many: the build step writes the package to the folder
//! the build job publishes, and the staging job downloads that artifact and deploys it with `package:`.

use serde_json::Value;
use slot_release_tests::paths;

fn template() -> Value {
    let path = paths::workspace().join("pipelines/templates/multi-stage.yml");
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
