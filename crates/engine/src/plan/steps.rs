//! The building blocks the stages' planners share: preflight checks, settings changes, health and hook
//! steps, and the site changes (stack, startup command, image) a slot needs.

use super::*;
use crate::package::PackageFiles;
use crate::state::SlotState;
use slot_release_config::stack::{Runtime, Stack, StartupRule};

/// Preflight checks shared by every stage that changes the app.
pub(super) fn common_preflight(state: &LiveState, journal: &JournalTags, plan: &mut Plan) {
    plan.preflight.push(check(
        "in-flight",
        state.in_flight.is_empty(),
        if state.in_flight.is_empty() {
            "no swap or deployment in flight".to_owned()
        } else {
            format!(
                "still running: {}; wait for it to finish and run again",
                state.in_flight.join(", ")
            )
        },
    ));
    let unfinished = journal.phase.filter(|p| !p.is_settled());
    plan.preflight.push(check(
        "journal",
        unfinished.is_none(),
        match (unfinished, journal.release.as_deref()) {
            (Some(phase), Some(release)) => format!(
                "release {release} stopped at phase `{phase}`; run `slot-release rollback` or the same stage again with --resume"
            ),
            (Some(phase), None) => format!("an unfinished release stopped at phase `{phase}`"),
            (None, _) => "no unfinished release".to_owned(),
        },
    ));
}

/// The stack a slot will run: the config's, else the slot's own, else production's (a slot being
/// created starts from production's config).
pub(super) fn effective_stack(
    spec: &ReleaseSpec,
    state: &LiveState,
    slot: &SlotName,
) -> Option<Stack> {
    if let Some(stack) = spec.app.stack.as_deref() {
        return Stack::parse_linux(stack).ok();
    }
    state
        .slot(slot)
        .and_then(SlotState::stack)
        .or_else(|| state.production().and_then(SlotState::stack))
}

/// Whether something will answer on the slot once the release runs: a blank startup command on a stack
/// that detects the app serves the platform's default page (200) when the package has nothing it finds.
pub(super) fn startup_preflight(
    spec: &ReleaseSpec,
    state: &LiveState,
    slot: &SlotName,
    layout: Option<&PackageFiles>,
    plan: &mut Plan,
) {
    let configured = spec
        .app
        .startup_command
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    let live_cmd = state.slot(slot).and_then(|s| s.startup_command());
    let (ok, detail) = match (&spec.app.kind, effective_stack(spec, state, slot)) {
        (AppKind::Container { .. }, _) => (true, container_detail(configured)),
        (AppKind::Code { .. }, None) => (
            false,
            format!(
                "cannot tell what will run: the config sets no app.stack and slot {slot} names no stack; set app.stack (e.g. PYTHON|3.12)"
            ),
        ),
        (AppKind::Code { .. }, Some(stack)) => match stack.startup() {
            StartupRule::NotNeeded => (
                true,
                format!("{stack} runs the deployed app itself; no startup command is needed"),
            ),
            StartupRule::Container => (true, container_detail(configured)),
            rule @ StartupRule::Detect(_) => match (configured, live_cmd) {
                (Some(cmd), _) => (
                    true,
                    format!("{stack} runs the configured startup command {cmd:?}"),
                ),
                (None, Some(cmd)) => (
                    true,
                    format!("{stack} runs slot {slot}'s startup command {cmd:?}"),
                ),
                (None, None) => match layout {
                    None => (
                        true,
                        format!(
                            "no startup command: {stack} looks for the app in the package, which is not built yet; the staging stage checks it before any change"
                        ),
                    ),
                    Some(files) => match rule.blank_command_runs(Some(files)) {
                        Ok(found) => (
                            true,
                            format!(
                                "no startup command: {stack} finds the app in the package and runs `{}`",
                                found.unwrap_or_default()
                            ),
                        ),
                        Err(looked_for) => (false, nothing_runs(&stack, slot, &looked_for)),
                    },
                },
            },
        },
    };
    plan.preflight.push(check("startup-command", ok, detail));
}

/// Whether Kudu will take a single WAR or JAR on the slot's stack: OneDeploy checks `type=war` against
/// Tomcat and `type=jar` against Java SE, and refuses any other stack with a 400 only once the stage has
/// changed the slot's settings. Refused here instead, before any change. On Windows the Java container
/// (Tomcat or Java SE) is not part of the stack read here, so Kudu's own check decides.
pub(super) fn artifact_type_preflight(
    spec: &ReleaseSpec,
    state: &LiveState,
    slot: &SlotName,
    layout: Option<&PackageFiles>,
    plan: &mut Plan,
) {
    let Some(kind) = layout.and_then(|l| l.onedeploy_type) else {
        return;
    };
    let (wanted, name) = match kind {
        "war" => (&[Runtime::Tomcat][..], "TOMCAT (e.g. TOMCAT|10.1-java17)"),
        _ => (&[Runtime::Java][..], "JAVA (e.g. JAVA|17-java17)"),
    };
    let stack = effective_stack(spec, state, slot);
    let ok = match &stack {
        Some(s) if s.os == slot_release_config::stack::Os::Windows => {
            matches!(s.runtime, Runtime::Java | Runtime::Tomcat)
        }
        Some(s) => wanted.contains(&s.runtime),
        None => false,
    };
    let running = stack.map_or_else(|| "no stack".to_owned(), |s| s.to_string());
    let detail = if ok {
        format!("a .{kind} package is deployed with OneDeploy type={kind}, which {running} takes")
    } else {
        format!(
            "a .{kind} package is deployed with OneDeploy type={kind}, which Kudu takes only on the {name} stack; slot {slot} runs {running}: set app.stack to match the package, or package the app for its stack"
        )
    };
    plan.preflight.push(check("artifact-type", ok, detail));
}

fn container_detail(configured: Option<&str>) -> String {
    match configured {
        Some(cmd) => format!("the image's entry point runs, given the startup command {cmd:?}"),
        None => "the image's entry point runs".to_owned(),
    }
}

fn nothing_runs(stack: &Stack, slot: &SlotName, looked_for: &[&str]) -> String {
    let example = match stack.runtime {
        Runtime::Node => "`npm start`, or add scripts.start to package.json",
        _ => "`python -m gunicorn -c gunicorn.conf.py app:app`",
    };
    format!(
        "slot {slot} would run {stack} with no startup command (the config sets none and the slot has none), and App Service finds no app in the package: it looks for {} at the package root, and without one it serves its default page, not the app; set app.startupCommand (e.g. {example}) or move the entry file to the root",
        looked_for.join(", ")
    )
}

/// Which of an environment's settings a step writes, and how each is marked.
#[derive(Debug, Clone, Copy)]
pub(super) enum Written<'a> {
    /// Every setting: the names in the set travel with the swap, the others are sticky.
    All(&'a BTreeSet<String>),
    /// Only the sticky ones (production, released by a swap: the travelling ones arrive with it).
    StickyOnly(&'a BTreeSet<String>),
    /// Only the travelling plain ones that differ on the slot production swaps from (values of secrets
    /// were written there by the staging stage of this very release).
    TravellingOnly(&'a BTreeSet<String>),
}

impl Written<'_> {
    pub(super) fn travelling(&self) -> &BTreeSet<String> {
        match self {
            Written::All(t) | Written::StickyOnly(t) | Written::TravellingOnly(t) => t,
        }
    }

    pub(super) fn includes(&self, name: &str, secret_value: bool) -> bool {
        let travels = self.travelling().contains(name);
        match self {
            Written::All(_) => true,
            Written::StickyOnly(_) => !travels,
            Written::TravellingOnly(_) => travels && !secret_value,
        }
    }
}

pub(super) fn settings_changes(
    env: &EnvironmentSpec,
    state: &LiveState,
    slot: &SlotName,
    written: Written<'_>,
) -> (Option<Step>, Option<Step>) {
    let live = state.slot(slot);
    let mut changes = Vec::new();
    let mut secrets = Vec::new();
    let mut wanted: BTreeMap<&str, Shown> = env
        .settings
        .iter()
        .map(|(k, v)| (k.as_str(), Shown::Plain(v.clone())))
        .collect();
    for (setting, secret) in &env.secrets {
        secrets.push(SecretPull {
            setting: setting.clone(),
            secret: secret.secret.clone(),
            delivery: secret.delivery,
            selected: env
                .selected
                .as_ref()
                .is_some_and(|s| s.secrets.contains_key(setting)),
            connection_string: false,
        });
        let vault = env.vault.as_deref().unwrap_or("vault");
        match secret.delivery {
            SecretDelivery::KeyVaultReference => {
                wanted.insert(
                    setting,
                    Shown::Plain(key_vault_reference(vault, &secret.secret)),
                );
            }
            SecretDelivery::Value => {
                wanted.insert(setting, Shown::Secret(format!("{vault}/{}", secret.secret)));
            }
            SecretDelivery::PipelineVariable => {}
        }
    }
    for (name, after) in wanted {
        let is_secret = matches!(after, Shown::Secret(_));
        if !written.includes(name, is_secret) {
            continue;
        }
        let before_raw = live.and_then(|s| s.settings.get(name));
        // A name the config delivers from Key Vault (by value or by reference) may hold a secret value
        // now: the plan never shows it.
        let secret_name = env.secrets.contains_key(name);
        let before = before_raw.map(|v| {
            if is_secret || secret_name {
                Shown::Secret("current value".into())
            } else {
                Shown::Plain(v.clone())
            }
        });
        // A secret delivered as a value cannot be compared without reading it, so it is always written.
        let same = match &after {
            Shown::Plain(v) => before_raw == Some(v),
            Shown::Secret(_) => false,
        };
        let sticky_now = state.sticky_settings.contains(name);
        let travels = written.travelling().contains(name);
        let becomes_sticky = !travels && !sticky_now;
        let becomes_travelling = travels && sticky_now;
        if same && !becomes_sticky && !becomes_travelling {
            continue;
        }
        changes.push(SettingChange {
            name: name.to_owned(),
            before,
            after,
            becomes_sticky,
            becomes_travelling,
        });
    }
    // One pull for the environment's vault: its connection strings' secrets are read with the settings'.
    secrets.extend(connection_string_pulls(env));
    let pull = (!secrets.is_empty()).then(|| {
        step(
            Action::PullSecrets {
                vault: env.vault.clone().unwrap_or_default(),
                secrets,
                skipped: env
                    .selected
                    .as_ref()
                    .map(|s| s.skipped.clone())
                    .unwrap_or_default(),
            },
            "secrets come from Key Vault; each value is masked in the log the moment it is read",
        )
    });
    let set = (!changes.is_empty()).then(|| {
        step(
            Action::SetSettings {
                slot: slot.to_owned(),
                changes,
            },
            match written {
                Written::All(t) if !t.is_empty() => "only what differs; names with the same value in production travel with the swap, the others are sticky so a swap never carries one slot's value into another",
                Written::TravellingOnly(_) => "these names have the same value in production and reach it with the swap itself",
                _ if slot.is_production() => "only what differs, written as sticky so a swap never carries them away; App Service restarts production when its settings change",
                _ => "settings written as sticky so a swap never carries one slot's values into another; only what differs",
            },
        )
    });
    (pull, set)
}

/// The App Service Key Vault reference syntax for a secret.
pub fn key_vault_reference(vault: &str, secret: &str) -> String {
    format!("@Microsoft.KeyVault(VaultName={vault};SecretName={secret})")
}

pub(super) fn health_step(health: Option<&Gate>, slot: &SlotName, reason: &str) -> Option<Step> {
    health.map(|h| {
        step(
            Action::HealthGate {
                slot: slot.to_owned(),
                gate: h.clone(),
            },
            reason,
        )
    })
}

pub(super) fn push_hooks(hooks: &[crate::spec::HookSpec], steps: &mut Vec<Step>) {
    for hook in hooks {
        steps.push(step(
            Action::RunHook {
                name: hook.name.clone(),
                run_where: hook.run_where,
                command: hook.command.clone(),
                timeout_secs: hook.timeout.as_secs(),
                undo: hook.undo.clone(),
                point_of_no_return: hook.undo.is_none(),
            },
            if hook.undo.is_some() {
                "configured hook; its undo runs if a later step fails"
            } else {
                "configured hook with no undo: once it ran, failure cannot take its effect back"
            },
        ));
    }
}

pub(super) fn push_undos(hooks: &[crate::spec::HookSpec], steps: &mut Vec<Step>, reason: &str) {
    for hook in hooks.iter().rev() {
        if let Some(undo) = &hook.undo {
            steps.push(step(
                Action::UndoHook {
                    name: hook.name.clone(),
                    run_where: hook.run_where,
                    command: undo.clone(),
                },
                reason,
            ));
        }
    }
}

/// Startup command and image changes for a slot, only where they differ.
pub(super) fn push_site_changes(
    spec: &ReleaseSpec,
    state: &LiveState,
    slot: &SlotName,
    plan: &mut Plan,
    why: &str,
) {
    let live = state.slot(slot);
    match &spec.app.kind {
        AppKind::Code { .. } => {
            if let Some(stack) = spec.app.stack.as_deref() {
                let before = live.and_then(|s| s.linux_fx_version.clone());
                if before.as_deref() != Some(stack) {
                    plan.steps.push(step(
                        Action::SetStack {
                            slot: slot.to_owned(),
                            before,
                            after: stack.to_owned(),
                        },
                        "the slot must run the configured stack",
                    ));
                }
            }
            if let Some(wanted) = spec.app.startup_command.as_deref() {
                let before = live.and_then(|s| s.startup_command()).map(str::to_owned);
                if before.as_deref() != Some(wanted) {
                    plan.steps.push(step(
                        Action::SetStartupCommand {
                            slot: slot.to_owned(),
                            before,
                            after: wanted.to_owned(),
                        },
                        "the configured startup command is what the slot runs",
                    ));
                }
            }
        }
        AppKind::Container { repository, tag } => {
            if let Some(wanted) = spec.app.startup_command.as_deref() {
                let before = live.and_then(|s| s.startup_command()).map(str::to_owned);
                if before.as_deref() != Some(wanted) {
                    plan.steps.push(step(
                        Action::SetStartupCommand {
                            slot: slot.to_owned(),
                            before,
                            after: wanted.to_owned(),
                        },
                        "the configured startup command is passed to the image's entry point",
                    ));
                }
            }
            let after = format!("{repository}:{tag}");
            let before = live.and_then(|s| s.image()).map(str::to_owned);
            if before.as_deref() != Some(after.as_str()) {
                // A sitecontainers app's image is its main container's; the plan names what stays.
                let why = match live.filter(|s| s.runs_site_containers()) {
                    Some(s) => format!(
                        "{why}: main container {} of the sitecontainers app, {}",
                        s.main_container().map_or("(none)", |m| m.name.as_str()),
                        sidecars_kept(s)
                    ),
                    None => why.to_owned(),
                };
                plan.steps.push(step(
                    Action::SetImage {
                        slot: slot.to_owned(),
                        before,
                        after,
                    },
                    why,
                ));
            }
        }
    }
}
