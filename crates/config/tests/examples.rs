//! The example configs load without problems, satisfy the JSON Schema, and resolve their
//! variables in strict mode; the checked-in schema and reference are what the code generates.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use slot_release_config::{
    LoadOptions, MapVariables, VariableMode, json_schema, json_schema_string, load_file,
    reference_markdown,
};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

const EXAMPLES: [&str; 3] = [
    "examples/python-webapp/release.yml",
    "examples/container-app/release.yml",
    "examples/functions-app/release.yml",
];

fn schema_errors(path: &Path) -> Vec<String> {
    let schema = json_schema();
    let validator = jsonschema::validator_for(&schema).expect("the generated schema compiles");
    let text = std::fs::read_to_string(path).expect("readable file");
    let document: serde_json::Value = serde_saphyr::from_str(&text).expect("valid YAML");
    validator
        .iter_errors(&document)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

#[test]
fn examples_load_without_problems() {
    for example in EXAMPLES {
        match load_file(&repo(example), &LoadOptions::default()) {
            Ok(loaded) => assert!(loaded.warnings.is_empty(), "{example}: {}", loaded.warnings),
            Err(problems) => panic!("{example}:\n{problems}"),
        }
    }
}

#[test]
fn examples_satisfy_the_json_schema() {
    for example in EXAMPLES {
        let errors = schema_errors(&repo(example));
        assert!(errors.is_empty(), "{example}: {errors:#?}");
    }
}

#[test]
fn the_json_schema_rejects_a_misspelt_field() {
    let errors = schema_errors(&repo("crates/config/tests/broken/unknown-field.yml"));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].contains("rooot"), "{errors:#?}");
}

#[test]
fn examples_say_which_schema_they_use() {
    for example in EXAMPLES {
        let text = std::fs::read_to_string(repo(example)).expect("readable example");
        assert!(
            text.starts_with("# yaml-language-server: $schema=../../docs/release.schema.json\n"),
            "{example} lacks the schema association line"
        );
    }
}

#[test]
fn strict_mode_expands_variables() {
    let variables = MapVariables {
        environment: [("BUILD_BUILDID".to_string(), "20261122.7".to_string())]
            .into_iter()
            .collect(),
        timestamp: "20261122080000".into(),
    };
    let opts = LoadOptions {
        variables: VariableMode::Strict(Arc::new(variables)),
    };
    let loaded = load_file(&repo("examples/container-app/release.yml"), &opts);
    let problems = match loaded {
        Ok(loaded) => {
            let image = loaded
                .config
                .image
                .expect("the container example has an image");
            panic!(
                "Staging.Url is not defined, yet the tag became {}",
                image.tag
            )
        }
        Err(problems) => problems,
    };
    // `Staging.Url` is used by the smoke-test hook and is not defined here.
    let found: Vec<_> = problems
        .iter()
        .map(|d| (d.code, d.line, d.column, d.message.as_str()))
        .collect();
    assert_eq!(
        found,
        [("unknown-variable", 40, 36, "unknown variable `Staging.Url`")],
        "{problems}"
    );

    let variables = MapVariables {
        environment: [
            ("BUILD_BUILDID".to_string(), "20261122.7".to_string()),
            (
                "STAGING_URL".to_string(),
                "https://staging.example".to_string(),
            ),
        ]
        .into_iter()
        .collect(),
        timestamp: "20261122080000".into(),
    };
    let opts = LoadOptions {
        variables: VariableMode::Strict(Arc::new(variables)),
    };
    let loaded = load_file(&repo("examples/container-app/release.yml"), &opts)
        .unwrap_or_else(|problems| panic!("{problems}"));
    let image = loaded
        .config
        .image
        .expect("the container example has an image");
    assert_eq!(image.tag, "20261122.7");
    assert_eq!(image.registry(), Some("contoso.azurecr.io"));
    assert_eq!(
        loaded.config.stages.staging.hooks[0].run,
        "curl --fail --silent \"https://staging.example/health\""
    );
}

#[test]
fn lookups_find_stages_environments_and_health_checks() {
    let loaded = load_file(
        &repo("examples/python-webapp/release.yml"),
        &LoadOptions::default(),
    )
    .unwrap_or_else(|problems| panic!("{problems}"));
    let config = &loaded.config;
    use slot_release_config::StageName;
    let staging = config
        .stage_environment(StageName::Staging)
        .expect("staging environment");
    assert_eq!(staging.slot.as_str(), "staging");
    assert!(
        config
            .stage_environment(StageName::Production)
            .expect("production environment")
            .slot
            .is_production()
    );
    let hooks = config.hooks(StageName::Staging);
    assert_eq!(hooks[0].undo.as_deref(), Some("python3 migrate.py down"));
    let watch = config
        .health_check(StageName::Production)
        .expect("watch probe");
    assert_eq!(watch.interval.as_std(), std::time::Duration::from_secs(1));
    assert!(config.require_environment("qa").is_err());
    assert_eq!(
        loaded.source.value_position("stages.staging.hooks[0].run"),
        Some(slot_release_config::Position {
            line: 53,
            column: 14
        })
    );
}

fn assert_fresh(path: &str, wanted: &str) {
    let current = std::fs::read_to_string(repo(path)).unwrap_or_default();
    assert!(
        current == wanted,
        "{path} is stale: run `cargo xtask codegen` and commit the result"
    );
}

#[test]
fn checked_in_schema_is_fresh() {
    assert_fresh("docs/release.schema.json", &json_schema_string());
}

#[test]
fn checked_in_reference_is_fresh() {
    assert_fresh("docs/config-reference.md", &reference_markdown());
}

#[test]
fn settings_take_numbers_as_written_and_the_schema_agrees() {
    // Users write `PORT: 8000`; App Service settings are strings, so the loader keeps the text and
    // the schema accepts the number instead of underlining what the loader takes.
    let text = std::fs::read_to_string(repo("crates/config/tests/broken/unknown-field.yml"))
        .expect("readable")
        .replace("  rooot: .", "  root: .")
        .replace(
            "    slot: staging\n",
            "    slot: staging\n    settings:\n      PORT: 8000\n      DEBUG: true\n",
        );
    let loaded = slot_release_config::load_str("port.yml", &text, &LoadOptions::default())
        .unwrap_or_else(|problems| panic!("{problems}"));
    let settings = &loaded
        .config
        .environment("staging")
        .expect("staging")
        .settings;
    assert_eq!(settings.get("PORT").map(String::as_str), Some("8000"));
    assert_eq!(settings.get("DEBUG").map(String::as_str), Some("true"));
    let document: serde_json::Value = serde_saphyr::from_str(&text).expect("valid YAML");
    let validator = jsonschema::validator_for(&json_schema()).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&document)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn manual_rollback_without_a_rollback_stage_is_a_warning_only() {
    let text = std::fs::read_to_string(repo("crates/config/tests/broken/unknown-field.yml"))
        .expect("readable")
        .replace("  rooot: .", "  root: .")
        .replace(
            "    sourceSlot: staging\n",
            "    sourceSlot: staging\n    rollback: manual\n",
        );
    let loaded = slot_release_config::load_str("manual.yml", &text, &LoadOptions::default())
        .unwrap_or_else(|problems| panic!("{problems}"));
    let found: Vec<_> = loaded
        .warnings
        .iter()
        .map(|d| (d.severity, d.code, d.line, d.column))
        .collect();
    assert_eq!(
        found,
        [(
            slot_release_config::Severity::Warning,
            "manual-rollback-without-stage",
            24,
            15
        )],
        "{}",
        loaded.warnings
    );
}

#[test]
fn a_missing_file_is_one_diagnostic_without_a_position() {
    let problems = match load_file(Path::new("no/such/release.yml"), &LoadOptions::default()) {
        Ok(_) => panic!("a missing file loaded"),
        Err(problems) => problems,
    };
    let found: Vec<_> = problems
        .iter()
        .map(|d| (d.code, d.line, d.column))
        .collect();
    assert_eq!(found, [("file-unreadable", 0, 0)]);
    let rendered = problems.to_string();
    assert!(rendered.contains("--> no/such/release.yml\n"), "{rendered}");
}

#[test]
fn a_variable_where_none_is_expanded_is_a_warning() {
    let text = std::fs::read_to_string(repo("crates/config/tests/broken/unknown-field.yml"))
        .expect("readable")
        .replace("  rooot: .", "  root: $(Build.SourcesDirectory)/app");
    let loaded = slot_release_config::load_str("root.yml", &text, &LoadOptions::default())
        .unwrap_or_else(|problems| panic!("{problems}"));
    let found: Vec<_> = loaded
        .warnings
        .iter()
        .map(|d| {
            (
                d.code,
                d.line,
                d.column,
                d.path.as_str(),
                d.message.as_str(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [(
            "variable-not-expanded",
            10,
            9,
            "package.root",
            "`$(Build.SourcesDirectory)` is not expanded in this field"
        )],
        "{}",
        loaded.warnings
    );
}

#[test]
fn a_container_app_without_a_source_slot_loads_and_one_with_restore_last_known_good_is_clean() {
    // No `sourceSlot` is how a container app with no staging slot says "set the image on production".
    let text = std::fs::read_to_string(repo(
        "crates/config/tests/broken/swap-back-without-slot.yml",
    ))
    .expect("readable")
    .replace("    strategy: swapWithPreview\n", "")
    .replace("restore: swapBack", "restore: lastKnownGood");
    let loaded = slot_release_config::load_str("direct.yml", &text, &LoadOptions::default())
        .unwrap_or_else(|problems| panic!("{problems}"));
    assert_eq!(loaded.config.production().source_slot, None);
    assert!(loaded.warnings.is_empty(), "{}", loaded.warnings);
    let document: serde_json::Value = serde_saphyr::from_str(&text).expect("valid YAML");
    let validator = jsonschema::validator_for(&json_schema()).expect("schema compiles");
    assert!(validator.is_valid(&document), "the schema accepts it too");
}

#[test]
fn a_canary_of_paused_and_gated_steps_loads_and_the_schema_accepts_it() {
    let text = std::fs::read_to_string(repo("examples/python-webapp/release.yml"))
        .expect("readable")
        .replace(
            "    strategy: swap\n",
            "    strategy: canary\n    canary:\n      steps:\n        - percent: 10\n          healthCheck:\n            path: /health\n        - percent: 50\n          pause: 30s\n        - percent: 100\n",
        );
    let loaded = slot_release_config::load_str("canary.yml", &text, &LoadOptions::default())
        .unwrap_or_else(|problems| panic!("{problems}"));
    let production = loaded.config.production();
    assert_eq!(
        production.strategy,
        slot_release_config::SwapStrategy::Canary
    );
    let steps = &production.canary.as_ref().expect("canary").steps;
    let percents: Vec<u32> = steps.iter().map(|s| s.percent).collect();
    assert_eq!(percents, [10, 50, 100]);
    assert!(steps[0].health_check.is_some() && steps[1].pause.is_some());
    let document: serde_json::Value = serde_saphyr::from_str(&text).expect("valid YAML");
    let validator = jsonschema::validator_for(&json_schema()).expect("schema compiles");
    assert!(validator.is_valid(&document), "the schema accepts it too");
}
