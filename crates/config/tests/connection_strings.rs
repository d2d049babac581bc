//! An environment's `connectionStrings:` loads as typed entries, and each mistake in it (an unknown
//! type, a name declared twice, a secret without a vault, a value and a secret at once, a delivery that
//! never reaches the app) is reported at its line and field with what to write instead.

use std::sync::Arc;

use slot_release_config::{
    ConnectionStringType, Delivery, LoadOptions, MapVariables, Severity, VariableMode, load_str,
};

mod support;
use support::problems;

const BASE: &str = "version: 1
app:
  name: web
  resourceGroup: rg
  kind: code
  stack: PYTHON|3.12
  startupCommand: python3 app.py
package:
  root: .
environments:
  staging:
    slot: staging
  production:
    slot: production
CONN
stages:
  staging:
    environment: staging
    healthCheck:
      path: /health
  production:
    environment: production
    sourceSlot: staging
    watch:
      duration: 1m
      healthCheck:
        path: /health
";

/// Production's environment with `block` after its `slot:` line (line 15 is the block's first).
fn with(block: &str) -> String {
    BASE.replace("CONN\n", block)
}

#[test]
fn values_secrets_and_stickiness_load_typed_and_the_schema_accepts_them() {
    let text = with(
        "    secrets:
      vault: contoso-kv
      delivery: value
    connectionStrings:
      Db:
        value: Server=tcp:db.example;Database=app
        type: SQLAzure
      Cache:
        secret: cache-conn
        type: RedisCache
        delivery: keyVaultReference
        sticky: true
      Bus:
        secret: bus-conn
        type: ServiceBus
",
    );
    let loaded = load_str("release.yml", &text, &LoadOptions::default())
        .unwrap_or_else(|problems| panic!("{problems}"));
    assert!(loaded.warnings.is_empty(), "{}", loaded.warnings);
    let env = loaded.config.environment("production").unwrap();
    let db = &env.connection_strings["Db"];
    assert_eq!(
        db.value.as_deref(),
        Some("Server=tcp:db.example;Database=app")
    );
    assert_eq!(db.kind, ConnectionStringType::SqlAzure);
    assert_eq!(db.sticky, None);
    let cache = &env.connection_strings["Cache"];
    assert_eq!(cache.secret.as_ref().unwrap().name().as_str(), "cache-conn");
    assert_eq!(cache.delivery, Some(Delivery::KeyVaultReference));
    assert_eq!(cache.sticky, Some(true));
    assert_eq!(env.connection_strings["Bus"].delivery, None);
    let document: serde_json::Value = serde_saphyr::from_str(&text).expect("valid YAML");
    let validator =
        jsonschema::validator_for(&slot_release_config::json_schema()).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&document)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn an_unknown_type_is_located_and_names_every_allowed_type() {
    let text = with(
        "    connectionStrings:
      Db:
        value: x
        type: Oracle
",
    );
    let list = load_str("release.yml", &text, &LoadOptions::default()).unwrap_err();
    assert_eq!(list.len(), 1, "{list}");
    let d = &list.as_slice()[0];
    assert_eq!(
        (d.code, d.line, d.path.as_str()),
        (
            "invalid-connection-string-type",
            18,
            "environments.production.connectionStrings.Db.type"
        )
    );
    for t in ConnectionStringType::ALL {
        assert!(d.message.contains(t.as_str()), "{}", d.message);
    }
    // A difference of case gets the right spelling.
    let text = with(
        "    connectionStrings:
      Db:
        value: x
        type: sqlazure
",
    );
    let list = load_str("release.yml", &text, &LoadOptions::default()).unwrap_err();
    assert!(
        list.as_slice()[0]
            .message
            .contains("did you mean `SQLAzure`?"),
        "{list}"
    );
}

#[test]
fn a_name_declared_twice_in_another_case_is_an_error_on_the_second() {
    let found = problems(&with(
        "    connectionStrings:
      DB:
        value: a
        type: Custom
      Db:
        value: b
        type: Custom
",
    ));
    // The map is read in name order: `DB` sorts before `Db`, which is reported.
    assert_eq!(
        found,
        [(
            Severity::Error,
            "connection-string-twice",
            19,
            "environments.production.connectionStrings.Db".to_owned()
        )]
    );
}

#[test]
fn a_secret_without_a_vault_is_an_error_at_the_secret() {
    let found = problems(&with(
        "    connectionStrings:
      Cache:
        secret: cache-conn
        type: RedisCache
",
    ));
    assert_eq!(
        found,
        [(
            Severity::Error,
            "connection-string-secret-without-vault",
            17,
            "environments.production.connectionStrings.Cache.secret".to_owned()
        )]
    );
}

#[test]
fn a_value_and_a_secret_at_once_or_neither_are_errors() {
    let found = problems(&with(
        "    secrets:
      vault: contoso-kv
    connectionStrings:
      Both:
        value: x
        secret: cache-conn
        type: Custom
      Neither:
        type: Custom
",
    ));
    let codes: Vec<(&str, usize)> = found.iter().map(|(_, c, l, _)| (*c, *l)).collect();
    assert_eq!(
        codes,
        [
            ("connection-string-value-and-secret", 20),
            ("connection-string-without-value", 22)
        ]
    );
}

#[test]
fn a_secret_delivered_as_a_pipeline_variable_never_reaches_the_app() {
    let found = problems(&with(
        "    secrets:
      vault: contoso-kv
      delivery: pipelineVariable
    connectionStrings:
      Inherited:
        secret: a
        type: Custom
      Own:
        secret: b
        type: Custom
        delivery: pipelineVariable
      Plain:
        value: x
        type: Custom
        delivery: value
",
    ));
    let codes: Vec<(&str, usize)> = found.iter().map(|(_, c, l, _)| (*c, *l)).collect();
    assert_eq!(
        codes,
        [
            ("connection-string-pipeline-variable", 20),
            ("connection-string-pipeline-variable", 25),
            ("delivery-without-secret", 29)
        ]
    );
}

#[test]
fn a_vault_used_only_by_connection_strings_takes_something() {
    let found = problems(&with(
        "    secrets:
      vault: contoso-kv
    connectionStrings:
      Cache:
        secret: cache-conn
        type: RedisCache
",
    ));
    assert_eq!(found, []);
    // Without the connection string, the same block takes nothing.
    let found = problems(&with(
        "    secrets:
      vault: contoso-kv
",
    ));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].1, "secrets-take-nothing");
}

#[test]
fn a_bad_name_is_located_at_its_key() {
    let found = problems(&with(
        "    connectionStrings:
      Db!:
        value: x
        type: Custom
",
    ));
    assert_eq!(
        found,
        [(
            Severity::Error,
            "invalid-connection-string-name",
            16,
            "environments.production.connectionStrings[\"Db!\"]".to_owned()
        )]
    );
}

#[test]
fn variables_are_expanded_in_values() {
    let text = with(
        "    connectionStrings:
      Db:
        value: Server=db;Application Name=$(Build.BuildNumber)
        type: SQLServer
",
    );
    let variables = MapVariables {
        environment: [("BUILD_BUILDNUMBER".to_owned(), "20261205.3".to_owned())]
            .into_iter()
            .collect(),
        timestamp: "20261205080000".into(),
    };
    let opts = LoadOptions {
        variables: VariableMode::Strict(Arc::new(variables)),
    };
    let loaded = load_str("release.yml", &text, &opts).unwrap_or_else(|p| panic!("{p}"));
    let env = loaded.config.environment("production").unwrap();
    assert_eq!(
        env.connection_strings["Db"].value.as_deref(),
        Some("Server=db;Application Name=20261205.3")
    );
}
