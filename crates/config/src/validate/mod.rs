//! Everything that turns a config into diagnostics beyond the YAML scan: semantic rules, checks on
//! the raw document (so that all bad names and fields are reported, not only the first), variable
//! references, and the translation of serde-saphyr's errors.

mod analysis;
mod canary;
mod connection_strings;
mod names;
mod parse_errors;
mod raw;
mod registry;
mod semantic;
mod site_config;
mod targets;
mod variables;

pub(crate) use names::check_expanded_names;
pub(crate) use parse_errors::serde_diagnostic;
pub(crate) use raw::{check_raw, check_unknown_fields};
pub(crate) use semantic::check;
pub(crate) use variables::{check_variables, expand_variables};

use crate::diagnostic::{Diagnostics, Severity};
use crate::load::{Place, at_position};
use crate::source::{Position, SourceMap};

/// Collects diagnostics located through the source map.
pub(crate) struct Checker<'a> {
    pub(crate) source: &'a SourceMap,
    pub(crate) out: &'a mut Diagnostics,
}

impl Checker<'_> {
    pub(crate) fn push(
        &mut self,
        severity: Severity,
        located: Option<(Position, usize, &str)>,
        path: &str,
        code: &'static str,
        message: String,
        help: String,
    ) {
        let (position, width) =
            located.map_or((Position { line: 0, column: 0 }, 1), |l| (l.0, l.1));
        let mut diagnostic = at_position(
            Place {
                file: self.source.file(),
                text: self.source.text(),
                position,
                width,
                path,
            },
            code,
            message,
            Some(help),
        );
        diagnostic.severity = severity;
        self.out.push(diagnostic);
    }

    /// An error about the value at `path` (or its nearest existing ancestor).
    pub(crate) fn error(&mut self, path: &str, code: &'static str, message: String, help: String) {
        let located = self.source.locate(path);
        self.push(Severity::Error, located, path, code, message, help);
    }

    /// Something that deserves attention but does not stop the release.
    pub(crate) fn warning(
        &mut self,
        path: &str,
        code: &'static str,
        message: String,
        help: String,
    ) {
        let located = self.source.locate(path);
        self.push(Severity::Warning, located, path, code, message, help);
    }

    /// An error about the key at `path` (a field that should not be there).
    pub(crate) fn error_key(
        &mut self,
        path: &str,
        code: &'static str,
        message: String,
        help: String,
    ) {
        let located = self.source.locate_key(path);
        self.push(Severity::Error, located, path, code, message, help);
    }

    /// [`Checker::error_key`] for a key whose value is a secret: the snippet shows the key, never the
    /// value, since diagnostics are printed to the pipeline log.
    pub(crate) fn error_key_hiding_value(
        &mut self,
        path: &str,
        code: &'static str,
        message: String,
        help: String,
    ) {
        let located = self.source.locate_key(path);
        let mut hidden = Diagnostics::default();
        Checker {
            source: self.source,
            out: &mut hidden,
        }
        .push(Severity::Error, located, path, code, message, help);
        for mut diagnostic in hidden.into_iter() {
            diagnostic.source_line =
                diagnostic
                    .source_line
                    .map(|line| match line.split_once(':') {
                        Some((key, _)) => format!("{key}: <hidden>"),
                        None => String::new(),
                    });
            self.out.push(diagnostic);
        }
    }
}

/// Splits a path written by `join_key`/`join_index` into its segments.
pub(crate) fn segments(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("[\"") {
            // A quoted key: find the closing `"]` that is not escaped.
            let mut end = 0;
            let bytes = after.as_bytes();
            while end < bytes.len() {
                if bytes[end] == b'\\' {
                    end += 2;
                    continue;
                }
                if bytes[end] == b'"' {
                    break;
                }
                end += 1;
            }
            out.push(after[..end.min(after.len())].to_string());
            rest = after.get(end + 2..).unwrap_or("");
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']').unwrap_or(after.len());
            out.push(after[..end].to_string());
            rest = after.get(end + 1..).unwrap_or("");
        } else {
            let rest_trimmed = rest.strip_prefix('.').unwrap_or(rest);
            let end = rest_trimmed.find(['.', '[']).unwrap_or(rest_trimmed.len());
            out.push(rest_trimmed[..end].to_string());
            rest = &rest_trimmed[end..];
        }
    }
    out
}

/// The closest candidate within a small edit distance, for "did you mean".
pub(crate) fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1) + 1;
    candidates
        .iter()
        .map(|c| (edit_distance(&word.to_lowercase(), &c.to_lowercase()), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_split_keys_indexes_and_quoted_keys() {
        assert_eq!(
            segments(r#"environments.staging.settings["A.B"]"#),
            ["environments", "staging", "settings", "A.B"]
        );
        assert_eq!(
            segments("stages.staging.hooks[0].run"),
            ["stages", "staging", "hooks", "0", "run"]
        );
    }

    #[test]
    fn did_you_mean_finds_close_words_only() {
        assert_eq!(did_you_mean("rooot", &["root", "exclude"]), Some("root"));
        assert_eq!(did_you_mean("zzz", &["root", "exclude"]), None);
    }
}
