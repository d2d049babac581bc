//! Variable references in the document: syntax in every mode, resolution in strict mode, and
//! expansion into the loaded config.

use super::{Checker, segments};
use crate::diagnostic::{Diagnostics, Severity};
use crate::load::VariableMode;
use crate::model::ReleaseConfig;
use crate::source::{Position, SourceMap, join_index, join_key};
use crate::vars::{self, Piece, VariableSource};

/// Whether a scalar at `path` may hold `$(...)` references.
fn holds_variables(path: &str) -> bool {
    let segments = segments(path);
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    matches!(
        s.as_slice(),
        ["app", "name" | "resourceGroup" | "subscription"]
            | ["targets", _, "app" | "resourceGroup" | "subscription"]
            | ["image", "repository" | "tag"]
            | ["environments", _, "settings", _]
            | ["environments", _, "connectionStrings", _, "value"]
            | ["environments", _, "registry", "credentials", "username"]
            | ["stages", _, "hooks", _, "run" | "undo"]
            | ["stages", _, "hooks", _, "env", _]
    )
}

/// Points at the reference inside the scalar when the source line shows it verbatim.
fn reference_position(source: &SourceMap, at: Position, raw: &str) -> Position {
    if let Some(line) = source.line(at.line) {
        let from: usize = line
            .char_indices()
            .nth(at.column.saturating_sub(1))
            .map_or(line.len(), |(i, _)| i);
        if let Some(found) = line[from..].find(raw) {
            return Position {
                line: at.line,
                column: line[..from + found].chars().count() + 1,
            };
        }
    }
    at
}

/// Checks every `$(...)` reference: syntax always, resolution in strict mode.
pub(crate) fn check_variables(source: &SourceMap, mode: &VariableMode, out: &mut Diagnostics) {
    let mut c = Checker { source, out };
    let mut found = Vec::new();
    let mut unexpanded = Vec::new();
    for (path, text, at) in source.scalars() {
        if !holds_variables(path) {
            // A reference where none is expanded is almost certainly a mistake: say so.
            if let Ok(pieces) = vars::parse(text)
                && let Some(Piece::Reference(reference, offset)) =
                    pieces.iter().find(|p| matches!(p, Piece::Reference(..)))
            {
                let raw = &text[*offset..];
                let shown = reference.to_string();
                let raw = raw.get(..shown.len()).unwrap_or(raw);
                unexpanded.push((
                    reference_position(source, at, raw),
                    shown.chars().count(),
                    path.to_string(),
                    format!("`{shown}` is not expanded in this field"),
                ));
            }
            continue;
        }
        match vars::parse(text) {
            Err((offset, err)) => {
                let raw: String = text[offset..].chars().take(2).collect();
                let position = reference_position(source, at, &text[offset..offset + raw.len()]);
                found.push((
                    position,
                    raw.chars().count(),
                    path.to_string(),
                    "invalid-variable-reference",
                    err.to_string(),
                    "write `$(Name.Of.Variable)`, `$(env.NAME)` or `$(timestamp)`; write `$$(` for \
                     a literal `$(`"
                        .to_string(),
                ));
            }
            Ok(pieces) => {
                let VariableMode::Strict(variables) = mode else {
                    continue;
                };
                for piece in pieces {
                    let Piece::Reference(reference, _) = piece else {
                        continue;
                    };
                    if let Err(err) = vars::lookup(&reference, variables.as_ref()) {
                        let raw = reference.to_string();
                        let help = match &reference {
                            vars::Reference::Pipeline(name) => format!(
                                "define the pipeline variable `{name}` (the task sees it as \
                                 the environment variable `{}`), or fix the name",
                                vars::agent_environment_name(name)
                            ),
                            _ => "set the environment variable, or fix the name".to_string(),
                        };
                        found.push((
                            reference_position(source, at, &raw),
                            raw.chars().count(),
                            path.to_string(),
                            "unknown-variable",
                            err.to_string(),
                            help,
                        ));
                    }
                }
            }
        }
    }
    for (position, width, path, message) in unexpanded {
        c.push(
            Severity::Warning,
            Some((position, width, &path)),
            &path,
            "variable-not-expanded",
            message,
            "variables are expanded only in `app.name`, `app.resourceGroup`, `app.subscription`, \
             targets' `app`, `resourceGroup` and `subscription`, \
             `image.repository`, `image.tag`, settings, connection strings' `value` and hooks' \
             `run`, `undo` and `env`; \
             write the value out, or `$$(` for a literal `$(`"
                .into(),
        );
    }
    for (position, width, path, code, message, help) in found {
        c.push(
            Severity::Error,
            Some((position, width, &path)),
            &path,
            code,
            message,
            help,
        );
    }
}

/// Replaces every reference in the config with its value (strict mode, after checking).
pub(crate) fn expand_variables(
    config: &mut ReleaseConfig,
    source: &SourceMap,
    variables: &(dyn VariableSource + Send + Sync),
) -> Result<(), Diagnostics> {
    let mut problems = Diagnostics::new();
    let mut expand = |path: &str, value: &mut String| match vars::expand(value, variables) {
        Ok(expanded) => *value = expanded,
        Err(err) => {
            let mut c = Checker {
                source,
                out: &mut problems,
            };
            c.error(
                path,
                "unknown-variable",
                err.to_string(),
                "define the variable, or fix the name".into(),
            );
        }
    };
    expand("app.name", &mut config.app.name);
    expand("app.resourceGroup", &mut config.app.resource_group);
    if let Some(subscription) = &mut config.app.subscription {
        expand("app.subscription", subscription);
    }
    for (index, target) in config.targets.iter_mut().enumerate() {
        let base = join_index("targets", index);
        expand(&format!("{base}.app"), &mut target.app);
        expand(&format!("{base}.resourceGroup"), &mut target.resource_group);
        if let Some(subscription) = &mut target.subscription {
            expand(&format!("{base}.subscription"), subscription);
        }
    }
    if let Some(image) = &mut config.image {
        expand("image.repository", &mut image.repository);
        expand("image.tag", &mut image.tag);
    }
    for (name, environment) in &mut config.environments {
        let base = join_key(&join_key("environments", name.as_str()), "settings");
        for (setting, value) in &mut environment.settings {
            expand(&join_key(&base, setting.as_str()), value);
        }
        let base = join_key(
            &join_key("environments", name.as_str()),
            "connectionStrings",
        );
        for (cs_name, cs) in &mut environment.connection_strings {
            if let Some(value) = &mut cs.value {
                expand(
                    &format!("{}.value", join_key(&base, cs_name.as_str())),
                    value,
                );
            }
        }
        if let Some(credentials) = environment
            .registry
            .as_mut()
            .and_then(|r| r.credentials.as_mut())
        {
            expand(
                &format!(
                    "{}.registry.credentials.username",
                    join_key("environments", name.as_str())
                ),
                &mut credentials.username,
            );
        }
    }
    for (stage, hooks) in [
        ("staging", &mut config.stages.staging.hooks),
        ("production", &mut config.stages.production.hooks),
    ] {
        for (index, hook) in hooks.iter_mut().enumerate() {
            let base = join_index(&format!("stages.{stage}.hooks"), index);
            expand(&format!("{base}.run"), &mut hook.run);
            if let Some(undo) = &mut hook.undo {
                expand(&format!("{base}.undo"), undo);
            }
            for (key, value) in &mut hook.env {
                expand(&join_key(&format!("{base}.env"), key), value);
            }
        }
    }
    if problems.is_empty() {
        super::check_expanded_names(
            config,
            &mut Checker {
                source,
                out: &mut problems,
            },
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}
