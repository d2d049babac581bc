//! The record of a run and what people and the pipeline get from it: the release record's types, the
//! summary text, the markdown summary tab and the task's output variables.

use std::collections::BTreeMap;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use slot_release_pipelines::{Log, Summary};

use super::{Command, RunResult, format_ms};
use crate::journal::HookRecord;
use crate::plan::{Action, Plan, Stage};
use crate::state::SlotName;

/// One executed step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    /// What it did.
    pub description: String,
    /// Whether it succeeded.
    pub ok: bool,
    /// How long it took.
    pub duration_ms: u64,
    /// Why it failed, or a note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A health gate or watch result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthRecord {
    /// `gate` or `watch`.
    pub kind: String,
    /// The slot.
    pub slot: SlotName,
    /// The URL probed.
    pub url: String,
    /// Whether it passed.
    pub passed: bool,
    /// Probes made.
    pub probes: u32,
    /// Healthy probes.
    pub successes: u32,
    /// Failed probes.
    pub failures: u32,
}

/// One stage as it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageRecord {
    /// The stage.
    pub stage: Stage,
    /// How it ended.
    pub result: RunResult,
    /// The plan it executed.
    pub plan: Option<Plan>,
    /// Steps executed, including failure handling.
    pub steps: Vec<StepRecord>,
    /// Hook results (output masked).
    pub hooks: Vec<HookRecord>,
    /// Health results.
    pub health: Vec<HealthRecord>,
    /// Which release each slot held when the stage began, per the journal.
    #[serde(default)]
    pub slots_before: BTreeMap<SlotName, String>,
    /// Which release each slot holds when it ended.
    #[serde(default)]
    pub slots_after: BTreeMap<SlotName, String>,
}

/// The machine-readable record of a run (`--record PATH`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseRecord {
    /// Always [`RECORD_VERSION`](super::RECORD_VERSION).
    pub record_version: u32,
    /// The release's identity.
    pub release_id: String,
    /// The release's display name (the build number).
    #[serde(default)]
    pub release_name: String,
    /// The app.
    pub app: String,
    /// What ran.
    pub command: Command,
    /// How it ended.
    pub result: RunResult,
    /// Why it failed: the error and each of its causes.
    pub error: Vec<String>,
    /// The stages.
    pub stages: Vec<StageRecord>,
    /// Which release is in which slot, per the journal at the end.
    pub slots: BTreeMap<SlotName, String>,
    /// The last known-good release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_known_good: Option<String>,
    /// The image production ran before (containers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_image: Option<String>,
    /// The production URL.
    pub app_url: String,
    /// Each slot's URL, read from Azure.
    #[serde(default)]
    pub urls: BTreeMap<SlotName, String>,
    /// Total duration.
    pub duration_ms: u64,
}

impl ReleaseRecord {
    /// How people read the release: its build number, and its identity when that says more.
    pub fn label(&self) -> String {
        crate::identity::label(&self.release_name, &self.release_id)
    }

    /// Whether the run succeeded.
    pub fn succeeded(&self) -> bool {
        self.result == RunResult::Succeeded
    }
}

/// The final summary for people: what changed, where each release is, health results.
pub fn render_summary(record: &ReleaseRecord) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Release {} of {}: {} in {}",
        record.label(),
        record.app,
        record.result.as_str(),
        format_ms(record.duration_ms)
    );
    for stage in &record.stages {
        let changed = stage.steps.iter().filter(|s| s.ok).count();
        let _ = writeln!(
            out,
            "  {}: {} ({} step(s) done)",
            stage.stage,
            stage.result.as_str(),
            changed
        );
        for h in &stage.health {
            let _ = writeln!(
                out,
                "    health {} {}: {} ({} probe(s), {} healthy, {} failed)",
                h.kind,
                h.slot,
                if h.passed { "passed" } else { "failed" },
                h.probes,
                h.successes,
                h.failures
            );
        }
        for hook in &stage.hooks {
            let _ = writeln!(
                out,
                "    hook {}: {}{}",
                hook.name,
                if hook.ok { "succeeded" } else { "failed" },
                if hook.undone { ", undone" } else { "" }
            );
        }
    }
    if !record.slots.is_empty() {
        let where_: Vec<String> = record
            .slots
            .iter()
            .map(|(slot, release)| format!("{slot}={release}"))
            .collect();
        let _ = writeln!(out, "  releases by slot: {}", where_.join(", "));
    }
    if let Some(lkg) = &record.last_known_good {
        let _ = writeln!(out, "  last known-good: {lkg}");
    }
    if let Some(image) = &record.previous_image {
        let _ = writeln!(out, "  previous image: {image}");
    }
    if !record.error.is_empty() {
        let _ = writeln!(out, "  error: {}", record.error.join(": "));
    }
    out
}

/// What the run summary says beyond the record.
#[derive(Debug, Clone, Copy, Default)]
pub struct SummaryContext<'a> {
    /// A rehearsal against the local emulator, not a release: labelled so nobody takes it for one.
    pub rehearsal: bool,
    /// The app in the Azure portal, when the subscription is known.
    pub portal_url: Option<&'a str>,
}

/// The pipeline run summary of one stage (markdown), attached as a file of its own: app, stage and
/// release, each slot before and after, settings and images changed, the steps with their timings, the
/// health checks, and links to the app, its slots and the portal.
pub fn stage_summary(
    record: &ReleaseRecord,
    stage: &StageRecord,
    context: &SummaryContext<'_>,
) -> Summary {
    let mut summary = Summary::new();
    let rehearsal = if context.rehearsal {
        "Rehearsal (local emulator): "
    } else {
        ""
    };
    summary.heading(
        2,
        &format!(
            "{rehearsal}{} stage of {}: {}",
            stage.stage,
            record.app,
            stage.result.as_str()
        ),
    );
    let took: u64 = stage.steps.iter().map(|s| s.duration_ms).sum();
    summary.paragraph(&format!(
        "Release {} of app {}; the stage's steps took {}.{}",
        record.label(),
        record.app,
        format_ms(took),
        if context.rehearsal {
            " Nothing in Azure was changed: this ran against the emulator."
        } else {
            ""
        }
    ));
    // Releases by the name people know them by: this run's build number, else the identity.
    let name = |id: &String| {
        if *id == record.release_id {
            record.label()
        } else {
            id.clone()
        }
    };
    let slots: std::collections::BTreeSet<&SlotName> = stage
        .slots_before
        .keys()
        .chain(stage.slots_after.keys())
        .collect();
    let rows: Vec<Vec<String>> = slots
        .into_iter()
        .map(|slot| {
            let show = |m: &BTreeMap<SlotName, String>| m.get(slot).map_or("none".to_owned(), name);
            vec![
                slot.to_string(),
                show(&stage.slots_before),
                show(&stage.slots_after),
            ]
        })
        .collect();
    if !rows.is_empty() {
        summary.table(&["Slot", "Before", "After"], &rows);
    }
    let mut changes = Vec::new();
    for step in stage.plan.iter().flat_map(|p| &p.steps) {
        match &step.action {
            Action::SetSettings { slot, changes: c } if !c.is_empty() => changes.push(format!(
                "{slot}: settings {}",
                c.iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Action::RemoveSettings { slot, removals } => changes.push(format!(
                "{slot}: removed settings {}",
                removals
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Action::SetConnectionStrings { slot, changes: c } => changes.push(format!(
                "{slot}: connection strings {}",
                c.iter()
                    .map(|c| format!("{} ({})", c.name, c.kind))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Action::RemoveConnectionStrings { slot, removals } => changes.push(format!(
                "{slot}: removed connection strings {}",
                removals
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Action::SetSiteConfig { slot, changes: c } => changes.push(format!(
                "{slot}: general settings {}",
                c.iter()
                    .map(|c| format!("{} → {}", c.field, c.after))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Action::SetImage {
                slot,
                before,
                after,
            } => changes.push(format!(
                "{slot}: image {} → {after}",
                before.as_deref().unwrap_or("none")
            )),
            _ => {}
        }
    }
    if !changes.is_empty() {
        summary.bullets(&changes);
    }
    let steps: Vec<Vec<String>> = stage
        .steps
        .iter()
        .map(|s| {
            vec![
                s.description.clone(),
                if s.ok { "done" } else { "FAILED" }.to_owned(),
                format_ms(s.duration_ms),
            ]
        })
        .collect();
    if !steps.is_empty() {
        summary.table(&["Step", "Result", "Time"], &steps);
    }
    let health: Vec<Vec<String>> = stage
        .health
        .iter()
        .map(|h| {
            vec![
                h.kind.clone(),
                h.slot.to_string(),
                if h.passed { "passed" } else { "failed" }.to_owned(),
                format!("{}/{} healthy", h.successes, h.probes),
            ]
        })
        .collect();
    if !health.is_empty() {
        summary.table(&["Check", "Slot", "Result", "Probes"], &health);
    }
    if stage.result != RunResult::Succeeded && !record.error.is_empty() {
        summary.paragraph(&record.error.join(": "));
    }
    // A rehearsal's emulator is gone once the step ends: no links to it.
    let mut links: Vec<(String, String)> = record
        .urls
        .iter()
        .filter(|_| !context.rehearsal)
        .map(|(slot, url)| (format!("{slot} slot"), url.clone()))
        .collect();
    if let Some(portal) = context.portal_url {
        links.push((
            format!("{} in the Azure portal", record.app),
            portal.to_owned(),
        ));
    }
    summary.links(&links);
    summary
}

/// The app in the Azure portal.
pub fn portal_url(subscription: &str, resource_group: &str, app: &str) -> String {
    format!(
        "https://portal.azure.com/#resource/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Web/sites/{app}/appServices"
    )
}

/// Sets the task's output variables from a record; `slot` is the one the run worked on, if any.
pub fn set_outputs(
    log: &Log,
    record: &ReleaseRecord,
    slot: Option<&SlotName>,
    plan_json: Option<&Path>,
) -> Result<(), slot_release_pipelines::Error> {
    let plan_json = plan_json.map(|p| p.display().to_string());
    slot_release_pipelines::StageOutputs {
        release_id: &record.release_id,
        // The slot the stage worked on (the staging slot after `staging`), so `$(AppUrl)/health` checks it.
        app_url: slot
            .and_then(|slot| record.urls.get(slot))
            .unwrap_or(&record.app_url),
        production_url: &record.app_url,
        slot: slot.map_or("", SlotName::as_str),
        previous_release: record
            .stages
            .first()
            .and_then(|s| s.slots_before.get(&SlotName::production()))
            .map_or("", String::as_str),
        last_known_good: record.last_known_good.as_deref().unwrap_or_default(),
        previous_image_tag: record
            .previous_image
            .as_deref()
            .and_then(|i| i.rsplit_once(':').map(|(_, t)| t))
            .unwrap_or(""),
        plan_json_path: plan_json.as_deref(),
        // What the task reports: a success after warnings is `SucceededWithIssues`, as the step shows it.
        result: match record.result {
            RunResult::Succeeded if log.warning_count() > 0 => "SucceededWithIssues",
            other => other.as_str(),
        },
    }
    .set(log)
}
