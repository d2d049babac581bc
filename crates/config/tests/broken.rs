//! Broken configs: each file under `tests/broken/` holds one mistake (or, for `many-problems`,
//! several) and must be reported with the exact check, line and column; the rendered diagnostics
//! are pinned by insta snapshots so message and help text changes show up in review.

use std::path::Path;

use slot_release_config::{LoadOptions, load_file};

fn check(name: &str, expected: &[(&str, usize, usize)]) {
    let path = format!("tests/broken/{name}.yml");
    let problems = match load_file(Path::new(&path), &LoadOptions::default()) {
        Ok(_) => panic!("{path} loaded without problems"),
        Err(problems) => problems,
    };
    let found: Vec<(&str, usize, usize)> = problems
        .iter()
        .map(|d| (d.code, d.line, d.column))
        .collect();
    pretty_assertions::assert_eq!(found, expected, "{problems}");
    insta::assert_snapshot!(name, problems.to_string());
}

macro_rules! broken {
    ($($test:ident: $file:literal => [$(($code:literal, $line:literal, $column:literal)),+ $(,)?];)+) => {
        $(
            #[test]
            fn $test() {
                check($file, &[$(($code, $line, $column)),+]);
            }
        )+
    };
}

broken! {
    unknown_field: "unknown-field" => [("unknown-field", 10, 3)];
    wave_gap: "wave-gap" => [("wave-gap", 36, 11)];
    fan_out_without_targets: "fan-out-without-targets" => [("fan-out-without-targets", 28, 1)];
    many_targets: "many-targets" => [
        ("duplicate-target", 32, 11),
        ("invalid-target-name", 35, 11),
        ("duplicate-target-app", 36, 10),
        ("invalid-region", 38, 13),
        ("max-parallel-range", 40, 16),
    ];
    invalid_app_name: "invalid-app-name" => [("invalid-app-name", 4, 9)];
    invalid_resource_group: "invalid-resource-group" => [("invalid-resource-group", 5, 18)];
    duplicate_key: "duplicate-key" => [("duplicate-key", 14, 5)];
    invalid_duration: "invalid-duration" => [("invalid-duration", 21, 17)];
    invalid_slot_name: "invalid-slot-name" => [("invalid-slot-name", 13, 11)];
    invalid_secret_name: "invalid-secret-name" => [("invalid-secret-name", 17, 23)];
    invalid_vault_name: "invalid-vault-name" => [("invalid-vault-name", 15, 14)];
    unknown_stack: "unknown-stack" => [("unknown-stack", 7, 10)];
    swap_same_slot: "swap-same-slot" => [("swap-same-slot", 23, 17)];
    unknown_environment: "unknown-environment" => [("unknown-environment", 22, 18)];
    slot_hook_needs_code_app: "slot-hook-needs-code-app" => [("slot-hook-needs-code-app", 21, 16)];
    duration_not_positive: "duration-not-positive" => [("duration-not-positive", 22, 18)];
    timeout_not_above_interval: "timeout-not-above-interval" => [("timeout-not-above-interval", 22, 16)];
    fail_after_zero: "fail-after-zero" => [("fail-after-zero", 21, 18)];
    unknown_value: "unknown-value" => [("unknown-value", 24, 15)];
    missing_field: "missing-field" => [("missing-field", 3, 1)];
    unsupported_version: "unsupported-version" => [("unsupported-version", 2, 10)];
    invalid_variable_reference: "invalid-variable-reference" => [("invalid-variable-reference", 15, 17)];
    yaml_syntax: "yaml-syntax" => [("yaml-syntax", 5, 3)];
    package_required: "package-required" => [("package-required", 6, 9)];
    setting_and_secret: "setting-and-secret" => [("setting-and-secret", 19, 9)];
    invalid_type: "invalid-type" => [("invalid-type", 21, 18)];
    source_slot_required: "source-slot-required" => [("source-slot-required", 21, 3)];
    swap_back_without_slot: "swap-back-without-slot" => [
        ("preview-without-slot", 22, 15),
        ("swap-back-without-slot", 29, 14),
    ];
    many_names: "many-names" => [
        ("invalid-setting-name", 15, 7),
        ("invalid-vault-name", 17, 14),
        ("invalid-secret-name", 19, 23),
        ("invalid-slot-name", 29, 17),
        ("invalid-duration", 31, 17),
    ];
    many_unknown_fields: "many-unknown-fields" => [
        ("unknown-field", 5, 3),
        ("unknown-field", 10, 3),
        ("unknown-field", 22, 9),
        ("unknown-field", 30, 7),
    ];
    missing_sections: "missing-sections" => [
        ("missing-field", 2, 1),
        ("missing-field", 2, 1),
        ("missing-field", 3, 1),
    ];
    canary_steps: "canary-steps" => [
        ("canary-percent-order", 29, 20),
        ("canary-step-unheld", 31, 20),
        ("canary-step-pause-and-gate", 32, 20),
        ("canary-percent-range", 36, 20),
        ("canary-complete-step-held", 37, 20),
    ];
    canary_without_slot: "canary-without-slot" => [("canary-without-slot", 22, 15)];
    many_problems: "many-problems" => [
        ("unknown-stack", 7, 10),
        ("swap-same-slot", 22, 17),
        ("duration-not-positive", 24, 17),
    ];
}
