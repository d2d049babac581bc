//! Names that reach logs and Azure (the app name, its resource group, the image): Azure's own naming
//! rules, which also keep `##` and control characters out of every log line that quotes them. Slot,
//! hook, environment and setting names are typed and checked when they are parsed.

use super::Checker;
use crate::model::ReleaseConfig;

/// What is wrong with the literal parts of a name, or `None`. `$(...)` references are left out (their
/// value is checked once expanded); with references, the length is not checked.
pub(super) fn app_name_problem(value: &str) -> Option<String> {
    let (literal, has_variables) = literal_parts(value);
    if let Some(bad) = literal
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Some(format!(
            "App Service names use only letters, digits and `-`, not {}",
            shown(bad)
        ));
    }
    if !has_variables {
        if !(2..=60).contains(&value.len()) {
            return Some("App Service names are 2 to 60 characters long".into());
        }
        if value.starts_with('-') || value.ends_with('-') {
            return Some("App Service names do not start or end with `-`".into());
        }
    }
    None
}

pub(super) fn resource_group_problem(value: &str) -> Option<String> {
    let (literal, has_variables) = literal_parts(value);
    if let Some(bad) = literal
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')')))
    {
        return Some(format!(
            "resource group names use only letters, digits, `-`, `_`, `.`, `(` and `)`, not {}",
            shown(bad)
        ));
    }
    if !has_variables {
        if value.is_empty() || value.chars().count() > 90 {
            return Some("resource group names are 1 to 90 characters long".into());
        }
        if value.ends_with('.') {
            return Some("resource group names do not end with `.`".into());
        }
    }
    None
}

/// Image repositories and tags: what a registry accepts, which keeps `#` and control characters out.
fn image_problem(value: &str, tag: bool) -> Option<String> {
    let (literal, _) = literal_parts(value);
    let allowed = |c: char| {
        c.is_ascii_alphanumeric()
            || matches!(c, '-' | '_' | '.')
            || (!tag && matches!(c, '/' | ':'))
    };
    literal.chars().find(|c| !allowed(*c)).map(|bad| {
        if tag {
            format!(
                "image tags use only letters, digits, `-`, `_` and `.`, not {}",
                shown(bad)
            )
        } else {
            format!(
                "image repositories use only letters, digits, `-`, `_`, `.`, `/` and `:`, not {}",
                shown(bad)
            )
        }
    })
}

/// The text of `value` outside `$(...)` references, and whether it had any.
fn literal_parts(value: &str) -> (String, bool) {
    let mut literal = String::with_capacity(value.len());
    let mut rest = value;
    let mut has_variables = false;
    while let Some(start) = rest.find("$(") {
        literal.push_str(&rest[..start]);
        match rest[start..].find(')') {
            Some(end) => {
                has_variables = true;
                rest = &rest[start + end + 1..];
            }
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    literal.push_str(rest);
    (literal, has_variables)
}

/// A character for a message: control characters by code, never as themselves.
fn shown(c: char) -> String {
    if c.is_control() {
        format!("the control character U+{:04X}", u32::from(c))
    } else {
        format!("`{c}`")
    }
}

/// Checks the names as written (variables left out).
pub(crate) fn check_names(config: &ReleaseConfig, c: &mut Checker<'_>) {
    let help = "Azure refuses such a name, and names are printed in the pipeline log: fix the \
                name in release.yml (or the variable it uses)";
    if let Some(problem) = app_name_problem(&config.app.name) {
        c.error("app.name", "invalid-app-name", problem, help.into());
    }
    if let Some(problem) = resource_group_problem(&config.app.resource_group) {
        c.error(
            "app.resourceGroup",
            "invalid-resource-group",
            problem,
            help.into(),
        );
    }
    if let Some(image) = &config.image {
        if let Some(problem) = image_problem(&image.repository, false) {
            c.error("image.repository", "invalid-image", problem, help.into());
        }
        if let Some(problem) = image_problem(&image.tag, true) {
            c.error("image.tag", "invalid-image", problem, help.into());
        }
    }
}

/// Checks the names once their variables are expanded (a variable's value is not shown: it may be a
/// pipeline variable nobody meant to print).
pub(crate) fn check_expanded_names(config: &ReleaseConfig, c: &mut Checker<'_>) {
    let help = "the name is valid as written, but a variable it uses expands to something Azure \
                refuses; check the variable's value";
    let expanded = |problem: String| format!("once its variables are expanded: {problem}");
    if let Some(problem) = app_name_problem(&config.app.name) {
        c.error(
            "app.name",
            "invalid-app-name",
            expanded(problem),
            help.into(),
        );
    }
    if let Some(problem) = resource_group_problem(&config.app.resource_group) {
        c.error(
            "app.resourceGroup",
            "invalid-resource-group",
            expanded(problem),
            help.into(),
        );
    }
    for (index, target) in config.targets.iter().enumerate() {
        let base = crate::source::join_index("targets", index);
        if let Some(problem) = app_name_problem(&target.app) {
            c.error(
                &format!("{base}.app"),
                "invalid-app-name",
                expanded(problem),
                help.into(),
            );
        }
        if let Some(problem) = resource_group_problem(&target.resource_group) {
            c.error(
                &format!("{base}.resourceGroup"),
                "invalid-resource-group",
                expanded(problem),
                help.into(),
            );
        }
    }
    if let Some(image) = &config.image {
        if let Some(problem) = image_problem(&image.repository, false) {
            c.error(
                "image.repository",
                "invalid-image",
                expanded(problem),
                help.into(),
            );
        }
        if let Some(problem) = image_problem(&image.tag, true) {
            c.error("image.tag", "invalid-image", expanded(problem), help.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A logging command's prefix, built so no source line outside crates/pipelines holds one (the
    /// architecture invariant in tests/tests/invariants.rs).
    fn command(rest: &str) -> String {
        format!("{}{rest}", "#".repeat(2))
    }

    #[test]
    fn app_names_follow_azure() {
        assert_eq!(app_name_problem("contoso-web"), None);
        assert_eq!(app_name_problem("$(AppName)-web"), None);
        assert!(app_name_problem(&command("vso[task.complete]")).is_some());
        assert!(app_name_problem("a\u{1b}[31mb").is_some_and(|p| p.contains("U+001B")));
        assert!(app_name_problem("x").is_some());
        assert!(app_name_problem("-web").is_some());
        assert!(app_name_problem(&format!("$(A){}", command("[group]"))).is_some());
    }

    #[test]
    fn resource_groups_follow_azure() {
        assert_eq!(resource_group_problem("contoso-rg_(eu).1"), None);
        assert_eq!(resource_group_problem("rg-é"), None);
        assert!(resource_group_problem("rg.").is_some());
        assert!(resource_group_problem(&command("vso[x]")).is_some());
        assert!(resource_group_problem("rg\nline").is_some());
    }

    #[test]
    fn image_names_keep_commands_out() {
        assert_eq!(image_problem("contoso.azurecr.io:5000/app", false), None);
        assert_eq!(image_problem("1.2.3-$(Build.BuildId)", true), None);
        assert!(image_problem(&format!("app{}", command("vso[x]")), false).is_some());
        assert!(image_problem("v1/2", true).is_some());
    }
}
