//! Secrets in bulk (`secrets.select` and `secrets.names`): what parses, what is refused with which
//! check at which line, and how a secret's name becomes a setting name.

use slot_release_config::{LoadOptions, NameRule, SecretSelect, load_str};

/// A valid config whose staging environment's `secrets` block is `secrets` (indented by 6).
fn config(secrets: &str) -> String {
    format!(
        "version: 1
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
    settings:
      APP_ENV: staging
    secrets:
      vault: contoso-kv
{secrets}
  production:
    slot: production
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
"
    )
}

fn load(secrets: &str) -> Result<slot_release_config::Secrets, Vec<(&'static str, usize)>> {
    match load_str("release.yml", &config(secrets), &LoadOptions::default()) {
        Ok(loaded) => Ok(loaded.config.environments["staging"]
            .secrets
            .clone()
            .expect("a secrets block")),
        Err(problems) => Err(problems.iter().map(|d| (d.code, d.line)).collect()),
    }
}

#[test]
fn a_star_selects_every_secret_with_upper_snake_names_by_default() {
    let secrets = load("      select: '*'").expect("valid");
    assert_eq!(secrets.select.as_ref().and_then(SecretSelect::prefix), None);
    assert!(secrets.map.is_empty());
    assert_eq!(secrets.names, None);
    assert_eq!(secrets.names.unwrap_or_default(), NameRule::UpperSnake);
}

#[test]
fn a_prefix_selection_parses_with_its_strip_flag_and_name_rule() {
    let secrets = load(
        "      select: {prefix: app-, stripPrefix: true}
      names: keep
      map:
        DATABASE_URL: db-url",
    )
    .expect("valid");
    let select = secrets.select.expect("select");
    assert_eq!(select.prefix().map(|p| p.as_str()), Some("app-"));
    assert!(select.strip_prefix());
    assert_eq!(secrets.names, Some(NameRule::Keep));
    assert_eq!(secrets.map.len(), 1);
    let unstripped = load("      select: {prefix: app-}").expect("valid");
    assert!(!unstripped.select.expect("select").strip_prefix());
}

#[test]
fn the_name_rules_map_secret_names_to_setting_names() {
    assert_eq!(NameRule::UpperSnake.apply("db-password"), "DB_PASSWORD");
    assert_eq!(NameRule::UpperSnake.apply("Api-Key-2"), "API_KEY_2");
    assert_eq!(NameRule::Keep.apply("db-password"), "db-password");
    for name in ["db-password", "A-b-C"] {
        assert!(
            slot_release_config::SettingName::new(NameRule::UpperSnake.apply(name)).is_ok(),
            "{name}"
        );
    }
}

#[test]
fn a_selection_other_than_a_star_or_a_prefix_is_refused_where_it_is_written() {
    assert_eq!(
        load("      select: 'app-*'"),
        Err(vec![("invalid-secret-selection", 17)])
    );
    assert_eq!(
        load("      select: {prefix: app_}"),
        Err(vec![("invalid-secret-name", 17)])
    );
    assert_eq!(
        load("      select: {prefix: app-, strip: true}"),
        Err(vec![("unknown-field", 17)])
    );
    assert_eq!(
        load("      select: '*'\n      names: upper-snake"),
        Err(vec![("unknown-value", 18)])
    );
}

#[test]
fn a_block_that_takes_nothing_or_names_without_a_selection_is_refused() {
    assert_eq!(
        load("      delivery: value"),
        Err(vec![("secrets-take-nothing", 15)])
    );
    assert_eq!(
        load("      names: keep\n      map:\n        DB: db"),
        Err(vec![("names-without-select", 17)])
    );
}

#[test]
fn a_map_entry_that_is_also_a_plain_setting_is_still_refused_next_to_a_selection() {
    assert_eq!(
        load("      select: '*'\n      map:\n        APP_ENV: app-env"),
        Err(vec![("setting-and-secret", 19)])
    );
}

#[test]
fn the_help_of_an_unknown_name_rule_suggests_the_right_spelling() {
    let Err(problems) = load_str(
        "release.yml",
        &config("      select: '*'\n      names: upper-snake"),
        &LoadOptions::default(),
    ) else {
        panic!("`names: upper-snake` was accepted");
    };
    let problems = problems.to_string();
    assert!(problems.contains("upperSnake"), "{problems}");
}
