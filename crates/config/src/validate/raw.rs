//! Checks on the raw document: names, durations, unknown and missing fields, found by walking the
//! scanned YAML alongside the JSON Schema, so that every problem is reported even though
//! deserialization stops at the first.

use std::collections::HashMap;

use serde_json::Value;

use super::parse_errors::{code_for_message, help_for_code};
use super::{Checker, did_you_mean, segments};
use crate::ConfigError;
use crate::diagnostic::{Diagnostics, Severity};
use crate::source::{Node, SourceMap, join_key, parent};

/// What a name or duration at some path must satisfy, checked on the raw document.
type RawCheck = fn(&str) -> Result<(), ConfigError>;

/// The checker for a key (`true`) or scalar value (`false`) at a path, if any.
fn raw_check(segments: &[&str], is_key: bool) -> Option<RawCheck> {
    let check: RawCheck = match (is_key, segments) {
        (true, ["environments", _]) => |t| crate::EnvironmentName::new(t).map(|_| ()),
        (true, ["environments", _, "settings", _] | ["environments", _, "secrets", "map", _]) => {
            |t| crate::SettingName::new(t).map(|_| ())
        }
        (true, ["environments", _, "connectionStrings", _]) => {
            |t| crate::ConnectionStringName::new(t).map(|_| ())
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
            | ["environments", _, "secrets", "map", _, "secret"]
            | ["environments", _, "connectionStrings", _, "secret"],
        ) => |t| crate::SecretRef::parse(t).map(|_| ()),
        (false, ["environments", _, "secrets", "select", "prefix"]) => {
            |t| crate::SecretName::new(t).map(|_| ())
        }
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

/// The schema of the node at `path`, resolved from the root.
fn schema_at<'a>(root: &'a Value, path: &str, want_object: bool) -> Option<&'a Value> {
    let mut schema = Some(root);
    for segment in segments(path) {
        schema = schema.and_then(|s| child(root, s, &segment));
    }
    schema.and_then(|s| deref(root, s, want_object))
}

/// Reports every required field missing from one mapping.
fn missing_fields(root: &Value, node: &Node<'_>, present: &[String], c: &mut Checker<'_>) {
    let Some(object) = schema_at(root, node.path, true) else {
        return;
    };
    let Some(required) = object.get("required").and_then(Value::as_array) else {
        return;
    };
    let at = if node.path.is_empty() {
        "at the top level".to_string()
    } else {
        format!("under `{}`", node.path)
    };
    for field in required.iter().filter_map(Value::as_str) {
        let child_path = join_key(node.path, field);
        let misspelt = present
            .iter()
            .any(|key| did_you_mean(key, &[field]).is_some());
        if c.source.contains(&child_path) || misspelt {
            continue;
        }
        let (position, width) = match node.key {
            Some(key) if !node.path.is_empty() => key,
            _ => node.value,
        };
        c.push(
            Severity::Error,
            Some((position, width, node.path)),
            node.path,
            "missing-field",
            format!("missing field `{field}`"),
            format!("add `{field}:` {at}"),
        );
    }
}

/// Reports every key the schema does not allow, so that all unknown fields are listed even when
/// deserialization stops at the first (the loader drops the repeat of that one).
pub(crate) fn check_unknown_fields(source: &SourceMap, out: &mut Diagnostics) {
    let root = crate::reference::json_schema();
    let mut c = Checker { source, out };
    let mut found = Vec::new();
    // The keys of every mapping, so a misspelt key is not also reported as a missing field.
    let mut keys: HashMap<&str, Vec<String>> = HashMap::new();
    for node in source.nodes() {
        if node.key.is_some()
            && let Some(parent_path) = parent(node.path)
            && let Some(key) = segments(node.path).pop()
        {
            keys.entry(parent_path).or_default().push(key);
        }
    }
    for node in source.nodes() {
        if node.is_map {
            let present = keys.get(node.path).map_or(&[][..], Vec::as_slice);
            missing_fields(&root, &node, present, &mut c);
        }
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
