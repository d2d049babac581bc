//! The deploy's copy of the package with the environment's settings substituted into its configuration
//! files (`crate::substitute`), made off the runtime's workers before the deploy.

use super::*;
use crate::substitute::{SubstitutionPlan, Values, substitute_package};

impl Exec<'_> {
    /// Writes the substituted copy of `package` beside the run's other files and returns its path; the
    /// log names each file and key replaced (values are never printed). The build's artifact is left as
    /// it is: the journal's SHA-256 stays the artifact's, which a rollback verifies against its build
    /// record, and the copy is made again, the same way, by every deploy of it.
    pub(super) async fn substituted_copy(
        &self,
        package: &std::path::Path,
        plan: &SubstitutionPlan,
    ) -> Result<PathBuf, Failure> {
        let settings = self
            .spec
            .environments
            .get(&plan.environment)
            .map(|e| e.settings.clone())
            .unwrap_or_default();
        let stem = package
            .file_stem()
            .map_or_else(|| "package".into(), |s| s.to_string_lossy().into_owned());
        // The copy keeps the package's extension: it tells OneDeploy's type (a `.jar` stays a jar).
        let ext = package
            .extension()
            .map_or_else(|| "zip".into(), |e| e.to_string_lossy().into_owned());
        let copy = self
            .opts
            .work_dir
            .join(format!("{stem}.{}.{ext}", plan.environment));
        let (from, to, plan_owned, cancel) = (
            package.to_path_buf(),
            copy.clone(),
            plan.clone(),
            self.ctx.cancel.clone(),
        );
        let changes = tokio::task::spawn_blocking(move || {
            substitute_package(&from, &to, &plan_owned, &Values::new(settings), &cancel)
        })
        .await
        .map_err(|e| {
            Failure::failed(Error::StepFailed {
                step: "substitute variables in the package".into(),
                source: Box::new(Error::Substitution {
                    file: package.display().to_string(),
                    line: 0,
                    reason: e.to_string(),
                }),
            })
        })?
        .map_err(|err| {
            if err.is_cancelled() {
                Failure::cancelled(err)
            } else {
                Failure::failed(Error::StepFailed {
                    step: "substitute variables in the package".into(),
                    source: Box::new(err),
                })
            }
        })?;
        if changes.is_empty() {
            self.log().warning(&format!(
                "Variable substitution from {}'s settings changed no key in the package",
                plan.environment
            ));
        }
        for change in &changes {
            self.log().info(&format!(
                "Substituted in {} from {}'s settings: {}",
                change.file,
                plan.environment,
                change.keys.join(", ")
            ));
        }
        Ok(copy)
    }
}
