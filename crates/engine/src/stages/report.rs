//! The record of a run and what people and the pipeline get from it: the release record's types, the
//! summary text, the markdown summary tab and the task's output variables.

use std::collections::BTreeMap;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use slot_release_pipelines::{Log, Summary, VariableOptions};

use super::{Command, RunResult, format_ms};
use crate::journal::HookRecord;
use crate::plan::{Plan, Stage};

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
    pub slot: String,
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
}

/// The machine-readable record of a run (`--record PATH`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseRecord {
    /// Always [`RECORD_VERSION`].
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
    pub slots: BTreeMap<String, String>,
    /// The last known-good release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_known_good: Option<String>,
    /// The image production ran before (containers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_image: Option<String>,
    /// The production URL.
    pub app_url: String,
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

/// The pipeline run summary (markdown).
pub fn summary_markdown(record: &ReleaseRecord) -> Summary {
    let mut summary = Summary::new();
    summary.heading(
        2,
        &format!(
            "Slot Release {}: {}",
            record.label(),
            record.result.as_str()
        ),
    );
    let rows: Vec<Vec<String>> = record
        .stages
        .iter()
        .map(|s| {
            vec![
                s.stage.to_string(),
                s.result.as_str().to_owned(),
                s.steps.len().to_string(),
                s.health
                    .iter()
                    .map(|h| {
                        format!(
                            "{} {} {}",
                            h.kind,
                            h.slot,
                            if h.passed { "passed" } else { "failed" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect();
    summary.table(&["Stage", "Result", "Steps", "Health"], &rows);
    let slots: Vec<String> = record
        .slots
        .iter()
        .map(|(slot, release)| format!("{slot}: {release}"))
        .collect();
    if !slots.is_empty() {
        summary.bullets(&slots);
    }
    if !record.error.is_empty() {
        summary.paragraph(&record.error.join(": "));
    }
    summary
}

/// Sets the task's output variables from a record.
pub fn set_outputs(
    log: &Log,
    record: &ReleaseRecord,
    slot: &str,
    plan_json: Option<&Path>,
) -> Result<(), slot_release_pipelines::Error> {
    let output = VariableOptions {
        output: true,
        ..VariableOptions::default()
    };
    log.set_variable("ReleaseId", &record.release_id, output)?;
    log.set_variable("AppUrl", &record.app_url, output)?;
    log.set_variable("Slot", slot, output)?;
    log.set_variable(
        "PreviousImageTag",
        record
            .previous_image
            .as_deref()
            .and_then(|i| i.rsplit_once(':').map(|(_, t)| t))
            .unwrap_or(""),
        output,
    )?;
    if let Some(path) = plan_json {
        log.set_variable("PlanJsonPath", &path.display().to_string(), output)?;
    }
    log.set_variable("Result", record.result.as_str(), output)?;
    Ok(())
}
