//! Loading `release.yml`: YAML → typed config, with every problem reported as a located diagnostic.

use std::path::Path;
use std::sync::Arc;

use crate::diagnostic::{Diagnostic, Diagnostics, Severity};
use crate::model::ReleaseConfig;
use crate::source::{Position, ScanProblem, SourceMap};
use crate::vars::VariableSource;

/// Larger files are refused before parsing; a release config is a few kilobytes.
const MAX_INPUT_BYTES: usize = 1024 * 1024;

/// How `$(...)` references are treated.
#[derive(Clone, Default)]
pub enum VariableMode {
    /// Check only that references are well formed (for `validate` outside a pipeline).
    #[default]
    SyntaxOnly,
    /// Every reference must resolve through the source, and the loaded config holds the
    /// expanded values (for running a stage).
    Strict(Arc<dyn VariableSource + Send + Sync>),
}

impl std::fmt::Debug for VariableMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VariableMode::SyntaxOnly => f.write_str("SyntaxOnly"),
            VariableMode::Strict(_) => f.write_str("Strict(..)"),
        }
    }
}

/// Options for [`load_file`] and [`load_str`].
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// How variable references are treated.
    pub variables: VariableMode,
}

/// A config that passed every check.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The typed config (with variables expanded in strict mode).
    pub config: ReleaseConfig,
    /// The file's text and the position of every field, for later messages.
    pub source: SourceMap,
    /// Problems that do not stop the release (e.g. a hook that cannot be undone).
    pub warnings: Diagnostics,
}

/// Reads and loads a config file; the file name in diagnostics is `path` as given.
pub fn load_file(path: &Path, opts: &LoadOptions) -> Result<Loaded, Diagnostics> {
    let name = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => load_str(&name, &text, opts),
            Err(_) => Err(whole_file(
                &name,
                "file-not-utf8",
                "the config file is not UTF-8 text".into(),
                "save the file as UTF-8",
            )),
        },
        Err(err) => Err(whole_file(
            &name,
            "file-unreadable",
            format!("cannot read the config file: {err}"),
            "check the path given with `--config` (or the task's `configFile` input)",
        )),
    }
}

/// Loads a config from text; `name` is the file name used in diagnostics.
pub fn load_str(name: &str, text: &str, opts: &LoadOptions) -> Result<Loaded, Diagnostics> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(whole_file(
            name,
            "file-too-large",
            format!(
                "the config file is {} bytes; the limit is {MAX_INPUT_BYTES}",
                text.len()
            ),
            "a release config is a few kilobytes; check that this is the right file",
        ));
    }
    let source = match SourceMap::scan(name, text) {
        Ok(source) => source,
        Err(problem) => return Err(scan_problem(name, text, problem)),
    };
    if source.is_empty() {
        return Err(whole_file(
            name,
            "empty-config",
            "the config file is empty".into(),
            "start with `version: 1`; docs/release-config.md shows a whole config",
        ));
    }
    let mut found = Diagnostics::new();
    let config = match serde_saphyr::from_str_with_options::<ReleaseConfig>(text, saphyr_options())
    {
        Ok(config) => Some(config),
        Err(err) => {
            found.push(crate::validate::serde_diagnostic(&source, &err));
            // serde stops at the first bad name; report the others too.
            crate::validate::check_raw(&source, &mut found);
            crate::validate::check_unknown_fields(&source, &mut found);
            None
        }
    };
    crate::validate::check_variables(&source, &opts.variables, &mut found);
    if let Some(config) = &config {
        crate::validate::check(config, &source, &mut found);
    }
    found.sort_and_dedup();
    if found.has_errors() {
        return Err(found);
    }
    let Some(mut config) = config else {
        return Err(found);
    };
    if let VariableMode::Strict(variables) = &opts.variables
        && let Err(problems) =
            crate::validate::expand_variables(&mut config, &source, variables.as_ref())
    {
        return Err(problems);
    }
    Ok(Loaded {
        config,
        source,
        warnings: found,
    })
}

fn saphyr_options() -> serde_saphyr::Options {
    // Defaults already refuse duplicate keys and cap alias expansion; snippets are rendered by
    // our own diagnostics, so serde-saphyr's are turned off.
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    options
}

fn whole_file(name: &str, code: &'static str, message: String, help: &str) -> Diagnostics {
    std::iter::once(Diagnostic {
        severity: Severity::Error,
        code,
        file: name.to_string(),
        line: 0,
        column: 0,
        path: String::new(),
        message,
        help: Some(help.to_string()),
        source_line: None,
        width: 1,
    })
    .collect()
}

/// Where a diagnostic points.
pub(crate) struct Place<'a> {
    pub(crate) file: &'a str,
    pub(crate) text: &'a str,
    pub(crate) position: Position,
    pub(crate) width: usize,
    pub(crate) path: &'a str,
}

/// Builds a diagnostic at a position, taking the source line from `text`.
pub(crate) fn at_position(
    place: Place<'_>,
    code: &'static str,
    message: String,
    help: Option<String>,
) -> Diagnostic {
    let Place {
        file,
        text,
        position,
        width,
        path,
    } = place;
    Diagnostic {
        severity: Severity::Error,
        code,
        file: file.to_string(),
        line: position.line,
        column: position.column,
        path: path.to_string(),
        message,
        help,
        source_line: text
            .lines()
            .nth(position.line.saturating_sub(1))
            .map(|l| l.trim_end_matches('\r').to_string()),
        width,
    }
}

fn scan_problem(name: &str, text: &str, problem: ScanProblem) -> Diagnostics {
    let diagnostic = match problem {
        ScanProblem::Syntax { position, message } => at_position(
            Place {
                file: name,
                text,
                position,
                width: 1,
                path: "",
            },
            "yaml-syntax",
            format!("this is not valid YAML: {message}"),
            Some("check the indentation and quoting around this place".into()),
        ),
        ScanProblem::TooLarge { position, message } => at_position(
            Place {
                file: name,
                text,
                position,
                width: 1,
                path: "",
            },
            "document-too-large",
            format!("the document is refused: {message}"),
            Some("a release config is small; check that this is the right file".into()),
        ),
    };
    std::iter::once(diagnostic).collect()
}
