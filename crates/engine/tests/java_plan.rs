//! A single WAR or JAR package: the plan names its OneDeploy type, and staging's `artifact-type` preflight
//! takes it only on the stack Kudu takes it on (JAR on Java SE, WAR on Tomcat; any Java stack on Windows,
//! where Kudu's own check decides).

use slot_release_engine::package::PackageFiles;
use slot_release_engine::plan::{Action, BuildInfo, Plan, Stage};
use slot_release_engine::state::{LiveState, WindowsStack};

mod support;
use support::{example, fixture, plan_built};

const SHA: &str = "0f05409d4807606aa76a2e3c1149794a5bb0e197cdf29b291650e729a6d99629";

fn staging(stack: Option<&str>, kind: Option<&'static str>, live: &LiveState) -> Plan {
    let mut loaded = example("python-webapp");
    loaded.spec.app.stack = stack.map(str::to_owned);
    loaded.spec.app.startup_command = None;
    let mut layout = PackageFiles::default();
    layout.onedeploy_type = kind;
    plan_built(
        &loaded,
        Stage::Staging,
        live,
        BuildInfo {
            layout: Some(layout),
            package_sha256: Some(SHA.into()),
            ..BuildInfo::default()
        },
    )
}

fn artifact_check(plan: &Plan) -> Option<(bool, String)> {
    plan.preflight
        .iter()
        .find(|c| c.name == "artifact-type")
        .map(|c| (c.ok, c.detail.clone()))
}

#[test]
fn each_artifact_is_taken_only_on_its_stack() {
    let live = fixture("staged.json");
    for (stack, kind, ok) in [
        ("JAVA|17-java17", "jar", true),
        ("TOMCAT|10.1-java17", "jar", false),
        ("PYTHON|3.12", "jar", false),
        ("TOMCAT|10.1-java17", "war", true),
        ("JAVA|17-java17", "war", false),
        ("JBOSSEAP|8-java17", "war", false),
    ] {
        let plan = staging(Some(stack), Some(kind), &live);
        let (got, detail) = artifact_check(&plan).expect("an artifact-type check");
        assert_eq!(got, ok, "{kind} on {stack}: {detail}");
        assert!(detail.contains(&format!("type={kind}")), "{detail}");
    }
    // A zip has no such check.
    let plan = staging(Some("PYTHON|3.12"), None, &live);
    assert_eq!(artifact_check(&plan), None, "{}", plan.render());
}

#[test]
fn on_windows_any_java_stack_passes_and_kudu_decides_the_container() {
    let mut live = fixture("staged.json");
    for slot in live.slots.values_mut() {
        slot.linux_fx_version = None;
        slot.startup_command = None;
        slot.windows = Some(WindowsStack {
            current_stack: Some("java".into()),
            java_version: Some("17".into()),
            ..Default::default()
        });
    }
    let plan = staging(None, Some("war"), &live);
    assert_eq!(
        artifact_check(&plan).map(|c| c.0),
        Some(true),
        "{}",
        plan.render()
    );
    for slot in live.slots.values_mut() {
        slot.windows = Some(WindowsStack {
            current_stack: Some("dotnet".into()),
            net_framework_version: Some("v8.0".into()),
            ..Default::default()
        });
    }
    let plan = staging(None, Some("jar"), &live);
    assert_eq!(
        artifact_check(&plan).map(|c| c.0),
        Some(false),
        "{}",
        plan.render()
    );
}

#[test]
fn the_deployment_step_names_the_type_as_snapshotted() {
    let plan = staging(Some("JAVA|17-java17"), Some("jar"), &fixture("staged.json"));
    let deploy = plan
        .steps
        .iter()
        .find_map(|s| match &s.action {
            Action::DeployPackage { artifact_type, .. } => Some(artifact_type.clone()),
            _ => None,
        })
        .expect("a deploy step");
    assert_eq!(deploy.as_deref(), Some("jar"));
    insta::assert_snapshot!("java_staging_plan_jar", plan.render());
}
