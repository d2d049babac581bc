//! How a plan reads: the text `plan` prints and every stage logs, and the JSON contract.

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
