//! A stand-in for Azure Pipelines running one of our YAML templates as the service and its agents would:
//! template parameters and stage templates expanded, stages and jobs in dependency order with their
//! conditions, each job in its own work directory with a fresh checkout and the agent's variables for the
//! run (default-format build number, `Build.BuildId`, the `System.*` ids), `SlotRelease@1` steps run
//! through the real Node entry point, output variables passed through `dependencies` and
//! `stageDependencies`, and pipeline artifacts published and downloaded between jobs and runs.
//!
//! A job's `strategy.matrix` is expanded as the service does (`fan`).
//!
//! What it does not do: pools, approvals and checks (a deployment job starts at once), `Docker@2` and other
//! tasks than the ones listed in [`Job::step`]; a template using one fails with a message naming it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::agent::{AgentOutcome, AgentResult, AgentRun};
use crate::example::copy_dir;
use crate::world::World;

mod fan;

/// The collection and project every run belongs to.
pub const COLLECTION: &str = "6a1f0c3e-0000-4000-8000-0000000c0111";
pub const PROJECT: &str = "9b2e4d51-0000-4000-8000-00000000d0d0";

/// One run of a pipeline: who it is to the agent.
#[derive(Debug, Clone)]
pub struct Run {
    /// `Build.BuildId`.
    pub build_id: u32,
    /// `System.DefinitionId`.
    pub definition: u32,
    /// `Build.BuildNumber`, in the default format (`20261204.1`).
    pub number: String,
    /// `Build.Reason`: `Manual`, `IndividualCI`, `PullRequest`.
    pub reason: String,
}

/// How a job or a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    SucceededWithIssues,
    Failed,
    Skipped,
}

impl Outcome {
    fn ok(self) -> bool {
        matches!(self, Outcome::Succeeded | Outcome::SucceededWithIssues)
    }
}

/// A job as it ran.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub stage: String,
    pub job: String,
    pub outcome: Outcome,
    /// Each step's name (or display name) and outcome, in order.
    pub steps: Vec<(String, Outcome)>,
    /// Output variables, keyed as the service exposes them (`step.var`, and `job.step.var` for a
    /// deployment job).
    pub outputs: BTreeMap<String, String>,
    /// The `SlotRelease@1` steps' transcripts, for a failure message.
    pub transcripts: Vec<String>,
}

/// A pipeline run's result: every job, in the order they ran.
#[derive(Debug, Clone, Default)]
pub struct RunRecord {
    pub jobs: Vec<JobRecord>,
}

impl RunRecord {
    /// The job's outcome, `Skipped` when it never ran.
    pub fn outcome(&self, stage: &str, job: &str) -> Outcome {
        self.jobs
            .iter()
            .find(|j| j.stage == stage && j.job == job)
            .map_or(Outcome::Skipped, |j| j.outcome)
    }

    /// Every job's transcript, for an assertion message.
    pub fn transcript(&self) -> String {
        self.jobs
            .iter()
            .map(|j| {
                format!(
                    "=== {}/{}: {:?} {:?}\n{}",
                    j.stage,
                    j.job,
                    j.outcome,
                    j.steps,
                    j.transcripts.join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn stage_outcome(&self, stage: &str) -> Outcome {
        let jobs: Vec<&JobRecord> = self.jobs.iter().filter(|j| j.stage == stage).collect();
        if jobs.is_empty() {
            Outcome::Skipped
        } else if jobs.iter().any(|j| j.outcome == Outcome::Failed) {
            Outcome::Failed
        } else {
            Outcome::Succeeded
        }
    }
}

/// Runs pipelines of one project against one world, keeping their artifacts between runs.
#[derive(Debug)]
pub struct Pipelines<'w> {
    world: &'w World,
    root: PathBuf,
    /// The project's sources, as each job checks them out.
    sources: PathBuf,
}

impl<'w> Pipelines<'w> {
    /// Pipelines over `world`, checking out `sources` (a folder with the app and its `release.yml`).
    pub fn new(world: &'w World, sources: &Path) -> Pipelines<'w> {
        let root = world.dir.path().join("pipelines");
        let _ = std::fs::create_dir_all(&root);
        Pipelines {
            world,
            root,
            sources: sources.to_path_buf(),
        }
    }

    /// Runs `template` (a path under `pipelines/templates`) for `run` with `parameters`.
    pub fn run(
        &self,
        template: &Path,
        parameters: &[(&str, Value)],
        run: &Run,
    ) -> Result<RunRecord, String> {
        let stages = expand(template, parameters)?;
        let mut record = RunRecord::default();
        let mut previous: Option<String> = None;
        for stage in stages.as_array().into_iter().flatten() {
            let name = text(&stage["stage"])?;
            let depends: Vec<String> = match &stage["dependsOn"] {
                Value::Null => previous.clone().into_iter().collect(),
                Value::String(s) => vec![s.clone()],
                Value::Array(a) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                other => return Err(format!("stage {name}: dependsOn {other}")),
            };
            previous = Some(name.clone());
            let condition = stage["condition"].as_str().unwrap_or("succeeded()");
            let go = Expr::parse(condition)?.truth(&Scope {
                record: &record,
                depends: &depends,
                variables: &BTreeMap::new(),
                job_ok: true,
            })?;
            if !go {
                continue;
            }
            let stage_vars = self.runtime_variables(&stage["variables"], &record, &name)?;
            for value in stage["jobs"].as_array().into_iter().flatten() {
                let job = Job::read(value, &name)?;
                let ready = job.depends.iter().all(|d| record.outcome(&name, d).ok());
                let matrix = if ready {
                    fan::matrix(value, &record, &name)?
                } else {
                    None
                };
                if let Some(entries) = matrix {
                    let mut vars = stage_vars.clone();
                    vars.extend(self.runtime_variables(&job.variables, &record, &name)?);
                    for (entry, entry_vars) in entries {
                        let mut vars = vars.clone();
                        vars.extend(entry_vars);
                        let instance =
                            Job::read(value, &name)?.named(&format!("{}.{entry}", job.name));
                        let job_record = self.run_job(&instance, run, vars)?;
                        record.jobs.push(job_record);
                    }
                    continue;
                }
                let job_record = if ready {
                    let mut vars = stage_vars.clone();
                    vars.extend(self.runtime_variables(&job.variables, &record, &name)?);
                    self.run_job(&job, run, vars)?
                } else {
                    JobRecord {
                        stage: name.clone(),
                        job: job.name.clone(),
                        outcome: Outcome::Skipped,
                        steps: Vec::new(),
                        outputs: BTreeMap::new(),
                        transcripts: Vec::new(),
                    }
                };
                record.jobs.push(job_record);
            }
        }
        Ok(record)
    }

    /// `variables:` of a stage or job: plain values, and `$[ dependencies… ]` / `$[ stageDependencies… ]`
    /// runtime expressions read from the jobs that ran.
    fn runtime_variables(
        &self,
        vars: &Value,
        record: &RunRecord,
        stage: &str,
    ) -> Result<BTreeMap<String, String>, String> {
        let mut out = BTreeMap::new();
        for (name, value) in vars.as_object().into_iter().flatten() {
            let value = text(value)?;
            let resolved = match value
                .trim()
                .strip_prefix("$[")
                .and_then(|v| v.strip_suffix(']'))
            {
                Some(expr) => output_reference(expr.trim(), record, stage)?,
                None => value,
            };
            out.insert(name.clone(), resolved);
        }
        Ok(out)
    }

    fn run_job(
        &self,
        job: &Job,
        run: &Run,
        variables: BTreeMap<String, String>,
    ) -> Result<JobRecord, String> {
        let dir = self
            .root
            .join(format!("run-{}-{}-{}", run.build_id, job.stage, job.name));
        let _ = std::fs::remove_dir_all(&dir);
        let sources = dir.join("s");
        let workspace = dir.clone();
        let staging = dir.join("a");
        std::fs::create_dir_all(&staging).map_err(|e| e.to_string())?;
        let agent: BTreeMap<&str, String> = BTreeMap::from([
            ("Build.BuildId", run.build_id.to_string()),
            ("Build.BuildNumber", run.number.clone()),
            ("Build.Reason", run.reason.clone()),
            (
                "Build.ArtifactStagingDirectory",
                staging.display().to_string(),
            ),
            ("Build.SourcesDirectory", sources.display().to_string()),
            ("Pipeline.Workspace", workspace.display().to_string()),
            ("System.DefinitionId", run.definition.to_string()),
            ("System.CollectionId", COLLECTION.to_owned()),
            ("System.TeamProjectId", PROJECT.to_owned()),
            ("System.StageName", job.stage.clone()),
            ("System.JobName", job.name.clone()),
            ("System.JobAttempt", "1".to_owned()),
            (
                "Build.DefinitionName",
                format!("pipeline-{}", run.definition),
            ),
        ]);
        let mut macros: BTreeMap<String, String> = agent
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        macros.extend(variables.clone());
        let mut record = JobRecord {
            stage: job.stage.clone(),
            job: job.name.clone(),
            outcome: Outcome::Succeeded,
            steps: Vec::new(),
            outputs: BTreeMap::new(),
            transcripts: Vec::new(),
        };
        let mut job_ok = true;
        for step in &job.steps {
            let label = step["name"]
                .as_str()
                .or(step["displayName"].as_str())
                .or(step["task"].as_str())
                .unwrap_or("step")
                .to_owned();
            let condition = step["condition"].as_str().unwrap_or("succeeded()");
            let go = Expr::parse(condition)?.truth(&Scope {
                record: &RunRecord::default(),
                depends: &[],
                variables: &variables,
                job_ok,
            })?;
            if !go {
                record.steps.push((label, Outcome::Skipped));
                continue;
            }
            let outcome = if step.get("checkout").is_some() {
                copy_dir(&self.sources, &sources).map_err(|e| format!("checkout: {e}"))?;
                Outcome::Succeeded
            } else if step.get("download").is_some() || step.get("script").is_some() {
                // `download: none`; a script only echoes in our templates and is not run here.
                Outcome::Succeeded
            } else {
                let task = text(&step["task"])?;
                let inputs: BTreeMap<String, String> = step["inputs"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| Ok((k.clone(), expand_macros(&text(v)?, &macros))))
                    .collect::<Result<_, String>>()?;
                match task.as_str() {
                    "SlotRelease@1" => {
                        let outcome = self.slot_release(&inputs, &agent, &sources)?;
                        record.transcripts.push(format!(
                            "--- {label}: {:?}\n{}",
                            outcome.result,
                            outcome.transcript()
                        ));
                        if let Some(name) = step["name"].as_str() {
                            for (var, set) in &outcome.variables {
                                if set.output {
                                    record
                                        .outputs
                                        .insert(format!("{name}.{var}"), set.value.clone());
                                    record.outputs.insert(
                                        format!("{}.{name}.{var}", job.name),
                                        set.value.clone(),
                                    );
                                }
                            }
                        }
                        match outcome.result {
                            AgentResult::Succeeded => Outcome::Succeeded,
                            AgentResult::SucceededWithIssues => Outcome::SucceededWithIssues,
                            _ => Outcome::Failed,
                        }
                    }
                    "PublishPipelineArtifact@1" => {
                        let target = self
                            .root
                            .join("artifacts")
                            .join(run.build_id.to_string())
                            .join(&inputs["artifact"]);
                        copy_dir(Path::new(&inputs["targetPath"]), &target)
                            .map_err(|e| format!("publish: {e}"))?;
                        Outcome::Succeeded
                    }
                    "DownloadPipelineArtifact@2" => self.download(&inputs, run)?,
                    other => return Err(format!("the test agent cannot run task {other}")),
                }
            };
            if !outcome.ok() {
                job_ok = false;
            }
            record.steps.push((label, outcome));
        }
        record.outcome = if !job_ok {
            Outcome::Failed
        } else if record
            .steps
            .iter()
            .any(|(_, o)| *o == Outcome::SucceededWithIssues)
        {
            Outcome::SucceededWithIssues
        } else {
            Outcome::Succeeded
        };
        Ok(record)
    }

    fn slot_release(
        &self,
        inputs: &BTreeMap<String, String>,
        agent: &BTreeMap<&str, String>,
        sources: &Path,
    ) -> Result<AgentOutcome, String> {
        let world = self.world;
        let mut task = AgentRun::new(&world.entry_point, sources)
            .env(
                "AGENT_CAINFO",
                &world.emulator.ca_path().display().to_string(),
            )
            .env("SLOT_RELEASE_LOCK_TTL_SECONDS", "6")
            .envs(world.emulator.service_connection_env(
                &slot_release_emulator::ConnectionKind::WorkloadIdentityFederation,
            ))
            .access_token(world.emulator.seed().system_access_token.expose());
        for (name, value) in agent {
            task = task.env(&agent_variable_name(name), value);
        }
        for (name, value) in inputs {
            // The agent roots filePath inputs against the sources folder.
            let value = if ["configFile", "package"].contains(&name.as_str())
                && !value.is_empty()
                && Path::new(value).is_relative()
            {
                sources.join(value).display().to_string()
            } else {
                value.clone()
            };
            task = task.input(name, &value);
        }
        task.run(Duration::from_secs(240))
            .map_err(|e| format!("run the task: {e}"))
    }

    fn download(&self, inputs: &BTreeMap<String, String>, run: &Run) -> Result<Outcome, String> {
        let from = match inputs.get("buildType").map(String::as_str) {
            None | Some("current") => run.build_id.to_string(),
            Some("specific") => {
                if inputs.get("project").map(String::as_str) != Some(PROJECT) {
                    return Ok(Outcome::Failed);
                }
                inputs.get("pipelineId").cloned().unwrap_or_default()
            }
            Some(other) => return Err(format!("buildType {other}")),
        };
        let source = self
            .root
            .join("artifacts")
            .join(&from)
            .join(&inputs["artifactName"]);
        if !source.is_dir() {
            // As the task does: no such artifact in that run fails the step.
            return Ok(Outcome::Failed);
        }
        copy_dir(&source, Path::new(&inputs["targetPath"]))
            .map_err(|e| format!("download: {e}"))?;
        Ok(Outcome::Succeeded)
    }
}

/// `Build.BuildId` → `BUILD_BUILDID`, as the agent exports variables.
fn agent_variable_name(name: &str) -> String {
    name.replace('.', "_").to_uppercase()
}

/// A job of a stage: a `job` with steps, or a `deployment` with `strategy.runOnce.deploy.steps`.
struct Job {
    stage: String,
    name: String,
    depends: Vec<String>,
    variables: Value,
    steps: Vec<Value>,
}

impl Job {
    /// The same job under another name: one entry of its matrix.
    fn named(mut self, name: &str) -> Job {
        self.name = name.to_owned();
        self
    }

    fn read(job: &Value, stage: &str) -> Result<Job, String> {
        let name = job["job"]
            .as_str()
            .or(job["deployment"].as_str())
            .ok_or_else(|| format!("a job of stage {stage} has no name"))?
            .to_owned();
        let steps = if job["deployment"].is_string() {
            &job["strategy"]["runOnce"]["deploy"]["steps"]
        } else {
            &job["steps"]
        };
        Ok(Job {
            stage: stage.to_owned(),
            name,
            depends: match &job["dependsOn"] {
                Value::String(s) => vec![s.clone()],
                Value::Array(a) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            },
            variables: job["variables"].clone(),
            steps: steps.as_array().cloned().unwrap_or_default(),
        })
    }
}

/// The stages of `template` with its parameters (defaults, then `given`) substituted and stage templates
/// included.
fn expand(template: &Path, given: &[(&str, Value)]) -> Result<Value, String> {
    let text = std::fs::read_to_string(template)
        .map_err(|e| format!("read {}: {e}", template.display()))?;
    let doc: Value =
        serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", template.display()))?;
    let mut parameters = BTreeMap::new();
    for p in doc["parameters"].as_array().into_iter().flatten() {
        if let Some(name) = p["name"].as_str()
            && !p["default"].is_null()
        {
            parameters.insert(name.to_owned(), p["default"].clone());
        }
    }
    for (name, value) in given {
        parameters.insert((*name).to_owned(), value.clone());
    }
    let stages = substitute(&doc["stages"], &parameters);
    let mut out = Vec::new();
    for stage in stages.as_array().into_iter().flatten() {
        match stage["template"].as_str() {
            Some(included) => {
                let path = template.parent().unwrap_or(Path::new(".")).join(included);
                let params: Vec<(String, Value)> = stage["parameters"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let params: Vec<(&str, Value)> = params
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.clone()))
                    .collect();
                out.extend(
                    expand(&path, &params)?
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                );
            }
            None => out.push(stage.clone()),
        }
    }
    Ok(Value::Array(out))
}

/// `${{ parameters.x }}` replaced: a whole value by the parameter's value (an object stays one), inside a
/// string by its text.
fn substitute(value: &Value, parameters: &BTreeMap<String, Value>) -> Value {
    match value {
        Value::String(s) => {
            let trimmed = s.trim();
            if let Some(name) = trimmed
                .strip_prefix("${{")
                .and_then(|r| r.strip_suffix("}}"))
                .map(str::trim)
                .and_then(|r| r.strip_prefix("parameters."))
                && let Some(v) = parameters.get(name)
            {
                return v.clone();
            }
            let mut out = s.clone();
            for (name, v) in parameters {
                let as_text = match v {
                    Value::String(t) => t.clone(),
                    other => other.to_string(),
                };
                for form in [
                    format!("${{{{ parameters.{name} }}}}"),
                    format!("${{{{parameters.{name}}}}}"),
                ] {
                    out = out.replace(&form, &as_text);
                }
            }
            Value::String(out)
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| substitute(v, parameters)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), substitute(v, parameters)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `$(Name)` macros replaced by known variables; unknown ones stay as they are, as the agent leaves them.
fn expand_macros(text: &str, macros: &BTreeMap<String, String>) -> String {
    let mut out = text.to_owned();
    for (name, value) in macros {
        out = out.replace(&format!("$({name})"), value);
    }
    out
}

/// `dependencies.<job>.outputs['<key>']` (same stage) or
/// `stageDependencies.<stage>.<job>.outputs['<key>']`; empty when the job or the output is missing, as the
/// service answers.
fn output_reference(expr: &str, record: &RunRecord, stage: &str) -> Result<String, String> {
    let (head, key) = expr
        .split_once(".outputs['")
        .and_then(|(h, k)| Some((h, k.strip_suffix("']")?)))
        .ok_or_else(|| format!("unsupported runtime expression {expr}"))?;
    let parts: Vec<&str> = head.split('.').collect();
    let (from_stage, job) = match parts.as_slice() {
        ["dependencies", job] => (stage, *job),
        ["stageDependencies", s, job] => (*s, *job),
        _ => return Err(format!("unsupported runtime expression {expr}")),
    };
    Ok(record
        .jobs
        .iter()
        .find(|j| j.stage == from_stage && j.job == job)
        .and_then(|j| j.outputs.get(key).cloned())
        .unwrap_or_default())
}

/// What a condition can see.
struct Scope<'a> {
    record: &'a RunRecord,
    depends: &'a [String],
    variables: &'a BTreeMap<String, String>,
    job_ok: bool,
}

/// A condition expression: the functions our templates use.
#[derive(Debug)]
enum Expr {
    Call(String, Vec<Expr>),
    Text(String),
    Variable(String),
}

impl Expr {
    fn parse(text: &str) -> Result<Expr, String> {
        let mut rest = text.trim();
        let expr = Expr::parse_one(&mut rest)?;
        if !rest.trim().is_empty() {
            return Err(format!("cannot read condition {text:?} at {rest:?}"));
        }
        Ok(expr)
    }

    fn parse_one(rest: &mut &str) -> Result<Expr, String> {
        *rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('\'') {
            let end = after.find('\'').ok_or("unterminated string")?;
            let value = after[..end].to_owned();
            *rest = &after[end + 1..];
            return Ok(Expr::Text(value));
        }
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
            .unwrap_or(rest.len());
        let word = rest[..end].to_owned();
        *rest = &rest[end..];
        if let Some(name) = word.strip_prefix("variables.") {
            return Ok(Expr::Variable(name.to_owned()));
        }
        let after = rest.trim_start();
        let Some(mut inner) = after.strip_prefix('(') else {
            return Err(format!("unsupported condition term {word:?}"));
        };
        let mut args = Vec::new();
        loop {
            inner = inner.trim_start();
            if let Some(after) = inner.strip_prefix(')') {
                *rest = after;
                break;
            }
            args.push(Expr::parse_one(&mut inner)?);
            inner = inner.trim_start();
            if let Some(after) = inner.strip_prefix(',') {
                inner = after;
            }
        }
        Ok(Expr::Call(word.to_ascii_lowercase(), args))
    }

    fn value(&self, scope: &Scope<'_>) -> Result<String, String> {
        match self {
            Expr::Text(t) => Ok(t.clone()),
            Expr::Variable(name) => Ok(scope.variables.get(name).cloned().unwrap_or_default()),
            Expr::Call(..) => Ok(self.truth(scope)?.to_string()),
        }
    }

    fn truth(&self, scope: &Scope<'_>) -> Result<bool, String> {
        let Expr::Call(name, args) = self else {
            return Ok(!self.value(scope)?.is_empty());
        };
        let stages = |args: &[Expr]| -> Result<Vec<String>, String> {
            if args.is_empty() {
                Ok(scope.depends.to_vec())
            } else {
                args.iter().map(|a| a.value(scope)).collect()
            }
        };
        Ok(match name.as_str() {
            "always" => true,
            "succeeded" if scope.depends.is_empty() && args.is_empty() => scope.job_ok,
            "succeeded" => stages(args)?
                .iter()
                .all(|s| scope.record.stage_outcome(s).ok()),
            "failed" if scope.depends.is_empty() && args.is_empty() => !scope.job_ok,
            "failed" => stages(args)?
                .iter()
                .any(|s| scope.record.stage_outcome(s) == Outcome::Failed),
            "and" => {
                let mut all = true;
                for a in args {
                    all &= a.truth(scope)?;
                }
                all
            }
            "or" => {
                let mut any = false;
                for a in args {
                    any |= a.truth(scope)?;
                }
                any
            }
            "not" => !args
                .first()
                .ok_or("not() needs an argument")?
                .truth(scope)?,
            "eq" | "ne" => {
                let [a, b] = args.as_slice() else {
                    return Err(format!("{name} needs two arguments"));
                };
                let equal = a.value(scope)?.eq_ignore_ascii_case(&b.value(scope)?);
                equal == (name == "eq")
            }
            other => return Err(format!("unsupported condition function {other}")),
        })
    }
}

fn text(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        other => Err(format!("expected a scalar, found {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_read_as_the_service_reads_them() {
        let mut record = RunRecord::default();
        record.jobs.push(JobRecord {
            stage: "production".into(),
            job: "production".into(),
            outcome: Outcome::Failed,
            steps: Vec::new(),
            outputs: BTreeMap::new(),
            transcripts: Vec::new(),
        });
        let vars = BTreeMap::from([("run".to_owned(), "501".to_owned())]);
        let depends = vec!["production".to_owned()];
        let stage = Scope {
            record: &record,
            depends: &depends,
            variables: &vars,
            job_ok: true,
        };
        assert!(
            Expr::parse("failed('production')")
                .unwrap()
                .truth(&stage)
                .unwrap()
        );
        assert!(!Expr::parse("succeeded()").unwrap().truth(&stage).unwrap());
        let step = Scope {
            record: &record,
            depends: &[],
            variables: &vars,
            job_ok: true,
        };
        let download = Expr::parse("and(succeeded(), ne(variables.run, ''))").unwrap();
        assert!(download.truth(&step).unwrap());
        assert!(
            !Expr::parse("eq(variables.run, '')")
                .unwrap()
                .truth(&step)
                .unwrap()
        );
        assert!(
            Expr::parse("eq(variables.missing, '')")
                .unwrap()
                .truth(&step)
                .unwrap()
        );
        assert!(Expr::parse("bogus()").unwrap().truth(&step).is_err());
    }
}
