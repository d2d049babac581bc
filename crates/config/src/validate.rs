//! Semantic checks: rules that span fields, each reported with its own message, place and help;
//! plus the translation of parse errors and variable problems into located diagnostics.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::ConfigError;
use crate::diagnostic::{Diagnostic, Diagnostics, Severity};
use crate::load::{Place, VariableMode, at_position};
use crate::model::{AppKind, HealthCheck, Hook, HookLocation, ReleaseConfig, RollbackMode};
use crate::source::{Position, SourceMap, join_index, join_key, parent};
use crate::vars::{self, Piece, VariableSource};

/// Collects diagnostics located through the source map.
struct Checker<'a> {
    source: &'a SourceMap,
    out: &'a mut Diagnostics,
}

impl Checker<'_> {
    fn push(
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
    fn error(&mut self, path: &str, code: &'static str, message: String, help: String) {
        let located = self.source.locate(path);
        self.push(Severity::Error, located, path, code, message, help);
    }

    /// Something that deserves attention but does not stop the release.
    fn warning(&mut self, path: &str, code: &'static str, message: String, help: String) {
        let located = self.source.locate(path);
        self.push(Severity::Warning, located, path, code, message, help);
    }

    /// An error about the key at `path` (a field that should not be there).
    fn error_key(&mut self, path: &str, code: &'static str, message: String, help: String) {
        let located = self.source.locate_key(path);
        self.push(Severity::Error, located, path, code, message, help);
    }
}

/// Runs every semantic check and appends what it finds.
pub(crate) fn check(config: &ReleaseConfig, source: &SourceMap, out: &mut Diagnostics) {
    let mut c = Checker { source, out };
    check_app(config, &mut c);
    check_environments(config, &mut c);
    check_stages(config, &mut c);
}

fn is_native_stack(stack: &str) -> bool {
    let runtime = stack.split('|').next().unwrap_or_default();
    runtime.eq_ignore_ascii_case("python") || runtime.eq_ignore_ascii_case("node")
}

fn check_app(config: &ReleaseConfig, c: &mut Checker<'_>) {
    let app = &config.app;
    let blank_command = app
        .startup_command
        .as_deref()
        .is_none_or(|command| command.trim().is_empty());
    match app.kind {
        AppKind::Code => {
            if let Some(stack) = &app.stack
                && is_native_stack(stack)
                && blank_command
            {
                let path = if app.startup_command.is_some() {
                    "app.startupCommand"
                } else {
                    "app.stack"
                };
                c.error(
                    path,
                    "startup-command-required",
                    format!("a code app on the `{stack}` stack needs a startup command"),
                    "add `startupCommand:` under `app`, e.g. `startupCommand: python3 app.py`; \
                     without one App Service cannot start a native Python or Node app"
                        .into(),
                );
            }
            if config.package.is_none() {
                c.error(
                    "app.kind",
                    "package-required",
                    "a code app needs a `package` section saying what to deploy".into(),
                    "add `package:` with `root:` (the folder to zip), or set `kind: container` \
                     and add `image:`"
                        .into(),
                );
            }
            if config.image.is_some() {
                c.error_key(
                    "image",
                    "image-not-allowed",
                    "a code app is deployed from `package`, not `image`".into(),
                    "remove `image:`, or set `app.kind: container`".into(),
                );
            }
        }
        AppKind::Container => {
            if app.startup_command.is_some() {
                c.error_key(
                    "app.startupCommand",
                    "startup-command-forbidden",
                    "a container app must not have a startup command".into(),
                    "remove `startupCommand`: the image's entry point starts the container, and \
                     a startup command would override it"
                        .into(),
                );
            }
            if config.image.is_none() {
                c.error(
                    "app.kind",
                    "image-required",
                    "a container app needs an `image` section saying what to roll out".into(),
                    "add `image:` with `repository:` and `tag:`, or set `kind: code` and add \
                     `package:`"
                        .into(),
                );
            }
            if config.package.is_some() {
                c.error_key(
                    "package",
                    "package-not-allowed",
                    "a container app is rolled out from `image`, not `package`".into(),
                    "remove `package:`, or set `app.kind: code`".into(),
                );
            }
        }
    }
    if let Some(image) = &config.image
        && image.tag.trim().is_empty()
    {
        c.error(
            "image.tag",
            "empty-image-tag",
            "the image tag is empty".into(),
            "set `tag:` to the tag the build pushed, e.g. `$(Build.BuildId)`".into(),
        );
    }
}

fn check_environments(config: &ReleaseConfig, c: &mut Checker<'_>) {
    for (name, environment) in &config.environments {
        let base = join_key("environments", name.as_str());
        if environment.create_slot && environment.slot.is_production() {
            c.error(
                &format!("{base}.createSlot"),
                "create-production-slot",
                "the production slot always exists and cannot be created".into(),
                "remove `createSlot`, or bind this environment to a non-production slot".into(),
            );
        }
        if let Some(secrets) = &environment.secrets {
            for setting in secrets.map.keys() {
                if environment.settings.contains_key(setting) {
                    c.error_key(
                        &join_key(&format!("{base}.secrets.map"), setting.as_str()),
                        "setting-and-secret",
                        format!("`{setting}` is both a plain setting and a secret"),
                        format!("keep `{setting}` in either `settings` or `secrets.map`, not both"),
                    );
                }
            }
        }
    }
}

fn known_environment(config: &ReleaseConfig, path: &str, name: &str, c: &mut Checker<'_>) -> bool {
    if config.environment(name).is_some() {
        return true;
    }
    let names: Vec<&str> = config.environments.keys().map(|n| n.as_str()).collect();
    let help = match did_you_mean(name, &names) {
        Some(best) => format!(
            "did you mean `{best}`? Defined environments: {}",
            names.join(", ")
        ),
        None if names.is_empty() => "define it under `environments`".into(),
        None => format!(
            "define it under `environments`, or use one of: {}",
            names.join(", ")
        ),
    };
    c.error(
        path,
        "unknown-environment",
        format!("environment `{name}` is not defined"),
        help,
    );
    false
}

fn check_stages(config: &ReleaseConfig, c: &mut Checker<'_>) {
    let staging = &config.stages.staging;
    if known_environment(
        config,
        "stages.staging.environment",
        staging.environment.as_str(),
        c,
    ) && let Some(environment) = config.environment(staging.environment.as_str())
        && environment.slot.is_production()
    {
        c.error(
            "stages.staging.environment",
            "staging-on-production",
            format!(
                "the staging stage deploys to environment `{}`, which is the production slot",
                staging.environment
            ),
            "bind the staging environment to a non-production slot, e.g. `slot: staging`".into(),
        );
    }
    check_hooks(config, "stages.staging.hooks", &staging.hooks, c);
    check_health("stages.staging.healthCheck", &staging.health_check, true, c);

    let production = &config.stages.production;
    if known_environment(
        config,
        "stages.production.environment",
        production.environment.as_str(),
        c,
    ) && let Some(environment) = config.environment(production.environment.as_str())
        && environment
            .slot
            .as_str()
            .eq_ignore_ascii_case(production.source_slot.as_str())
    {
        c.error(
            "stages.production.sourceSlot",
            "swap-same-slot",
            format!(
                "the swap source and target are both slot `{}`",
                environment.slot
            ),
            format!(
                "set `sourceSlot` to the slot that was staged (e.g. `staging`); environment `{}` \
                 is the swap target",
                production.environment
            ),
        );
    }
    check_hooks(config, "stages.production.hooks", &production.hooks, c);
    let watch = &production.watch;
    check_positive("stages.production.watch.duration", watch.duration, c);
    check_health(
        "stages.production.watch.healthCheck",
        &watch.health_check,
        false,
        c,
    );
    if !watch.duration.is_zero()
        && !watch.health_check.interval.is_zero()
        && watch.duration <= watch.health_check.interval
    {
        c.error(
            "stages.production.watch.duration",
            "watch-shorter-than-interval",
            format!(
                "the watch lasts {} but probes every {}, so it would not probe at all",
                watch.duration, watch.health_check.interval
            ),
            "make `watch.duration` longer than `watch.healthCheck.interval`".into(),
        );
    }
    if watch.max_failures == 0 {
        c.error(
            "stages.production.watch.maxFailures",
            "max-failures-zero",
            "`maxFailures` is 0, so no probe could ever fail the watch".into(),
            "set `maxFailures` to the number of failed probes that means production is \
             unhealthy, e.g. 3"
                .into(),
        );
    }

    if production.rollback == RollbackMode::Manual && config.stages.rollback.is_none() {
        c.warning(
            "stages.production.rollback",
            "manual-rollback-without-stage",
            "rollback is manual but no `rollback` stage is configured".into(),
            "add `stages.rollback` so that a failed release can be rolled back by running the \
             rollback stage"
                .into(),
        );
    }
    if let Some(rollback) = &config.stages.rollback {
        known_environment(
            config,
            "stages.rollback.environment",
            rollback.environment.as_str(),
            c,
        );
        if let Some(health) = &rollback.health_check {
            check_health("stages.rollback.healthCheck", health, true, c);
        }
    }
}

fn check_hooks(config: &ReleaseConfig, base: &str, hooks: &[Hook], c: &mut Checker<'_>) {
    let mut seen = BTreeSet::new();
    for (index, hook) in hooks.iter().enumerate() {
        let path = join_index(base, index);
        if !seen.insert(hook.name.as_str()) {
            c.error(
                &format!("{path}.name"),
                "duplicate-hook-name",
                format!("two hooks in this stage are named `{}`", hook.name),
                "give every hook in a stage its own name; the journal records hooks by name".into(),
            );
        }
        if hook.run.trim().is_empty() {
            c.error(
                &format!("{path}.run"),
                "empty-hook-command",
                format!("hook `{}` has an empty `run` command", hook.name),
                "write the command to run, e.g. `python3 migrate.py up`".into(),
            );
        }
        if hook.where_ == HookLocation::Slot && config.app.kind == AppKind::Container {
            let where_path = format!("{path}.where");
            let located = if c.source.contains(&where_path) {
                where_path
            } else {
                format!("{path}.name")
            };
            c.error(
                &located,
                "slot-hook-needs-code-app",
                format!(
                    "hook `{}` runs in the slot, which needs a code app (Kudu runs commands next \
                     to the deployed files)",
                    hook.name
                ),
                "set `where: agent` to run it on the pipeline agent".into(),
            );
        }
        check_positive(&format!("{path}.timeout"), hook.timeout, c);
    }
}

fn check_positive(path: &str, duration: crate::Duration, c: &mut Checker<'_>) {
    if duration.is_zero() {
        c.error(
            path,
            "duration-not-positive",
            "this duration is zero".into(),
            "durations must be positive, e.g. `30s` or `5m`".into(),
        );
    }
}

fn check_health(base: &str, health: &HealthCheck, gate: bool, c: &mut Checker<'_>) {
    if !health.path.starts_with('/') {
        c.error(
            &format!("{base}.path"),
            "health-path-relative",
            format!(
                "the health check path `{}` does not start with `/`",
                health.path
            ),
            "write the path from the site root, e.g. `/health`".into(),
        );
    }
    if health.statuses.is_empty() {
        c.error(
            &format!("{base}.statuses"),
            "no-healthy-status",
            "no HTTP status counts as healthy".into(),
            "list the healthy statuses, e.g. `statuses: [200]`".into(),
        );
    }
    for (index, status) in health.statuses.iter().enumerate() {
        if !(100..=599).contains(status) {
            c.error(
                &join_index(&format!("{base}.statuses"), index),
                "invalid-status",
                format!("{status} is not an HTTP status code"),
                "HTTP status codes are between 100 and 599".into(),
            );
        }
    }
    check_positive(&format!("{base}.interval"), health.interval, c);
    if !gate {
        return;
    }
    check_positive(&format!("{base}.timeout"), health.timeout, c);
    if health.successes == 0 {
        c.error(
            &format!("{base}.successes"),
            "successes-zero",
            "`successes` is 0, so the gate would pass without probing".into(),
            "set how many consecutive healthy probes pass the gate, e.g. 3".into(),
        );
    }
    if !health.timeout.is_zero() && !health.interval.is_zero() && health.timeout <= health.interval
    {
        c.error(
            &format!("{base}.timeout"),
            "timeout-not-above-interval",
            format!(
                "the health check timeout ({}) does not exceed its interval ({})",
                health.timeout, health.interval
            ),
            "make `timeout` longer than `interval` so the gate can probe more than once".into(),
        );
    }
}

/// What a name or duration at some path must satisfy, checked on the raw document.
type RawCheck = fn(&str) -> Result<(), ConfigError>;

/// The checker for a key (`true`) or scalar value (`false`) at a path, if any.
fn raw_check(segments: &[&str], is_key: bool) -> Option<RawCheck> {
    let check: RawCheck = match (is_key, segments) {
        (true, ["environments", _]) => |t| crate::EnvironmentName::new(t).map(|_| ()),
        (true, ["environments", _, "settings", _] | ["environments", _, "secrets", "map", _]) => {
            |t| crate::SettingName::new(t).map(|_| ())
        }
        (false, ["environments", _, "slot"] | ["stages", "production", "sourceSlot"]) => {
            |t| crate::SlotName::new(t).map(|_| ())
        }
        (false, ["environments", _, "secrets", "vault"]) => {
            |t| crate::VaultName::new(t).map(|_| ())
        }
        (
            false,
            ["environments", _, "secrets", "map", _]
            | ["environments", _, "secrets", "map", _, "secret"],
        ) => |t| crate::SecretRef::parse(t).map(|_| ()),
        (false, ["stages", _, "environment"]) => |t| crate::EnvironmentName::new(t).map(|_| ()),
        (false, ["stages", _, "hooks", _, "name"]) => |t| crate::HookName::new(t).map(|_| ()),
        (
            false,
            ["stages", _, "hooks", _, "timeout"]
            | ["stages", _, "healthCheck", "interval" | "timeout"]
            | ["stages", "production", "watch", "duration"]
            | [
                "stages",
                "production",
                "watch",
                "healthCheck",
                "interval" | "timeout",
            ],
        ) => |t| crate::Duration::parse(t).map(|_| ()),
        _ => return None,
    };
    Some(check)
}

/// Checks every name and duration on the raw document, so that all of them are reported even
/// when deserialization stops at the first one (the loader drops the repeat of that one).
pub(crate) fn check_raw(source: &SourceMap, out: &mut Diagnostics) {
    let mut c = Checker { source, out };
    let mut found = Vec::new();
    for node in source.nodes() {
        let segments = segments(node.path);
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        if let Some((key_at, key_width)) = node.key
            && let Some(check) = raw_check(&segments, true)
            && let Some(key) = segments.last()
            && let Err(err) = check(key)
        {
            found.push((key_at, key_width, node.path.to_string(), err.to_string()));
        }
        if let Some(text) = node.scalar
            && let Some(check) = raw_check(&segments, false)
            && let Err(err) = check(text)
        {
            found.push((
                node.value.0,
                node.value.1,
                node.path.to_string(),
                err.to_string(),
            ));
        }
    }
    for (at, width, path, message) in found {
        let code = code_for_message(&message);
        c.push(
            Severity::Error,
            Some((at, width, &path)),
            &path,
            code,
            message,
            help_for_code(code),
        );
    }
}

/// Follows `$ref`, single-entry `allOf` and optional (`anyOf` with `null`) wrappers to the schema
/// that describes a node; `want_object` picks the object variant of a string-or-object choice.
fn deref<'a>(root: &'a Value, mut schema: &'a Value, want_object: bool) -> Option<&'a Value> {
    for _ in 0..16 {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let name = reference.rsplit('/').next()?;
            schema = root.get("definitions")?.get(name)?;
        } else if let Some(all) = schema.get("allOf").and_then(Value::as_array)
            && all.len() == 1
        {
            schema = &all[0];
        } else if let Some(choices) = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .and_then(Value::as_array)
        {
            let non_null: Vec<&Value> = choices
                .iter()
                .filter(|c| c.get("type").and_then(Value::as_str) != Some("null"))
                .collect();
            let pick = if non_null.len() == 1 {
                non_null[0]
            } else {
                // Choose the variant whose (resolved) type matches the node.
                *non_null.iter().find(|c| {
                    deref(root, c, false)
                        .and_then(|d| d.get("type"))
                        .and_then(Value::as_str)
                        .is_some_and(|t| (t == "object") == want_object)
                })?
            };
            schema = pick;
        } else {
            return Some(schema);
        }
    }
    None
}

/// The schema of the child `segment` of an object or array schema.
fn child<'a>(root: &'a Value, schema: &'a Value, segment: &str) -> Option<&'a Value> {
    let schema = deref(root, schema, true)?;
    if let Some(items) = schema.get("items") {
        return Some(items);
    }
    if let Some(property) = schema.get("properties").and_then(|p| p.get(segment)) {
        return Some(property);
    }
    if let Some(pattern) = schema
        .get("patternProperties")
        .and_then(Value::as_object)
        .and_then(|p| p.values().next())
    {
        return Some(pattern);
    }
    schema.get("additionalProperties").filter(|a| a.is_object())
}

/// Reports every key the schema does not allow, so that all unknown fields are listed even when
/// deserialization stops at the first (the loader drops the repeat of that one).
pub(crate) fn check_unknown_fields(source: &SourceMap, out: &mut Diagnostics) {
    let root = crate::reference::json_schema();
    let mut c = Checker { source, out };
    let mut found = Vec::new();
    for node in source.nodes() {
        let Some((key_at, key_width)) = node.key else {
            continue;
        };
        let segments = segments(node.path);
        let Some((field, parents)) = segments.split_last() else {
            continue;
        };
        let mut schema = Some(&root);
        for segment in parents {
            schema = schema.and_then(|s| child(&root, s, segment));
        }
        let Some(object) = schema.and_then(|s| deref(&root, s, true)) else {
            continue;
        };
        let Some(properties) = object.get("properties").and_then(Value::as_object) else {
            continue;
        };
        let closed = object.get("additionalProperties") == Some(&Value::Bool(false))
            && object.get("patternProperties").is_none();
        if !closed || properties.contains_key(field.as_str()) {
            continue;
        }
        let names: Vec<&str> = properties.keys().map(String::as_str).collect();
        let help = match did_you_mean(field, &names) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!("remove it; the fields here are: {}", names.join(", ")),
        };
        found.push((
            key_at,
            key_width,
            node.path.to_string(),
            field.clone(),
            help,
        ));
    }
    for (at, width, path, field, help) in found {
        c.push(
            Severity::Error,
            Some((at, width, &path)),
            &path,
            "unknown-field",
            format!("unknown field `{field}`"),
            help,
        );
    }
}

/// Whether a scalar at `path` may hold `$(...)` references.
fn holds_variables(path: &str) -> bool {
    let segments = segments(path);
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    matches!(
        s.as_slice(),
        ["app", "name" | "resourceGroup" | "subscription"]
            | ["image", "repository" | "tag"]
            | ["environments", _, "settings", _]
            | ["stages", _, "hooks", _, "run" | "undo"]
            | ["stages", _, "hooks", _, "env", _]
    )
}

/// Splits a path written by `join_key`/`join_index` into its segments.
fn segments(path: &str) -> Vec<String> {
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
    for (path, text, at) in source.scalars() {
        if !holds_variables(path) {
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
    if let Some(image) = &mut config.image {
        expand("image.repository", &mut image.repository);
        expand("image.tag", &mut image.tag);
    }
    for (name, environment) in &mut config.environments {
        let base = join_key(&join_key("environments", name.as_str()), "settings");
        for (setting, value) in &mut environment.settings {
            expand(&join_key(&base, setting.as_str()), value);
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
        Ok(())
    } else {
        Err(problems)
    }
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

/// The kind of name inside a newtype's message (`invalid slot name `x`: ...`), as a code.
fn code_for_message(message: &str) -> &'static str {
    const KINDS: [(&str, &str); 9] = [
        ("invalid slot name", "invalid-slot-name"),
        ("invalid Key Vault name", "invalid-vault-name"),
        ("invalid Key Vault secret name", "invalid-secret-name"),
        ("invalid Key Vault secret version", "invalid-secret-version"),
        ("invalid setting name", "invalid-setting-name"),
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

fn help_for_code(code: &str) -> String {
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
        "invalid-setting-name" => {
            "app setting names are like `APP_ENV` or `Logging__LogLevel__Default`".into()
        }
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
            format!("expected {expected} here"),
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
