//! An environment's `registry:` loads as a managed identity or as credentials with a Key Vault
//! password, and each mistake in it (a password in clear text, no vault, both ways or neither, another
//! registry than the image's, a code app, a `DOCKER_REGISTRY_SERVER_*` setting written twice) is
//! reported at its line and field.

use std::sync::Arc;

use slot_release_config::{
    LoadOptions, Loaded, MapVariables, Registry, RegistryIdentity, Severity, VariableMode, load_str,
};

mod support;
use support::problems;

const BASE: &str = "version: 1
app:
  name: web
  resourceGroup: rg
  kind: container
image:
  repository: contoso.azurecr.io/contoso/app
  tag: v1
environments:
  staging:
    slot: staging
  production:
    slot: production
REG
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

/// Production's environment with `block` after its `slot:` line (line 14 is the block's first).
fn with(block: &str) -> String {
    BASE.replace("REG\n", block)
}

/// The production environment's registry as loaded.
fn production_registry(loaded: &Loaded) -> Registry {
    loaded
        .config
        .environment("production")
        .unwrap()
        .registry
        .clone()
        .expect("a registry")
}

/// The JSON schema accepts `text`; its errors are shown when it does not.
fn assert_schema_accepts(text: &str) {
    let errors = schema_errors(text);
    assert!(errors.is_empty(), "{errors:#?}");
}

fn schema_errors(text: &str) -> Vec<String> {
    let document: serde_json::Value = serde_saphyr::from_str(text).expect("valid YAML");
    let validator =
        jsonschema::validator_for(&slot_release_config::json_schema()).expect("schema compiles");
    validator
        .iter_errors(&document)
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn identity_and_credentials_load_typed_and_the_schema_accepts_them() {
    for (block, identity) in [
        (
            "    registry:\n      server: contoso.azurecr.io\n      identity: system\n",
            RegistryIdentity::System,
        ),
        (
            "    registry:\n      server: contoso.azurecr.io\n      identity:\n        userAssigned: 0b5c3a1e-1111-2222-3333-444455556666\n",
            RegistryIdentity::UserAssigned("0b5c3a1e-1111-2222-3333-444455556666".into()),
        ),
    ] {
        let text = with(block);
        let loaded = load_str("release.yml", &text, &LoadOptions::default())
            .unwrap_or_else(|problems| panic!("{problems}"));
        assert_eq!(production_registry(&loaded).identity, Some(identity));
        assert_schema_accepts(&text);
    }
    let text = with(
        "    secrets:
      vault: contoso-kv
    registry:
      server: contoso.azurecr.io
      credentials:
        username: puller
        passwordSecret: acr-password
",
    );
    let loaded = load_str("release.yml", &text, &LoadOptions::default())
        .unwrap_or_else(|problems| panic!("{problems}"));
    assert!(loaded.warnings.is_empty(), "{}", loaded.warnings);
    let registry = production_registry(&loaded);
    let credentials = registry.credentials.unwrap();
    assert_eq!(credentials.username, "puller");
    assert_eq!(credentials.password_secret.name().as_str(), "acr-password");
    assert_eq!(registry.identity, None);
    assert_schema_accepts(&text);
}

#[test]
fn the_user_name_takes_variables() {
    let text = with(
        "    secrets:
      vault: contoso-kv
    registry:
      server: contoso.azurecr.io
      credentials:
        username: $(AcrUser)
        passwordSecret: acr-password
",
    );
    let variables = MapVariables {
        environment: [("ACRUSER".to_owned(), "puller-from-pipeline".to_owned())]
            .into_iter()
            .collect(),
        timestamp: "20261205080000".into(),
    };
    let options = LoadOptions {
        variables: VariableMode::Strict(Arc::new(variables)),
    };
    let loaded =
        load_str("release.yml", &text, &options).unwrap_or_else(|problems| panic!("{problems}"));
    assert_eq!(
        production_registry(&loaded).credentials.unwrap().username,
        "puller-from-pipeline"
    );
}

#[test]
fn a_password_in_clear_text_is_refused_at_its_line_and_never_echoed() {
    let text = with(
        "    secrets:
      vault: contoso-kv
    registry:
      server: contoso.azurecr.io
      credentials:
        username: puller
        passwordSecret: acr-password
        password: hunter2-in-the-repo
",
    );
    let list = load_str("release.yml", &text, &LoadOptions::default()).unwrap_err();
    let found: Vec<_> = list
        .iter()
        .map(|d| (d.code, d.line, d.path.clone()))
        .collect();
    assert_eq!(
        found,
        [(
            "registry-password-in-clear",
            21,
            "environments.production.registry.credentials.password".to_owned()
        )]
    );
    assert!(!list.to_string().contains("hunter2"), "{list}");
    assert!(list.to_string().contains("passwordSecret"), "{list}");
    // The schema refuses it too, so the editor underlines it.
    assert!(!schema_errors(&text).is_empty());
}

#[test]
fn credentials_need_the_environments_vault() {
    let text = with(
        "    registry:
      server: contoso.azurecr.io
      credentials:
        username: puller
        passwordSecret: acr-password
",
    );
    assert_eq!(
        problems(&text),
        [(
            Severity::Error,
            "registry-secret-without-vault",
            18,
            "environments.production.registry.credentials.passwordSecret".to_owned()
        )]
    );
}

#[test]
fn one_way_to_pull_exactly() {
    let both = with(
        "    secrets:
      vault: contoso-kv
    registry:
      server: contoso.azurecr.io
      identity: system
      credentials:
        username: puller
        passwordSecret: acr-password
",
    );
    assert_eq!(
        problems(&both),
        [(
            Severity::Error,
            "registry-identity-and-credentials",
            19,
            "environments.production.registry.credentials".to_owned()
        )]
    );
    let neither = with("    registry:\n      server: contoso.azurecr.io\n");
    assert_eq!(
        problems(&neither),
        [(
            Severity::Error,
            "registry-without-auth",
            14,
            "environments.production.registry".to_owned()
        )]
    );
}

#[test]
fn an_image_from_another_registry_is_refused() {
    let text = with("    registry:\n      server: fabrikam.azurecr.io\n      identity: system\n");
    let list = load_str("release.yml", &text, &LoadOptions::default()).unwrap_err();
    let d = &list.as_slice()[0];
    assert_eq!(
        (d.code, d.line, d.path.as_str()),
        (
            "registry-other-server",
            15,
            "environments.production.registry.server"
        )
    );
    assert!(d.message.contains("contoso.azurecr.io"), "{}", d.message);
    // The host compares without case, as DNS does.
    let text = with("    registry:\n      server: Contoso.AzureCR.io\n      identity: system\n");
    assert_eq!(problems(&text), []);
    // A URL is not a host.
    let text =
        with("    registry:\n      server: https://contoso.azurecr.io\n      identity: system\n");
    let codes: Vec<_> = problems(&text).into_iter().map(|p| p.1).collect();
    assert!(codes.contains(&"registry-server-not-host"), "{codes:?}");
}

#[test]
fn a_code_app_takes_no_registry_and_the_settings_are_not_written_twice() {
    let code = with("    registry:\n      server: contoso.azurecr.io\n      identity: system\n")
        .replace("kind: container", "kind: code\n  stack: PYTHON|3.12")
        .replace(
            "image:\n  repository: contoso.azurecr.io/contoso/app\n  tag: v1\n",
            "package:\n  root: .\n",
        );
    let codes: Vec<_> = problems(&code).into_iter().map(|p| p.1).collect();
    assert_eq!(codes, ["registry-on-code-app"]);
    let twice = with(
        "    settings:
      DOCKER_REGISTRY_SERVER_USERNAME: someone
    secrets:
      vault: contoso-kv
    registry:
      server: contoso.azurecr.io
      credentials:
        username: puller
        passwordSecret: acr-password
",
    );
    assert_eq!(
        problems(&twice),
        [(
            Severity::Error,
            "registry-setting-twice",
            15,
            "environments.production.settings.DOCKER_REGISTRY_SERVER_USERNAME".to_owned()
        )]
    );
}
