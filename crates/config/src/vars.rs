//! Variable references in config values: `$(Build.BuildId)`, `$(env.NAME)` and `$(timestamp)`.
//!
//! The syntax follows Azure Pipelines macros: `$(` a name `)`. Only text that looks like a
//! variable name is a reference, so shell command substitutions such as `$(date +%s)` in hooks stay
//! as they are; `$$(` writes a literal `$(`.

use std::collections::BTreeMap;

use crate::ConfigError;

/// One reference found in a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A pipeline variable such as `Build.BuildId`.
    Pipeline(String),
    /// A process environment variable: `$(env.NAME)`.
    Environment(String),
    /// The current UTC time as `YYYYMMDDhhmmss`: `$(timestamp)`.
    Timestamp,
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reference::Pipeline(name) => write!(f, "$({name})"),
            Reference::Environment(name) => write!(f, "$(env.{name})"),
            Reference::Timestamp => f.write_str("$(timestamp)"),
        }
    }
}

/// Where variable values come from when a stage runs.
pub trait VariableSource {
    /// A process environment variable.
    fn environment_variable(&self, name: &str) -> Option<String>;

    /// A pipeline variable. The agent exposes `Build.BuildId` as the environment variable
    /// `BUILD_BUILDID`, which is what the default looks up.
    fn pipeline_variable(&self, name: &str) -> Option<String> {
        self.environment_variable(&agent_environment_name(name))
    }

    /// The current UTC time as `YYYYMMDDhhmmss`.
    fn timestamp(&self) -> String {
        utc_timestamp(std::time::SystemTime::now())
    }
}

/// The environment variable the agent uses for a pipeline variable: upper case, `.` → `_`.
pub fn agent_environment_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c == '.' {
                '_'
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect()
}

/// Formats a time as `YYYYMMDDhhmmss` in UTC (a valid image tag).
pub fn utc_timestamp(time: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(time)
        .to_string()
        .chars()
        .filter(char::is_ascii_digit)
        .collect()
}

/// Variables from this process's environment (what the agent gives a task).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnvironment;

impl VariableSource for ProcessEnvironment {
    fn environment_variable(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// Variables from a fixed map of environment variables, with a fixed timestamp (tests, rehearsals).
#[derive(Debug, Clone, Default)]
pub struct MapVariables {
    /// Environment variable name → value (pipeline variables use the agent's names, e.g. `BUILD_BUILDID`).
    pub environment: BTreeMap<String, String>,
    /// What `$(timestamp)` expands to.
    pub timestamp: String,
}

impl VariableSource for MapVariables {
    fn environment_variable(&self, name: &str) -> Option<String> {
        self.environment.get(name).cloned()
    }

    fn timestamp(&self) -> String {
        self.timestamp.clone()
    }
}

/// A piece of a value: literal text or a reference, with its byte offset in the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal text (with `$$(` already turned into `$(`).
    Text(String),
    /// A reference and the byte offset of its `$(`.
    Reference(Reference, usize),
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

fn classify(name: &str, text: &str) -> Result<Reference, ConfigError> {
    if name == "timestamp" {
        return Ok(Reference::Timestamp);
    }
    if let Some(env) = name.strip_prefix("env.") {
        if env.is_empty() || env.contains('.') || env.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(ConfigError::InvalidReference {
                text: text.to_string(),
                reason: format!("`$({name})` does not name an environment variable"),
            });
        }
        return Ok(Reference::Environment(env.to_string()));
    }
    if name.starts_with('.') || name.ends_with('.') || name.contains("..") {
        return Err(ConfigError::InvalidReference {
            text: text.to_string(),
            reason: format!("`$({name})` is not a valid variable name"),
        });
    }
    Ok(Reference::Pipeline(name.to_string()))
}

/// Splits a value into literal text and references; fails on an unclosed or empty reference.
pub fn parse(text: &str) -> Result<Vec<Piece>, (usize, ConfigError)> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(at) = rest.find('$') {
        literal.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$$(") {
            literal.push_str("$(");
            offset += at + 3;
            rest = after;
            continue;
        }
        let Some(inner) = tail.strip_prefix("$(") else {
            literal.push('$');
            offset += at + 1;
            rest = &tail[1..];
            continue;
        };
        let name_len = inner.len() - inner.trim_start_matches(is_name_char).len();
        let name = &inner[..name_len];
        let after_name = &inner[name_len..];
        let start = offset + at;
        if after_name.starts_with(')') && !name.is_empty() {
            let reference = classify(name, text).map_err(|e| (start, e))?;
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Reference(reference, start));
            let used = 2 + name_len + 1;
            offset += at + used;
            rest = &tail[used..];
        } else if after_name.is_empty() {
            return Err((
                start,
                ConfigError::InvalidReference {
                    text: text.to_string(),
                    reason: "`$(` is not closed by `)`".into(),
                },
            ));
        } else if name.is_empty() && after_name.starts_with(')') {
            return Err((
                start,
                ConfigError::InvalidReference {
                    text: text.to_string(),
                    reason: "`$()` names no variable".into(),
                },
            ));
        } else {
            // Not a variable name (e.g. a shell `$(date +%s)`): keep it as text.
            literal.push_str("$(");
            offset += at + 2;
            rest = inner;
        }
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(pieces)
}

/// Looks a reference up.
pub fn lookup(reference: &Reference, source: &dyn VariableSource) -> Result<String, ConfigError> {
    let value = match reference {
        Reference::Pipeline(name) => source.pipeline_variable(name),
        Reference::Environment(name) => source.environment_variable(name),
        Reference::Timestamp => Some(source.timestamp()),
    };
    value.ok_or_else(|| ConfigError::UnknownVariable {
        name: match reference {
            Reference::Pipeline(name) => name.clone(),
            Reference::Environment(name) => format!("env.{name}"),
            Reference::Timestamp => "timestamp".into(),
        },
    })
}

/// Expands every reference in `text`.
pub fn expand(text: &str, source: &dyn VariableSource) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    for piece in parse(text).map_err(|(_, e)| e)? {
        match piece {
            Piece::Text(literal) => out.push_str(&literal),
            Piece::Reference(reference, _) => out.push_str(&lookup(&reference, source)?),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> MapVariables {
        MapVariables {
            environment: [("BUILD_BUILDID".to_string(), "42".to_string())]
                .into_iter()
                .collect(),
            timestamp: "20261122080000".into(),
        }
    }

    #[test]
    fn expands_pipeline_env_and_timestamp() {
        let out = expand("v$(Build.BuildId)-$(timestamp)", &vars());
        assert_eq!(out.ok().as_deref(), Some("v42-20261122080000"));
    }

    #[test]
    fn shell_substitution_and_escape_stay_literal() {
        let out = expand("echo $(date +%s) $$(Build.BuildId) $HOME", &vars());
        assert_eq!(
            out.ok().as_deref(),
            Some("echo $(date +%s) $(Build.BuildId) $HOME")
        );
    }

    #[test]
    fn unknown_and_unclosed_are_errors() {
        assert!(matches!(
            expand("$(Build.Missing)", &vars()),
            Err(ConfigError::UnknownVariable { name }) if name == "Build.Missing"
        ));
        assert!(matches!(parse("x $(Build.BuildId"), Err((2, _))));
        assert!(matches!(parse("$()"), Err((0, _))));
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics_and_plain_text_is_kept(text in "\\PC{0,80}") {
            let _ = expand(&text, &vars());
            if !text.contains('$') {
                proptest::prop_assert_eq!(expand(&text, &vars()).ok(), Some(text.clone()));
            }
        }
    }

    #[test]
    fn agent_names_are_upper_case_with_underscores() {
        assert_eq!(agent_environment_name("Build.BuildId"), "BUILD_BUILDID");
        assert_eq!(utc_timestamp(std::time::UNIX_EPOCH), "19700101000000");
    }
}
