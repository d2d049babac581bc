//! What the config tests share: every diagnostic a load reports, as (severity, code, line, path).

use slot_release_config::{LoadOptions, Severity, load_str};

/// (severity, code, line, path) of every diagnostic of `release.yml` holding `text`, errors or warnings.
pub fn problems(text: &str) -> Vec<(Severity, &'static str, usize, String)> {
    let list = match load_str("release.yml", text, &LoadOptions::default()) {
        Ok(loaded) => loaded.warnings,
        Err(problems) => problems,
    };
    list.iter()
        .map(|d| (d.severity, d.code, d.line, d.path.clone()))
        .collect()
}
