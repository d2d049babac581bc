//! serde-saphyr's errors as diagnostics: located by the source map, with a field path, a plain
//! message and a help line.

use super::did_you_mean;
use crate::ConfigError;
use crate::diagnostic::{Diagnostic, Severity};
use crate::load::{Place, at_position};
use crate::source::{Position, SourceMap, parent};

/// The kind of name inside a newtype's message (`invalid slot name `x`: ...`), as a code.
pub(super) fn code_for_message(message: &str) -> &'static str {
    const KINDS: [(&str, &str); 12] = [
        ("invalid slot name", "invalid-slot-name"),
        ("invalid Key Vault name", "invalid-vault-name"),
        ("invalid Key Vault secret name", "invalid-secret-name"),
        ("invalid Key Vault secret version", "invalid-secret-version"),
        ("invalid secret selection", "invalid-secret-selection"),
        ("invalid setting name", "invalid-setting-name"),
        (
            "invalid connection string name",
            "invalid-connection-string-name",
        ),
        (
            "invalid connection string type",
            "invalid-connection-string-type",
        ),
        ("invalid hook name", "invalid-hook-name"),
        ("invalid environment name", "invalid-environment-name"),
        ("invalid duration", "invalid-duration"),
        ("unsupported config version", "unsupported-version"),
    ];
    KINDS
        .iter()
        .find(|(prefix, _)| message.starts_with(prefix))
        .map_or("invalid-value", |(_, code)| code)
}

pub(super) fn help_for_code(code: &str) -> String {
    match code {
        "invalid-slot-name" => "App Service slot names are like `staging` or `blue-2`".into(),
        "invalid-vault-name" => "use the vault's name as in `<name>.vault.azure.net`".into(),
        "invalid-secret-name" => {
            "Key Vault secret names allow only letters, digits and `-`; the app setting \
             name (the key) may use `__`"
                .into()
        }
        "invalid-secret-version" => "omit the version to use the latest, or copy the 32-digit \
                                     version from Key Vault"
            .into(),
        "invalid-secret-selection" => "`select: '*'` takes every secret of the vault; \
                                       `select: {prefix: app-}` those whose name starts with `app-`"
            .into(),
        "invalid-setting-name" => {
            "app setting names are like `APP_ENV` or `Logging__LogLevel__Default`".into()
        }
        "invalid-connection-string-name" => {
            "connection string names are like `Db` or `Cache_Primary`; the app sees them with \
             their type's prefix, e.g. `SQLAZURECONNSTR_Db`"
                .into()
        }
        "invalid-connection-string-type" => format!(
            "write the type as App Service names it: {}",
            crate::ConnectionStringType::allowed()
        ),
        "invalid-hook-name" | "invalid-environment-name" => {
            "names start with a letter, then letters, digits, `_` and `-`, e.g. `migrate`".into()
        }
        "invalid-duration" => "write durations like `30s`, `5m` or `1h30m`".into(),
        "unsupported-version" => "set `version: 1`".into(),
        _ => "see docs/config-reference.md for the allowed values".into(),
    }
}

/// A person's word for a Rust scalar type.
fn type_name(ty: &str) -> &str {
    match ty {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number",
        "i8" | "i16" | "i32" | "i64" | "isize" => "an integer",
        "f32" | "f64" => "a number",
        "bool" => "`true` or `false`",
        other => other,
    }
}

/// Drops the ` at line N, column M` that serde-saphyr appends; the diagnostic shows it already.
fn strip_location(text: &str) -> String {
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text.to_string(),
    }
}

/// Turns a serde-saphyr error into a diagnostic at the path it happened.
pub(crate) fn serde_diagnostic(source: &SourceMap, err: &serde_saphyr::Error) -> Diagnostic {
    use serde_saphyr::Error as E;
    let mut position = err
        .location()
        .map(|l| Position {
            line: usize::try_from(l.line()).unwrap_or(0),
            column: usize::try_from(l.column()).unwrap_or(0),
        })
        .unwrap_or(Position { line: 0, column: 0 });
    let inner = match err.without_snippet() {
        E::AliasError { error, .. } => error.as_ref(),
        other => other,
    };
    let mut path = source.path_at(position).unwrap_or_default().to_string();
    let (code, message, help): (&'static str, String, String) = match inner {
        E::SerdeUnknownField {
            field, expected, ..
        } => {
            let help = match did_you_mean(field, expected) {
                Some(best) => format!("did you mean `{best}`?"),
                None if expected.is_empty() => "remove it".to_string(),
                None => format!("remove it; the fields here are: {}", expected.join(", ")),
            };
            ("unknown-field", format!("unknown field `{field}`"), help)
        }
        E::SerdeUnknownVariant {
            variant, expected, ..
        } => {
            let help = match did_you_mean(variant, expected) {
                Some(best) => format!("did you mean `{best}`? Allowed: {}", expected.join(", ")),
                None => format!("use one of: {}", expected.join(", ")),
            };
            ("unknown-value", format!("unknown value `{variant}`"), help)
        }
        E::SerdeMissingField { field, .. } => {
            // serde-saphyr reports a missing field somewhere inside the mapping that lacks it;
            // point at that mapping's own key instead.
            let container = match source.container_at(position) {
                Some(container) => Some(container.to_string()),
                None => source
                    .path_at(position)
                    .and_then(parent)
                    .map(str::to_string),
            };
            if let Some(container) = container {
                path = container;
                if let Some((at, _, _)) = source.locate_key(&path).filter(|_| !path.is_empty()) {
                    position = at;
                }
            }
            let at = if path.is_empty() {
                "at the top level".to_string()
            } else {
                format!("under `{path}`")
            };
            (
                "missing-field",
                format!("missing field `{field}`"),
                format!("add `{field}:` {at}"),
            )
        }
        E::DuplicateMappingKey { key, .. } => (
            "duplicate-key",
            match key {
                Some(key) => format!("duplicate key `{key}`"),
                None => "duplicate key".to_string(),
            },
            "a key may appear only once in a mapping; remove or merge the repeats".into(),
        ),
        E::SerdeInvalidType {
            unexpected,
            expected,
            ..
        } => (
            "invalid-type",
            format!("expected {expected}, found {unexpected}"),
            "see docs/config-reference.md for this field's type".into(),
        ),
        E::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => (
            "invalid-value",
            format!("invalid value {unexpected}, expected {expected}"),
            "see docs/config-reference.md for this field's allowed values".into(),
        ),
        E::Budget { breach, .. } => (
            "document-too-large",
            format!("the document is refused because it expands too much ({breach:?})"),
            "a release config does not need anchors that expand to thousands of nodes; \
             write the values out"
                .into(),
        ),
        E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. } => (
            "document-too-large",
            "the document is refused because its aliases expand too much".into(),
            "a release config does not need anchors that expand to thousands of nodes; \
             write the values out"
                .into(),
        ),
        E::InvalidScalar { ty, .. } => (
            "invalid-type",
            match source.scalar(&path) {
                Some(found) => format!("expected {}, found `{found}`", type_name(ty)),
                None => format!("expected {}", type_name(ty)),
            },
            "see docs/config-reference.md for this field's type".into(),
        ),
        E::Unexpected { expected, .. } => (
            "invalid-type",
            format!(
                "expected {} here",
                match *expected {
                    "mapping start" => "a mapping (`key: value` entries)",
                    "sequence start" => "a list (`- item` entries)",
                    other => other,
                }
            ),
            "see docs/config-reference.md for this field's type".into(),
        ),
        E::Message { msg, .. } => {
            let code = code_for_message(msg);
            (code, msg.clone(), help_for_code(code))
        }
        other => {
            let text = strip_location(&other.to_string());
            let code = code_for_message(&text);
            (code, text, help_for_code(code))
        }
    };
    let width = source.width_at(position);
    let mut diagnostic = at_position(
        Place {
            file: source.file(),
            text: source.text(),
            position,
            width,
            path: &path,
        },
        code,
        message,
        Some(help),
    );
    if diagnostic.line == 0 {
        diagnostic.source_line = None;
    }
    diagnostic
}

impl From<ConfigError> for Diagnostic {
    /// A problem with no place in a file (e.g. from [`crate::vars::expand`] on a bare string).
    fn from(err: ConfigError) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code: code_for_message(&err.to_string()),
            file: String::new(),
            line: 0,
            column: 0,
            path: String::new(),
            message: err.to_string(),
            help: None,
            source_line: None,
            width: 1,
        }
    }
}
