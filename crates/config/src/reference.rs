//! The JSON Schema of `release.yml` and the Markdown reference generated from it.

use crate::model::ReleaseConfig;

/// The draft-07 JSON Schema of `release.yml` (what the VS Code YAML extension reads).
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<ReleaseConfig>();
    schema.to_value()
}

/// The schema as the checked-in `docs/release.schema.json` holds it (pretty, newline-terminated).
pub fn json_schema_string() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// The Markdown reference page, `docs/config-reference.md`.
pub fn reference_markdown() -> String {
    String::new()
}
