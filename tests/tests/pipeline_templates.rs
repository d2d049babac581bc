//! Every YAML file under `pipelines/` validates against the Azure Pipelines schema (a copy of
//! `service-schema.json` in `tests/schemas/`) with this project's task, `SlotRelease@1`, added to it,
//! its inputs taken from `task.json`. The generic schema knows only in-box tasks.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use slot_release_tests::paths;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The JSON Schema of a `SlotRelease@1` step, derived from task.json.
fn task_step_schema(task: &Value) -> Value {
    let mut properties = serde_json::Map::new();
    for input in task["inputs"].as_array().into_iter().flatten() {
        let Some(name) = input["name"].as_str() else {
            continue;
        };
        let schema = match input["type"].as_str().unwrap_or_default() {
            "pickList" | "radio" => {
                let options: Vec<&String> = input["options"]
                    .as_object()
                    .map(|o| o.keys().collect())
                    .unwrap_or_default();
                json!({ "enum": options })
            }
            // Scalars reach the schema as strings (see `as_pipeline_scalars`); a macro such as
            // $(timeout) or a template expression is accepted where the value is only known at run time.
            "boolean" => {
                json!({ "type": "string", "pattern": "^([Tt]rue|[Ff]alse|TRUE|FALSE|.*\\$\\(.*\\).*|.*\\$\\{\\{.*\\}\\}.*)$" })
            }
            "int" => {
                json!({ "type": "string", "pattern": "^(\\d+|.*\\$\\(.*\\).*|.*\\$\\{\\{.*\\}\\}.*)$" })
            }
            _ => json!({ "type": "string" }),
        };
        properties.insert(name.to_owned(), schema);
    }
    let required: Vec<&str> = task["inputs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["required"] == true && i["defaultValue"].as_str().is_none_or(str::is_empty))
        .filter_map(|i| i["name"].as_str())
        .collect();
    json!({
        "properties": {
            "task": { "pattern": "^SlotRelease@1$" },
            "inputs": { "type": "object", "properties": properties, "additionalProperties": false, "required": required }
        },
        "required": ["task"]
    })
}

/// service-schema.json with `SlotRelease@1` added to the `task` definition.
fn pipeline_schema() -> Value {
    let mut schema: Value = serde_json::from_str(&read(
        &paths::workspace().join("tests/schemas/service-schema.json"),
    ))
    .unwrap_or_else(|e| panic!("service-schema.json: {e}"));
    let task: Value = serde_json::from_str(&read(&paths::task_json()))
        .unwrap_or_else(|e| panic!("task.json: {e}"));
    let definition = &mut schema["definitions"]["task"];
    let Some(variants) = definition["anyOf"].as_array_mut() else {
        panic!("service-schema.json: task.anyOf missing")
    };
    variants.push(task_step_schema(&task));
    let Some(names) = definition["properties"]["task"]["anyOf"].as_array_mut() else {
        panic!("service-schema.json: task.properties.task.anyOf missing")
    };
    names.push(json!({ "enum": ["SlotRelease@1"] }));
    schema
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current)
            .unwrap_or_else(|e| panic!("{}: {e}", current.display()))
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Azure Pipelines reads every YAML scalar as a string (`timeoutInMinutes: 15` is "15"), and the schema
/// is written that way; a generic YAML parser types them, so numbers and booleans are turned back.
fn as_pipeline_scalars(value: Value) -> Value {
    match value {
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Number(n) => Value::String(n.to_string()),
        Value::Array(items) => Value::Array(items.into_iter().map(as_pipeline_scalars).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, as_pipeline_scalars(v)))
                .collect(),
        ),
        other => other,
    }
}

fn errors(validator: &jsonschema::Validator, yaml: &str) -> Vec<String> {
    let doc: Value = serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("not YAML: {e}"));
    let doc = as_pipeline_scalars(doc);
    validator
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

#[test]
fn every_pipeline_file_validates() {
    let validator =
        jsonschema::validator_for(&pipeline_schema()).unwrap_or_else(|e| panic!("schema: {e}"));
    let files = yaml_files(&paths::workspace().join("pipelines"));
    let names: Vec<String> = files
        .iter()
        .filter_map(|f| f.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    for expected in [
        "ci.yml",
        "multi-stage.yml",
        "pr-validation.yml",
        "container.yml",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "pipelines/ has no {expected}"
        );
    }
    let mut failures = Vec::new();
    for file in &files {
        let errs = errors(&validator, &read(file));
        if !errs.is_empty() {
            failures.push(format!("{}:\n  {}", file.display(), errs.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_check_rejects_unknown_inputs_commands_and_tasks() {
    let validator =
        jsonschema::validator_for(&pipeline_schema()).unwrap_or_else(|e| panic!("schema: {e}"));
    let step = |inputs: &str| format!("steps:\n  - task: SlotRelease@1\n    inputs:\n{inputs}");
    assert!(
        errors(
            &validator,
            &step("      command: plan\n      configFile: release.yml\n")
        )
        .is_empty()
    );
    assert!(
        !errors(&validator, &step("      command: deploy-everything\n")).is_empty(),
        "unknown command accepted"
    );
    assert!(
        !errors(
            &validator,
            &step("      command: plan\n      configfile: release.yml\n")
        )
        .is_empty(),
        "misspelt input accepted"
    );
    assert!(
        !errors(&validator, "steps:\n  - task: SlotRelease@2\n").is_empty(),
        "unknown task version accepted"
    );
    assert!(
        errors(
            &validator,
            &step("      command: plan\n      timeoutMinutes: 15\n")
        )
        .is_empty()
    );
    assert!(
        !errors(
            &validator,
            &step("      command: plan\n      timeoutMinutes: soon\n")
        )
        .is_empty(),
        "non-number accepted"
    );
}
