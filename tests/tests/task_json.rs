//! `task.json` conforms to the task-lib schema (a copy in `tests/schemas/`) and to the rules the
//! schema does not express: the handlers, the agent version, the inputs the binary reads, the outputs.

use std::collections::BTreeSet;

use serde_json::Value;
use slot_release_tests::paths;

fn load(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn task() -> Value {
    load(&paths::task_json())
}

#[test]
fn task_json_validates_against_tasks_schema() {
    let schema = load(&paths::workspace().join("tests/schemas/tasks.schema.json"));
    let validator = jsonschema::validator_for(&schema)
        .unwrap_or_else(|e| panic!("schema does not compile: {e}"));
    let task = task();
    let errors: Vec<String> = validator
        .iter_errors(&task)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "task.json fails tasks.schema.json:\n{}",
        errors.join("\n")
    );

    // The check has teeth: a string boolean, which real tasks get wrong, is rejected.
    let mut broken = task.clone();
    broken["inputs"][0]["required"] = Value::String("true".into());
    assert!(!validator.is_valid(&broken));
}

#[test]
fn identity_version_and_handlers() {
    let task = task();
    assert_eq!(task["name"], "SlotRelease");
    assert_eq!(task["category"], "Deploy");
    let friendly = task["friendlyName"].as_str().unwrap_or_default();
    assert!(
        (1..=40).contains(&friendly.chars().count()),
        "tfx wants a friendlyName of 1-40 characters"
    );
    assert_eq!(task["version"]["Major"], 1);
    let workspace_major = env!("CARGO_PKG_VERSION")
        .split('.')
        .next()
        .unwrap_or_default();
    assert_eq!(
        task["version"]["Major"].to_string(),
        workspace_major,
        "task major version follows the workspace"
    );
    let handlers: BTreeSet<&str> = task["execution"]
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(handlers, BTreeSet::from(["Node20_1", "Node24"]));
    for handler in &handlers {
        let target = task["execution"][handler]["target"]
            .as_str()
            .unwrap_or_default();
        assert!(
            paths::workspace().join("task").join(target).is_file(),
            "{handler} target {target} is not in task/"
        );
    }
    // Node20_1 needs agent 4.248.0; with both handlers an agent without Node24 falls back to Node20_1.
    assert_eq!(task["minimumAgentVersion"], "4.248.0");
    assert!(
        task["instanceNameFormat"]
            .as_str()
            .is_some_and(|f| f.contains("$(command)"))
    );
}

#[test]
fn inputs_are_typed_grouped_and_unique() {
    let task = task();
    let inputs = task["inputs"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = inputs.iter().filter_map(|i| i["name"].as_str()).collect();
    for required in [
        "azureSubscription",
        "command",
        "configFile",
        "environment",
        "releaseRecordPath",
        "package",
        "outputFolder",
    ] {
        assert!(names.contains(&required), "input {required} missing");
    }
    let unique: BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(unique.len(), names.len(), "input names repeat");
    let by_name = |name: &str| {
        inputs
            .iter()
            .find(|i| i["name"] == name)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(
        by_name("azureSubscription")["type"],
        "connectedService:AzureRM"
    );
    assert_eq!(by_name("configFile")["type"], "filePath");
    // A path picker, as AzureWebApp@1's `package`; the binary treats the sources root the agent gives
    // for an empty value as "not given".
    assert_eq!(by_name("package")["type"], "filePath");
    assert_eq!(by_name("package")["required"], false);
    let command = by_name("command");
    let commands: BTreeSet<&str> = command["options"]
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        commands,
        BTreeSet::from([
            "validate",
            "plan",
            "build",
            "staging",
            "production",
            "rollback",
            "release",
            "rehearse",
            "appStart",
            "appStop",
            "appRestart",
            "slotDelete",
        ])
    );

    // Every group exists, and every visible rule names an input that exists.
    let groups: BTreeSet<&str> = task["groups"]
        .as_array()
        .map(|g| g.iter().filter_map(|g| g["name"].as_str()).collect())
        .unwrap_or_default();
    for input in &inputs {
        if let Some(group) = input["groupName"].as_str() {
            assert!(
                groups.contains(group),
                "group {group} of {} is not declared",
                input["name"]
            );
        }
        if let Some(rule) = input["visibleRule"].as_str() {
            for clause in rule.split("&&").flat_map(|c| c.split("||")) {
                let subject = clause.split_whitespace().next().unwrap_or_default();
                assert!(
                    unique.contains(subject),
                    "visibleRule of {} names unknown input {subject}",
                    input["name"]
                );
            }
        }
        if let Some(options) = input["options"].as_object()
            && let Some(default) = input["defaultValue"].as_str()
        {
            assert!(
                options.contains_key(default),
                "default {default} of {} is not an option",
                input["name"]
            );
        }
    }
}

/// The commands an input is shown for: every command without a `visibleRule`, else the commands its
/// rule on `command` names (`command = a || command = b`, or `command != a && command != b`).
fn shown_for(input: &Value, commands: &BTreeSet<String>) -> BTreeSet<String> {
    let Some(rule) = input["visibleRule"].as_str() else {
        return commands.clone();
    };
    let clause = |c: &str, op: &str| -> Option<String> {
        let (subject, value) = c.split_once(op)?;
        (subject.trim() == "command").then(|| value.trim().to_owned())
    };
    if rule.contains("!=") {
        let hidden: BTreeSet<String> = rule
            .split("&&")
            .map(|c| clause(c, "!=").unwrap_or_else(|| panic!("rule {rule:?} mixes operators")))
            .collect();
        commands.difference(&hidden).cloned().collect()
    } else {
        rule.split("||")
            .map(|c| clause(c, "=").unwrap_or_else(|| panic!("rule {rule:?} is not on command")))
            .collect()
    }
}

/// task.json shows each input for exactly the commands the binary reads it in, as the binary itself
/// reports (`slot-release task-inputs`, the table that maps inputs to options): an input the binary
/// ignores, or one shown for a command that ignores it, or one read but hidden, fails here.
#[test]
fn inputs_match_what_the_binary_reads() {
    let binary = paths::slot_release_binary().unwrap();
    let out = std::process::Command::new(&binary)
        .arg("task-inputs")
        .env_clear()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Value = serde_json::from_slice(&out.stdout).unwrap();
    let read = read["inputs"].as_array().cloned().unwrap_or_default();
    let task = task();
    let declared = task["inputs"].as_array().cloned().unwrap_or_default();
    let names = |list: &[Value]| -> BTreeSet<String> {
        list.iter()
            .filter_map(|i| i["name"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(
        names(&declared),
        names(&read),
        "task.json declares exactly the inputs the binary reads"
    );
    let commands: BTreeSet<String> = declared
        .iter()
        .find(|i| i["name"] == "command")
        .and_then(|i| i["options"].as_object())
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    for input in &read {
        let name = input["name"].as_str().unwrap();
        let reads: BTreeSet<String> = input["commands"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c.as_str().map(str::to_owned))
            .collect();
        let declared = declared.iter().find(|i| i["name"] == name).unwrap();
        assert_eq!(
            shown_for(declared, &commands),
            reads,
            "input {name}: task.json shows it for the first set of commands, the binary reads it in the second"
        );
    }
}

#[test]
fn outputs_are_declared_and_settable() {
    let task = task();
    let outputs: Vec<&str> = task["outputVariables"]
        .as_array()
        .map(|o| o.iter().filter_map(|v| v["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        outputs,
        [
            "ReleaseId",
            "AppUrl",
            "Slot",
            "ProductionUrl",
            "PreviousRelease",
            "LastKnownGood",
            "PreviousImageTag",
            "PlanJsonPath",
            "Result",
            "Matrix",
            "RollbackArtifactRunId",
            "RollbackArtifactPipelineId",
            "RollbackArtifactName"
        ]
    );
    let allowed: Vec<&str> = task["restrictions"]["settableVariables"]["allowed"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        allowed, outputs,
        "the task may set exactly its output variables"
    );
    // Restricted command mode would block task.uploadsummary and artifact.upload, which the task uses.
    assert!(task["restrictions"].get("commands").is_none());
}
