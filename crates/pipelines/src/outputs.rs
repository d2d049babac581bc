//! The task's output variables: their names (task.json `outputVariables`) are spelled here and nowhere else,
//! and every one is set as an output (`isoutput=true`) so later jobs and stages can read it.

use crate::{Error, Log, VariableOptions};

/// What a stage step tells later steps, jobs and stages.
#[derive(Debug, Clone, Default)]
pub struct StageOutputs<'a> {
    /// `ReleaseId`: the release's identity.
    pub release_id: &'a str,
    /// `AppUrl`: the URL of the slot the step worked on.
    pub app_url: &'a str,
    /// `ProductionUrl`.
    pub production_url: &'a str,
    /// `Slot`: the slot that holds the release after the step.
    pub slot: &'a str,
    /// `PreviousRelease`: what production ran when the step began.
    pub previous_release: &'a str,
    /// `LastKnownGood`.
    pub last_known_good: &'a str,
    /// `PreviousImageTag` (containers).
    pub previous_image_tag: &'a str,
    /// `PlanJsonPath`, when a plan was written.
    pub plan_json_path: Option<&'a str>,
    /// `Result`: Succeeded, SucceededWithIssues, Failed, RolledBack or Cancelled.
    pub result: &'a str,
}

/// What `plan` tells later steps.
#[derive(Debug, Clone, Default)]
pub struct PlanOutputs<'a> {
    /// `PlanJsonPath`.
    pub plan_json_path: &'a str,
    /// For the rollback stage's plan: `RollbackArtifactRunId`, `RollbackArtifactPipelineId` and
    /// `RollbackArtifactName` (set empty when the rollback needs no artifact, so a step can test them).
    pub rollback_artifact: Option<(&'a str, &'a str, &'a str)>,
    /// `Matrix`: the targets as JSON for `strategy.matrix`.
    pub matrix: Option<&'a str>,
}

const OUTPUT: VariableOptions = VariableOptions {
    output: true,
    secret: false,
    read_only: false,
};

impl StageOutputs<'_> {
    /// Sets every output variable.
    pub fn set(&self, log: &Log) -> Result<(), Error> {
        log.set_variable("ReleaseId", self.release_id, OUTPUT)?;
        log.set_variable("AppUrl", self.app_url, OUTPUT)?;
        log.set_variable("ProductionUrl", self.production_url, OUTPUT)?;
        log.set_variable("Slot", self.slot, OUTPUT)?;
        log.set_variable("PreviousRelease", self.previous_release, OUTPUT)?;
        log.set_variable("LastKnownGood", self.last_known_good, OUTPUT)?;
        log.set_variable("PreviousImageTag", self.previous_image_tag, OUTPUT)?;
        if let Some(path) = self.plan_json_path {
            log.set_variable("PlanJsonPath", path, OUTPUT)?;
        }
        log.set_variable("Result", self.result, OUTPUT)
    }
}

impl PlanOutputs<'_> {
    /// Sets every output variable.
    pub fn set(&self, log: &Log) -> Result<(), Error> {
        log.set_variable("PlanJsonPath", self.plan_json_path, OUTPUT)?;
        if let Some((run, pipeline, name)) = self.rollback_artifact {
            log.set_variable("RollbackArtifactRunId", run, OUTPUT)?;
            log.set_variable("RollbackArtifactPipelineId", pipeline, OUTPUT)?;
            log.set_variable("RollbackArtifactName", name, OUTPUT)?;
        }
        if let Some(matrix) = self.matrix {
            log.set_variable("Matrix", matrix, OUTPUT)?;
        }
        Ok(())
    }
}
