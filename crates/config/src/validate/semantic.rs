//! Semantic checks: rules that span fields, each reported with its own message, place and help.

use std::collections::BTreeSet;

use super::Checker;
use super::analysis::{Judged, check_analysis};
use crate::diagnostic::Diagnostics;
use crate::model::{
    AppKind, HealthCheck, Hook, HookLocation, ReleaseConfig, Restore, RollbackMode, SwapStrategy,
};
use crate::source::{SourceMap, join_index, join_key};
use crate::validate::did_you_mean;

/// Runs every semantic check and appends what it finds.
pub(crate) fn check(config: &ReleaseConfig, source: &SourceMap, out: &mut Diagnostics) {
    let mut c = Checker { source, out };
    super::names::check_names(config, &mut c);
    check_app(config, &mut c);
    check_environments(config, &mut c);
    super::site_config::check_site_configs(config, &mut c);
    super::connection_strings::check_connection_strings(config, &mut c);
    super::registry::check_registries(config, &mut c);
    check_stages(config, &mut c);
    super::canary::check_canary(config, &mut c);
    super::targets::check_targets(config, &mut c);
}

fn check_app(config: &ReleaseConfig, c: &mut Checker<'_>) {
    let app = &config.app;
    // Whether a blank startup command runs the app depends on the package's layout and the live stack,
    // so the plan decides it (the `startup-command` check); here only the stack's spelling is checked.
    if let Some(stack) = &app.stack
        && let Err(e) = crate::stack::Stack::parse_linux(stack)
    {
        c.error(
            "app.stack",
            "unknown-stack",
            e.to_string(),
            match e.suggestion {
                Some(s) => format!(
                    "write `{s}|{}` if that is the runtime meant",
                    stack.split_once('|').map_or("<version>", |(_, v)| v)
                ),
                None => "write the stack as App Service does in `linuxFxVersion`, e.g. \
                         `PYTHON|3.12`, `NODE|20-lts`, `DOTNETCORE|8.0`, `JAVA|17-java17`; \
                         `az webapp list-runtimes --os linux` lists them"
                    .into(),
            },
        );
    }
    match app.kind {
        AppKind::Code => {
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
            check_selection(&base, environment, secrets, c);
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

/// A `secrets` block must take some secret (for a setting or a connection string), and the name rule
/// only means something for a selection.
fn check_selection(
    base: &str,
    environment: &crate::model::Environment,
    secrets: &crate::model::Secrets,
    c: &mut Checker<'_>,
) {
    let connection_secrets = environment
        .connection_strings
        .values()
        .any(|cs| cs.secret.is_some())
        || environment
            .registry
            .as_ref()
            .is_some_and(|r| r.credentials.is_some());
    if secrets.map.is_empty() && secrets.select.is_none() && !connection_secrets {
        c.error_key(
            &format!("{base}.secrets"),
            "secrets-take-nothing",
            "this `secrets` block takes no secret: it has no `map` entries and no `select`, and \
             no connection string or registry takes a `secret`"
                .into(),
            "add `map:` with `SETTING: secret-name` entries, or `select: '*'` (every secret of the \
             vault) or `select: {prefix: app-}`; or remove the `secrets` block"
                .into(),
        );
    }
    if secrets.names.is_some() && secrets.select.is_none() {
        c.error_key(
            &format!("{base}.secrets.names"),
            "names-without-select",
            "`names` says how selected secrets are named, but this block has no `select`".into(),
            "add `select: '*'` or `select: {prefix: ...}`, or remove `names` (a `map` entry names \
             its setting itself)"
                .into(),
        );
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
    check_health(
        "stages.staging.healthCheck",
        &staging.health_check,
        Role::Gate(Judged::Slot),
        c,
    );

    let production = &config.stages.production;
    if known_environment(
        config,
        "stages.production.environment",
        production.environment.as_str(),
        c,
    ) && let Some(environment) = config.environment(production.environment.as_str())
        && let Some(source_slot) = &production.source_slot
        && environment
            .slot
            .as_str()
            .eq_ignore_ascii_case(source_slot.as_str())
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
    if production.source_slot.is_none() && config.app.kind == AppKind::Code {
        c.error_key(
            "stages.production",
            "source-slot-required",
            "a code app is released through a slot, but `stages.production` has no `sourceSlot`"
                .into(),
            "set `sourceSlot` to the slot the staging stage deploys to (e.g. `staging`); only a \
             container app can take a new image on production directly"
                .into(),
        );
    }
    if production.source_slot.is_none()
        && production.strategy == SwapStrategy::SwapWithPreview
        && config.app.kind == AppKind::Container
    {
        c.error(
            "stages.production.strategy",
            "preview-without-slot",
            "`strategy: swapWithPreview` needs a slot to preview in, but `stages.production` has \
             no `sourceSlot`"
                .into(),
            "remove `strategy` (the image is set on production directly), or add `sourceSlot` and \
             stage the image in that slot first"
                .into(),
        );
    }
    check_hooks(config, "stages.production.hooks", &production.hooks, c);
    let watch = &production.watch;
    check_positive("stages.production.watch.duration", watch.duration, c);
    check_health(
        "stages.production.watch.healthCheck",
        &watch.health_check,
        Role::Watch,
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
            check_health(
                "stages.rollback.healthCheck",
                health,
                Role::Gate(Judged::Production),
                c,
            );
        }
        if rollback.restore == Restore::SwapBack && production.source_slot.is_none() {
            let path = if c.source.contains("stages.rollback.restore") {
                "stages.rollback.restore"
            } else {
                "stages.rollback.environment"
            };
            c.error(
                path,
                "swap-back-without-slot",
                "the rollback restores by swapping back (`restore: swapBack`, the default), but \
                 `stages.production` has no `sourceSlot`, so there is no slot to swap with"
                    .into(),
                "set `restore: lastKnownGood` to put the previous image tag back on production, \
                 or add `sourceSlot` to `stages.production`"
                    .into(),
            );
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

/// What a health check is used as: a gate (of a slot or of production), or the production watch,
/// whose `successes`, `timeout` and `failAfter` do not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Gate(Judged),
    Watch,
}

pub(super) fn check_health(base: &str, health: &HealthCheck, role: Role, c: &mut Checker<'_>) {
    if let Some(analysis) = &health.analysis {
        let judged = match role {
            Role::Gate(judged) => judged,
            Role::Watch => Judged::Production,
        };
        check_analysis(&format!("{base}.analysis"), analysis, judged, c);
    }
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
    if role == Role::Watch {
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
    if health.fail_after == 0 {
        c.error(
            &format!("{base}.failAfter"),
            "fail-after-zero",
            "`failAfter` is 0, so the gate would fail before its first probe".into(),
            "set how many consecutive definite failures (e.g. 500s) fail the gate early, e.g. 5; leave it out for the default".into(),
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
