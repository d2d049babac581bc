//! A gate's `analysis:` loads as typed thresholds, the schema accepts it, and each mistake in it is
//! reported at its line and field with what to write instead.

use slot_release_config::{LoadOptions, Severity, load_str};

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
stages:
  staging:
    environment: staging
    healthCheck:
      path: /health
STAGING
  production:
    environment: production
    sourceSlot: staging
    watch:
      duration: 1m
      healthCheck:
        path: /health
WATCH
";

fn config(staging: &str, watch: &str) -> String {
    BASE.replace("STAGING\n", staging).replace("WATCH\n", watch)
}

#[test]
fn every_field_loads_typed_and_the_schema_accepts_it() {
    let text = config(
        "      analysis:
        window: 2m
        minRequests: 50
        maxHttp5xxRate: 1%
        maxAverageResponseTime: 800ms
        baseline:
          margin: 0.5%
",
        "        analysis:
          window: 1m
          maxHttp5xxRate: 2%
",
    );
    let loaded = load_str("release.yml", &text, &LoadOptions::default())
        .unwrap_or_else(|problems| panic!("{problems}"));
    assert!(loaded.warnings.is_empty(), "{}", loaded.warnings);
    let analysis = loaded.config.stages.staging.health_check.analysis.unwrap();
    assert_eq!(analysis.window.to_string(), "2m");
    assert_eq!(analysis.min_requests, 50);
    assert_eq!(analysis.max_http5xx_rate.unwrap().value(), 1.0);
    assert_eq!(
        std::time::Duration::from(analysis.max_average_response_time.unwrap()),
        std::time::Duration::from_millis(800)
    );
    assert_eq!(analysis.baseline.unwrap().margin.value(), 0.5);
    let watch = loaded.config.stages.production.watch.health_check.analysis;
    assert_eq!(watch.unwrap().min_requests, 20, "the default");
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
fn a_share_without_its_percent_sign_is_located_with_the_fix() {
    let text = config(
        "      analysis:
        window: 2m
        maxHttp5xxRate: 0.01
",
        "",
    );
    let Err(found) = load_str("release.yml", &text, &LoadOptions::default()) else {
        panic!("loaded");
    };
    let first = found.iter().next().expect("a diagnostic");
    assert_eq!(first.line, 22, "{found}");
    assert!(found.to_string().contains("write it with `%`"), "{found}");
}

#[test]
fn a_window_or_threshold_that_judges_nothing_is_an_error_at_its_field() {
    let found = problems(&config(
        "      analysis:
        window: 0s
        minRequests: 0
",
        "",
    ));
    assert_eq!(
        found,
        [
            (
                Severity::Error,
                "analysis-without-threshold",
                20,
                "stages.staging.healthCheck.analysis".to_owned()
            ),
            (
                Severity::Error,
                "duration-not-positive",
                21,
                "stages.staging.healthCheck.analysis.window".to_owned()
            ),
            (
                Severity::Error,
                "min-requests-zero",
                22,
                "stages.staging.healthCheck.analysis.minRequests".to_owned()
            ),
        ]
    );
}

#[test]
fn a_share_above_every_request_is_an_error() {
    let found = problems(&config(
        "      analysis:
        window: 1m
        maxHttp5xxRate: 150%
        baseline: {margin: 101%}
",
        "",
    ));
    let codes: Vec<_> = found.iter().map(|(_, c, l, _)| (*c, *l)).collect();
    assert_eq!(
        codes,
        [("percent-above-100", 22), ("percent-above-100", 23)]
    );
}

#[test]
fn production_cannot_be_its_own_baseline() {
    let found = problems(&config(
        "",
        "        analysis:
          window: 1m
          baseline: {margin: 1%}
",
    ));
    assert_eq!(
        found,
        [(
            Severity::Error,
            "baseline-of-production",
            29,
            "stages.production.watch.healthCheck.analysis.baseline".to_owned()
        )]
    );
}

#[test]
fn a_logs_query_loads_and_its_mistakes_are_located() {
    let text = config(
        "      analysis:
        window: 2m
        logs:
          workspace: 6f1c3f7e-2b1a-4c59-9a51-0d5b6c7e8f90
          maxFailedRequestRate: 2%
          query: AppExceptions | summarize count()
          max: 3
",
        "",
    );
    let loaded = load_str("release.yml", &text, &LoadOptions::default())
        .unwrap_or_else(|problems| panic!("{problems}"));
    let logs = loaded
        .config
        .stages
        .staging
        .health_check
        .analysis
        .unwrap()
        .logs
        .unwrap();
    assert_eq!(logs.max_failed_request_rate.unwrap().value(), 2.0);
    assert_eq!(logs.max, Some(3.0));
    let document: serde_json::Value = serde_saphyr::from_str(&text).expect("valid YAML");
    let validator =
        jsonschema::validator_for(&slot_release_config::json_schema()).expect("schema compiles");
    assert!(validator.is_valid(&document));

    let found = problems(&config(
        "      analysis:
        window: 2m
        logs:
          workspace: my-workspace
          query: AppRequests | summarize count()
",
        "",
    ));
    let codes: Vec<_> = found.iter().map(|(_, c, l, _)| (*c, *l)).collect();
    assert_eq!(
        codes,
        [("workspace-not-guid", 23), ("query-without-max", 24)]
    );
    let found = problems(&config(
        "      analysis:
        window: 2m
        logs:
          workspace: 6f1c3f7e-2b1a-4c59-9a51-0d5b6c7e8f90
",
        "",
    ));
    let codes: Vec<_> = found.iter().map(|(_, c, l, _)| (*c, *l)).collect();
    assert_eq!(codes, [("logs-without-threshold", 22)]);
}
