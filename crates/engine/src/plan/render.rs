//! How a plan reads: each step's one-line description, the text `plan` prints and every stage logs,
//! and the JSON contract.

use super::*;

impl Plan {
    /// Failed preflight checks.
    pub fn problems(&self) -> impl Iterator<Item = &Check> {
        self.preflight.iter().filter(|c| !c.ok)
    }

    /// The plan as pretty JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain owned data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The plan for people: concise, one line per step, details indented.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let env = self
            .environment
            .as_deref()
            .map(|e| format!(", environment {e}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "Plan for {} of {} (resource group {}{env}), release {}",
            self.stage,
            self.app,
            self.resource_group,
            crate::identity::label(
                self.release_name.as_deref().unwrap_or_default(),
                &self.release_id
            )
        );
        if !self.preflight.is_empty() {
            let _ = writeln!(out, "Preflight:");
            for check in &self.preflight {
                let mark = if check.ok { "ok  " } else { "FAIL" };
                let _ = writeln!(out, "  {mark} {}: {}", check.name, check.detail);
            }
        }
        let _ = writeln!(out, "Steps:");
        render_steps(&mut out, &self.steps);
        if !self.on_failure.is_empty() {
            let _ = writeln!(out, "On failure:");
            render_steps(&mut out, &self.on_failure);
        }
        out
    }
}

impl Action {
    /// A one-line human description.
    pub fn describe(&self) -> String {
        match self {
            Action::AcquireLock => "take the release lock".into(),
            Action::ReleaseLock => "release the lock".into(),
            Action::WriteJournal { phase } => format!("write journal: {phase}"),
            Action::CreateSlot { slot } => format!("create slot {slot}"),
            Action::PullSecrets {
                vault,
                secrets,
                skipped,
            } => {
                let names: Vec<String> = secrets
                    .iter()
                    .map(|s| {
                        if s.connection_string {
                            format!("{} (connection string {})", s.secret, s.setting)
                        } else if s.selected {
                            format!("{} (selected, as {})", s.secret, s.setting)
                        } else {
                            s.secret.clone()
                        }
                    })
                    .collect();
                let skipped: Vec<String> = skipped
                    .iter()
                    .map(|s| format!("; skipped {} ({})", s.name, s.reason))
                    .collect();
                format!(
                    "pull {} secret(s) from {vault}: {}{}",
                    names.len(),
                    names.join(", "),
                    skipped.concat()
                )
            }
            Action::SetSettings { slot, changes } => {
                format!("set {} setting(s) on {slot}", changes.len())
            }
            Action::RemoveSettings { slot, removals } => {
                format!("remove {} setting(s) from {slot}", removals.len())
            }
            Action::SetConnectionStrings { slot, changes } => {
                format!("set {} connection string(s) on {slot}", changes.len())
            }
            Action::RemoveConnectionStrings { slot, removals } => {
                format!("remove {} connection string(s) from {slot}", removals.len())
            }
            Action::SetSiteConfig { slot, changes } => {
                let fields: Vec<String> = changes
                    .iter()
                    .map(|c| {
                        format!(
                            "{} {} -> {}",
                            c.field,
                            c.before.as_deref().unwrap_or("(unset)"),
                            c.after
                        )
                    })
                    .collect();
                format!("set general settings on {slot}: {}", fields.join(", "))
            }
            Action::SetStartupCommand {
                slot,
                before,
                after,
            } => format!(
                "set startup command on {slot}: {} -> {after:?}",
                before
                    .as_deref()
                    .map_or("(none)".into(), |b| format!("{b:?}"))
            ),
            Action::SetStack {
                slot,
                before,
                after,
            } => format!(
                "set stack on {slot}: {} -> {after}",
                before.as_deref().unwrap_or("(none)")
            ),
            Action::SetImage {
                slot,
                before,
                after,
            } => format!(
                "set image on {slot}: {} -> {after}",
                before.as_deref().unwrap_or("(none)")
            ),
            Action::UseKeptPackage { slot, sha256 } => format!(
                "run the kept package {} on {slot} again (packagename.txt, restart)",
                &sha256[..sha256.len().min(12)]
            ),
            Action::BuildPackage { root } => format!("build package from {root}"),
            Action::ResolveImage { image } => format!("resolve image {image}"),
            Action::DeployPackage {
                slot,
                sha256,
                substitute,
                artifact_type,
            } => {
                let mut package = match sha256 {
                    Some(sha) => format!("deploy package {} to {slot}", &sha[..sha.len().min(12)]),
                    None => format!("deploy package to {slot}"),
                };
                if let Some(kind) = artifact_type {
                    package.push_str(&format!(" (OneDeploy type={kind})"));
                }
                match substitute {
                    None => package,
                    Some(s) => {
                        let mut files: Vec<String> = s.json.clone();
                        if s.xml {
                            files.push("*.config".to_owned());
                        }
                        format!(
                            "{package}, its copy's {} substituted from {}'s settings ({})",
                            files.join(", "),
                            s.environment,
                            s.names.join(", ")
                        )
                    }
                }
            }
            Action::RunHook {
                name,
                run_where,
                point_of_no_return,
                ..
            } => format!(
                "run hook {name} ({}){}",
                match run_where {
                    HookWhere::Slot => "in the slot",
                    HookWhere::Agent => "on the agent",
                },
                if *point_of_no_return {
                    " [point of no return: no undo]"
                } else {
                    ""
                }
            ),
            Action::UndoHook { name, .. } => format!("undo hook {name}"),
            Action::HealthGate { slot, gate } => format!(
                "health gate {slot}{}{}: {} consecutive success(es) within {}, failing early after {} definite failure(s){}",
                gate.check.path,
                keyed(&gate.check),
                gate.successes_needed,
                humantime::format_duration(gate.timeout),
                gate.fail_after,
                analysed(&gate.check)
            ),
            Action::Swap { source, target } => format!("swap {source} into {target}"),
            Action::ApplySlotConfig { source, target } => {
                format!("swap with preview: apply {target} settings to {source}")
            }
            Action::ResetSlotConfig { source } => format!("cancel swap preview on {source}"),
            Action::Route {
                source,
                host,
                percent,
            } => format!("canary: route {percent} % of production traffic to {source} ({host})"),
            Action::RestoreRouting => {
                "put production's traffic routing rules back as they were before the canary".into()
            }
            Action::Pause { seconds } => format!(
                "canary: hold the share for {}",
                humantime::format_duration(std::time::Duration::from_secs(*seconds))
            ),
            Action::Watch { slot, watch } => format!(
                "watch {slot}{}{} for {} (unhealthy after {} failed probe(s)){}",
                watch.check.path,
                keyed(&watch.check),
                humantime::format_duration(watch.window),
                watch.unhealthy_after,
                analysed(&watch.check)
            ),
            Action::Nothing => "nothing to do".into(),
        }
    }
}

/// The traffic analysis a gate or the watch runs after its probes, with every threshold.
fn analysed(check: &crate::health::HealthCheck) -> String {
    let Some(a) = &check.analysis else {
        return String::new();
    };
    let mut rules = vec![format!("at least {} request(s)", a.min_requests)];
    if let Some(max) = a.max_http5xx_percent {
        rules.push(format!("5xx rate <= {max}%"));
    }
    if let Some(max) = a.max_average_response_ms {
        rules.push(format!("average response time <= {max} ms"));
    }
    if let Some(margin) = a.baseline_margin_percent {
        rules.push(format!("5xx rate <= production's + {margin}%"));
    }
    if let Some(logs) = &a.logs {
        if let Some(max) = logs.max_failed_percent {
            rules.push(format!(
                "failed requests in Log Analytics workspace {} <= {max}%",
                logs.workspace
            ));
        }
        if let Some(max) = logs.max {
            rules.push(format!(
                "the query of workspace {} <= {max}",
                logs.workspace
            ));
        }
    }
    format!(
        "; then its traffic over {} from Azure Monitor: {}",
        humantime::format_duration(a.window),
        rules.join(", ")
    )
}

/// How a step says its probes send the slot's function key (never the key itself).
fn keyed(check: &crate::health::HealthCheck) -> &'static str {
    if check.function_key.is_some() {
        " with the slot's function key"
    } else {
        ""
    }
}

pub(super) fn render_steps(out: &mut String, steps: &[Step]) {
    for (i, step) in steps.iter().enumerate() {
        let _ = writeln!(out, "  {:>2}. {}", i + 1, step.action.describe());
        let _ = writeln!(out, "      why: {}", step.reason);
        if let Action::SetSettings { changes, .. } = &step.action {
            for c in changes {
                let before = c
                    .before
                    .as_ref()
                    .map_or("(unset)".into(), |b| b.to_string());
                let sticky = if c.becomes_sticky {
                    " [sticky]"
                } else if c.becomes_travelling {
                    " [travels with the swap]"
                } else {
                    ""
                };
                let _ = writeln!(out, "      {}: {before} -> {}{sticky}", c.name, c.after);
            }
        }
        if let Action::SetConnectionStrings { changes, .. } = &step.action {
            for c in changes {
                // Names, types and where values come from; never a value.
                let before = match (&c.type_before, &c.before) {
                    (Some(kind), Some(shown)) => format!("{kind}, {shown}"),
                    _ => "(unset)".into(),
                };
                let sticky = if c.becomes_sticky {
                    " [sticky]"
                } else if c.becomes_travelling {
                    " [travels with the swap]"
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "      {}: {before} -> {}, {}{sticky}",
                    c.name, c.kind, c.after
                );
            }
        }
        if let Action::RemoveSettings { removals, .. }
        | Action::RemoveConnectionStrings { removals, .. } = &step.action
        {
            for r in removals {
                let unstick = if r.unsticks {
                    " [no longer sticky]"
                } else {
                    ""
                };
                let _ = writeln!(out, "      {}: removed: {}{unstick}", r.name, r.why);
            }
        }
        if let Action::RunHook { command, undo, .. } = &step.action {
            let _ = writeln!(out, "      command: {command}");
            if let Some(undo) = undo {
                let _ = writeln!(out, "      undo: {undo}");
            }
        }
    }
}
