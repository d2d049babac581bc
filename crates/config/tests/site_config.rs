//! An environment's `siteConfig:` loads as typed fields, and each mistake in it is reported at its
//! line and field with what to write instead.

use slot_release_config::{FtpsState, LoadOptions, MinTlsVersion, Severity, load_str};

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
SITE
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

fn with_site(block: &str) -> String {
    BASE.replace("SITE\n", block)
}

#[test]
fn every_field_loads_typed_and_tls_keeps_its_spelling() {
    let text = with_site(
        "    siteConfig:
      alwaysOn: true
      http20Enabled: true
      minTlsVersion: 1.0
      ftpsState: FtpsOnly
      healthCheckPath: /healthz
      warmup:
        path: /ready
        statuses: [200, 202]
",
    );
    let loaded = load_str("release.yml", &text, &LoadOptions::default())
        .unwrap_or_else(|problems| panic!("{problems}"));
    assert!(loaded.warnings.is_empty(), "{}", loaded.warnings);
    let site = loaded
        .config
        .environment("production")
        .unwrap()
        .site_config
        .clone()
        .unwrap();
    assert_eq!(site.always_on, Some(true));
    assert_eq!(site.http20_enabled, Some(true));
    assert_eq!(site.min_tls_version, Some(MinTlsVersion::V1_0));
    assert_eq!(site.ftps_state, Some(FtpsState::FtpsOnly));
    assert_eq!(site.health_check_path.as_deref(), Some("/healthz"));
    let warmup = site.warmup.unwrap();
    assert_eq!(warmup.path.as_deref(), Some("/ready"));
    assert_eq!(warmup.statuses, [200, 202]);
    // The schema accepts what the loader takes (a YAML number for the TLS version).
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
fn an_unknown_tls_version_or_ftps_state_is_located() {
    let found = problems(&with_site(
        "    siteConfig:
      minTlsVersion: 1.4
",
    ));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].2, 16, "{found:?}");
    assert!(
        found[0].3.ends_with("siteConfig.minTlsVersion"),
        "{found:?}"
    );
    let found = problems(&with_site(
        "    siteConfig:
      ftpsState: ftpsonly
",
    ));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].2, 16, "{found:?}");
}

#[test]
fn relative_paths_and_bad_statuses_are_errors_with_their_field() {
    let found = problems(&with_site(
        "    siteConfig:
      healthCheckPath: health
      warmup:
        path: ready
        statuses: [200, 42]
",
    ));
    let codes: Vec<_> = found
        .iter()
        .map(|(s, c, l, p)| (*s, *c, *l, p.as_str()))
        .collect();
    assert_eq!(
        codes,
        [
            (
                Severity::Error,
                "site-path-relative",
                16,
                "environments.production.siteConfig.healthCheckPath"
            ),
            (
                Severity::Error,
                "site-path-relative",
                18,
                "environments.production.siteConfig.warmup.path"
            ),
            (
                Severity::Error,
                "invalid-status",
                19,
                "environments.production.siteConfig.warmup.statuses[1]"
            ),
        ]
    );
}

#[test]
fn a_warmup_setting_written_by_hand_too_is_an_error() {
    let found = problems(&with_site(
        "    settings:
      WEBSITE_SWAP_WARMUP_PING_PATH: /other
    siteConfig:
      warmup:
        path: /ready
",
    ));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].1, "warmup-setting-twice");
    assert_eq!(found[0].2, 16);
}

#[test]
fn always_on_off_warns_on_production_only() {
    let found = problems(&with_site(
        "    siteConfig:
      alwaysOn: false
",
    ));
    assert_eq!(
        found,
        [(
            Severity::Warning,
            "always-on-off-in-production",
            16,
            "environments.production.siteConfig.alwaysOn".to_owned()
        )]
    );
    let staging = BASE.replace("SITE\n", "").replace(
        "    slot: staging\n",
        "    slot: staging\n    siteConfig:\n      alwaysOn: false\n",
    );
    assert_eq!(problems(&staging), []);
}
