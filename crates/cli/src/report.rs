//! The run's report: the summary in the log, the release record, and in a pipeline the plan, the output
//! variables and one summary tab per stage, all masked like the log.

use std::path::Path;

use anyhow::{Context as _, Result};
use slot_release_engine::plan::Stage;
use slot_release_engine::release;
use slot_release_engine::stages;
use slot_release_engine::state::SlotName;
use slot_release_pipelines::{AgentEnv, Log, OutputMode};

/// The slot that holds the new release after the run: the staging slot after `staging` (the one of
/// `environment` when the run named one), else production; none after a build without a staging stage.
pub(crate) fn release_slot(
    loaded: &release::LoadedRelease,
    record: &stages::ReleaseRecord,
    environment: Option<&str>,
) -> Option<SlotName> {
    match record.stages.last().map(|s| s.stage) {
        Some(Stage::Staging) => loaded.spec.staging_slot(environment).cloned(),
        Some(Stage::Build) => loaded.spec.staging_slot(None).cloned(),
        _ => Some(SlotName::production()),
    }
}

/// A file name from text that names an app and a stage: letters, digits, `-`, `_` and `.` only.
fn summary_file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The summary, the record, and in a pipeline the output variables and the run summary.
pub(crate) fn report(
    log: &Log,
    record: &stages::ReleaseRecord,
    slot: Option<&SlotName>,
    record_path: Option<&Path>,
    work_dir: &Path,
    json: bool,
    summary: &stages::SummaryContext<'_>,
) -> Result<()> {
    if json {
        log.print_json(record);
    } else {
        log.info(stages::render_summary(record).trim_end());
    }
    if let Some(path) = record_path {
        // Masked like the log: the record quotes hook output and Azure messages.
        log.write_json("the release record", path, record)?;
    }
    if log.mode() == OutputMode::Pipeline {
        // The agent reads the summary and the plan after the process ends, so they must outlive a
        // temporary work folder: the agent's temp directory is kept until the job ends.
        let out_dir = AgentEnv::from_env()
            .temp_dir()
            .map(|t| t.join("slot-release"))
            .unwrap_or_else(|| work_dir.to_path_buf());
        std::fs::create_dir_all(&out_dir)
            .with_context(|| format!("cannot create {}", out_dir.display()))?;
        let work_dir = out_dir.as_path();
        let plan_path = work_dir.join("plan.json");
        if let Some(plan) = record.stages.last().and_then(|s| s.plan.as_ref()) {
            log.write_json("the plan", &plan_path, plan)?;
        }
        stages::set_outputs(log, record, slot, Some(&plan_path))?;
        // One file per stage, each attached under its own name: a job's summary never overwrites
        // another's, and a rehearsal's never passes for a release's.
        for stage in &record.stages {
            let name = if summary.rehearsal {
                format!("rehearsal-{}.md", stage.stage)
            } else {
                format!("{}-{}.md", record.app, stage.stage)
            };
            log.write_summary(
                &work_dir.join(summary_file_name(&name)),
                &stages::stage_summary(record, stage, summary),
            )?;
        }
    }
    Ok(())
}
