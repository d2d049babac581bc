//! What the agent hands a task through the environment: inputs (`INPUT_<NAME>`), service connections
//! (`ENDPOINT_*`), pipeline variables and the well-known `SYSTEM_*`/`BUILD_*`/`AGENT_*` values.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::Error;

/// A secret string (an access token, a service principal key). It has no `Display`, and its `Debug`
/// is redacted, so it cannot end up in a log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that must send it somewhere. Register it with
    /// [`crate::Log::register_secret`] before anything could print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Why the run was started (`BUILD_REASON`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildReason {
    Manual,
    IndividualCi,
    BatchedCi,
    Schedule,
    PullRequest,
    ResourceTrigger,
    Other(String),
}

impl BuildReason {
    fn parse(value: &str) -> BuildReason {
        match value {
            "Manual" => BuildReason::Manual,
            "IndividualCI" => BuildReason::IndividualCi,
            "BatchedCI" => BuildReason::BatchedCi,
            "Schedule" => BuildReason::Schedule,
            "PullRequest" => BuildReason::PullRequest,
            "ResourceTrigger" => BuildReason::ResourceTrigger,
            other => BuildReason::Other(other.to_owned()),
        }
    }
}

/// The pull request a run validates (`SYSTEM_PULLREQUEST_*`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PullRequest {
    pub id: Option<String>,
    /// GitHub pull requests have a number distinct from the id.
    pub number: Option<String>,
    pub source_branch: Option<String>,
    pub target_branch: Option<String>,
    pub source_repository_uri: Option<String>,
    pub is_fork: bool,
}

/// A service connection as the agent exports it (`ENDPOINT_URL_<id>`, `ENDPOINT_AUTH_*`, `ENDPOINT_DATA_*`).
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The id used in the variable names (as given, or lower-cased if that is what matched).
    pub id: String,
    pub url: Option<String>,
    /// The authorization scheme, e.g. `WorkloadIdentityFederation`, `ServicePrincipal`.
    pub scheme: Option<String>,
    /// Authorization parameters, keys lower-cased. Values may be secrets (keys, certificates, id tokens).
    auth: BTreeMap<String, Secret>,
    /// Data items (`subscriptionid`, `environment`, …), keys lower-cased.
    pub data: BTreeMap<String, String>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("scheme", &self.scheme)
            .field("auth_keys", &self.auth.keys().collect::<Vec<_>>())
            .field("data", &self.data)
            .finish()
    }
}

impl Endpoint {
    /// An authorization parameter by name (case-insensitive), e.g. `tenantid`, `serviceprincipalid`,
    /// `serviceprincipalkey`, `idtoken`.
    pub fn auth_parameter(&self, key: &str) -> Option<&Secret> {
        self.auth.get(&key.to_ascii_lowercase())
    }

    /// The names of the authorization parameters present.
    pub fn auth_parameter_names(&self) -> impl Iterator<Item = &str> {
        self.auth.keys().map(String::as_str)
    }

    /// A data item by name (case-insensitive), e.g. `subscriptionid`, `environment`.
    pub fn data_item(&self, key: &str) -> Option<&str> {
        self.data.get(&key.to_ascii_lowercase()).map(String::as_str)
    }

    /// Scheme comparison the way azure-arm-rest does it: case-insensitive.
    pub fn scheme_is(&self, scheme: &str) -> bool {
        self.scheme
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
    }
}

/// A snapshot of the process environment as the agent set it.
#[derive(Clone, Default)]
pub struct AgentEnv {
    vars: BTreeMap<String, String>,
}

impl std::fmt::Debug for AgentEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values include tokens and keys; only the number of variables is safe to show.
        f.debug_struct("AgentEnv")
            .field("vars", &self.vars.len())
            .finish()
    }
}

/// Converts a name to the agent's environment form: `.` and space become `_`, then upper case.
pub(crate) fn env_name(name: &str) -> String {
    name.replace(['.', ' '], "_").to_uppercase()
}

/// The pipeline run a build happens in, from the agent's variables; each `None` outside a pipeline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildRun {
    /// `Build.SourceVersion`: the commit built.
    pub source_version: Option<String>,
    /// `Build.BuildId`: the run.
    pub build_id: Option<String>,
    /// `System.DefinitionId`: the pipeline.
    pub definition_id: Option<String>,
    /// `System.TeamProjectId`: the project.
    pub team_project_id: Option<String>,
    /// `System.CollectionId`: the organisation.
    pub collection_id: Option<String>,
    /// `Build.Repository.Name`.
    pub repository_name: Option<String>,
}

impl BuildRun {
    /// The variables that name a build (`Build.BuildNumber`, `Build.BuildId`): outside a pipeline they do
    /// not exist, and a config that uses them gets the local release id instead.
    pub const NAME_VARIABLES: [&'static str; 2] = ["BUILD_BUILDNUMBER", "BUILD_BUILDID"];
}

impl AgentEnv {
    /// The current process environment (variables that are not valid UTF-8 are skipped).
    pub fn from_env() -> AgentEnv {
        AgentEnv::from_vars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// An environment from explicit pairs (tests, the harness).
    pub fn from_vars<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> AgentEnv {
        AgentEnv {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Every variable, as the job's steps see them (what `$(...)` in release.yml may name).
    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }

    /// This environment with a past build's variables in place of this run's (`Build.BuildNumber`,
    /// `Build.BuildId`, `Build.SourceVersion`): a rollback renders the config as that build was released.
    pub fn with_build(&self, number: &str, build_id: &str, commit: Option<&str>) -> AgentEnv {
        let mut vars = self.vars.clone();
        vars.insert("BUILD_BUILDNUMBER".to_owned(), number.to_owned());
        vars.insert("BUILD_BUILDID".to_owned(), build_id.to_owned());
        match commit {
            Some(commit) => vars.insert("BUILD_SOURCEVERSION".to_owned(), commit.to_owned()),
            None => vars.remove("BUILD_SOURCEVERSION"),
        };
        AgentEnv { vars }
    }

    /// A raw environment variable, `None` when unset or empty.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The task's inputs.
    pub fn inputs(&self) -> TaskInputs<'_> {
        TaskInputs { env: self }
    }

    /// A pipeline variable by its pipeline name (`System.Debug` is read from `SYSTEM_DEBUG`).
    pub fn variable(&self, name: &str) -> Option<&str> {
        self.var(&env_name(name))
    }

    /// Running under the agent (`TF_BUILD` is set).
    pub fn is_pipeline(&self) -> bool {
        self.var("TF_BUILD").is_some()
    }

    /// `System.Debug` is true.
    pub fn system_debug(&self) -> bool {
        self.var("SYSTEM_DEBUG")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    pub fn build_reason(&self) -> Option<BuildReason> {
        self.var("BUILD_REASON").map(BuildReason::parse)
    }

    /// The run validates a pull request: writes must not happen.
    pub fn is_pull_request(&self) -> bool {
        self.build_reason() == Some(BuildReason::PullRequest)
    }

    /// The pull request, when the run validates one.
    pub fn pull_request(&self) -> Option<PullRequest> {
        let get = |suffix: &str| {
            self.var(&format!("SYSTEM_PULLREQUEST_{suffix}"))
                .map(str::to_owned)
        };
        let pr = PullRequest {
            id: get("PULLREQUESTID"),
            number: get("PULLREQUESTNUMBER"),
            source_branch: get("SOURCEBRANCH"),
            target_branch: get("TARGETBRANCH"),
            source_repository_uri: get("SOURCEREPOSITORYURI"),
            is_fork: get("ISFORK").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        };
        (self.is_pull_request() || pr.id.is_some()).then_some(pr)
    }

    /// The run that builds: what a build record keeps so its artifact can be found and trusted again.
    pub fn build_run(&self) -> BuildRun {
        let get = |name: &str| {
            self.var(name)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        BuildRun {
            source_version: get("BUILD_SOURCEVERSION"),
            build_id: get("BUILD_BUILDID"),
            definition_id: get("SYSTEM_DEFINITIONID"),
            team_project_id: get("SYSTEM_TEAMPROJECTID"),
            collection_id: get("SYSTEM_COLLECTIONID"),
            repository_name: get("BUILD_REPOSITORY_NAME"),
        }
    }

    /// `Build.BuildNumber`: the run's display name (`20261204.1` by default), any text Azure Pipelines allows.
    pub fn build_number(&self) -> Option<&str> {
        self.var("BUILD_BUILDNUMBER")
    }

    /// An identity for this pipeline run that no other run shares, in any pipeline, project or
    /// organisation: the build id (unique within a collection) qualified by the pipeline definition and
    /// the collection. Two pipelines that share a build number still get different identities; every job
    /// and every retried stage of one run gets the same one. `None` outside a pipeline run.
    pub fn run_identity(&self) -> Option<String> {
        let build = self.var("BUILD_BUILDID")?;
        let mut id = format!("build-{build}");
        if let Some(definition) = self.var("SYSTEM_DEFINITIONID") {
            id.push_str(&format!(".def-{definition}"));
        }
        if let Some(collection) = self.var("SYSTEM_COLLECTIONID") {
            id.push_str(&format!(".{collection}"));
        }
        Some(id)
    }

    /// `System.JobAttempt`: 1 for a job's first run, higher for each retry of a failed or cancelled job.
    /// Azure Pipelines starts a retry only once the earlier attempt has ended.
    pub fn job_attempt(&self) -> Option<u32> {
        self.var("SYSTEM_JOBATTEMPT").and_then(|v| v.parse().ok())
    }

    /// Who is running, for a lock holder's description: pipeline, run, stage, job and agent, as known.
    pub fn run_description(&self) -> Vec<(&'static str, String)> {
        [
            ("pipeline", "BUILD_DEFINITIONNAME"),
            ("run", "BUILD_BUILDNUMBER"),
            ("runId", "BUILD_BUILDID"),
            ("stage", "SYSTEM_STAGENAME"),
            ("job", "SYSTEM_JOBDISPLAYNAME"),
            ("agent", "AGENT_NAME"),
        ]
        .into_iter()
        .filter_map(|(key, var)| Some((key, self.var(var)?.to_owned())))
        .collect()
    }

    /// `Agent.TempDirectory`: cleaned at the start and end of every job.
    pub fn temp_dir(&self) -> Option<PathBuf> {
        self.var("AGENT_TEMPDIRECTORY").map(PathBuf::from)
    }

    /// `Build.SourcesDirectory`: the checked-out repository.
    pub fn sources_directory(&self) -> Option<PathBuf> {
        self.var("BUILD_SOURCESDIRECTORY").map(PathBuf::from)
    }

    /// `System.DefaultWorkingDirectory`: where the sources are checked out.
    pub fn default_working_directory(&self) -> Option<PathBuf> {
        self.var("SYSTEM_DEFAULTWORKINGDIRECTORY")
            .map(PathBuf::from)
    }

    /// The job's access token: `SYSTEM_ACCESSTOKEN` when the pipeline maps it, else the token of the
    /// built-in `SYSTEMVSSCONNECTION` endpoint that the agent always exports to tasks.
    pub fn access_token(&self) -> Option<Secret> {
        self.var("SYSTEM_ACCESSTOKEN")
            .or_else(|| self.var("ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN"))
            .map(Secret::new)
    }

    /// The URL to request an OIDC token for workload identity federation (`System.OidcRequestUri`).
    pub fn oidc_request_uri(&self) -> Option<&str> {
        self.var("SYSTEM_OIDCREQUESTURI")
    }

    /// A service connection by id. The id is tried as given, then lower-cased (the agent writes
    /// lower-case GUIDs). `None` when the agent exported nothing for it.
    pub fn endpoint(&self, id: &str) -> Option<Endpoint> {
        let lower = id.to_ascii_lowercase();
        [id, lower.as_str()]
            .into_iter()
            .find_map(|candidate| self.endpoint_exact(candidate))
    }

    fn endpoint_exact(&self, id: &str) -> Option<Endpoint> {
        let url = self.var(&format!("ENDPOINT_URL_{id}")).map(str::to_owned);
        let scheme_var = self
            .var(&format!("ENDPOINT_AUTH_SCHEME_{id}"))
            .map(str::to_owned);
        let auth_json = self.var(&format!("ENDPOINT_AUTH_{id}"));
        let auth_prefix = format!("ENDPOINT_AUTH_PARAMETER_{id}_");
        let data_prefix = format!("ENDPOINT_DATA_{id}_");
        let mut auth: BTreeMap<String, Secret> = BTreeMap::new();
        let mut data: BTreeMap<String, String> = BTreeMap::new();
        for (key, value) in &self.vars {
            if let Some(name) = key.strip_prefix(&auth_prefix) {
                auth.insert(name.to_ascii_lowercase(), Secret::new(value.clone()));
            } else if let Some(name) = key.strip_prefix(&data_prefix) {
                data.insert(name.to_ascii_lowercase(), value.clone());
            }
        }
        // The JSON forms carry the same values; they fill in whatever the per-key variables lack.
        let mut scheme = scheme_var;
        if let Some(json) =
            auth_json.and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
        {
            if scheme.is_none() {
                scheme = json
                    .get("scheme")
                    .and_then(|s| s.as_str())
                    .map(str::to_owned);
            }
            if let Some(params) = json.get("parameters").and_then(|p| p.as_object()) {
                for (key, value) in params {
                    if let Some(value) = value.as_str() {
                        auth.entry(key.to_ascii_lowercase())
                            .or_insert_with(|| Secret::new(value));
                    }
                }
            }
        }
        if let Some(json) = self
            .var(&format!("ENDPOINT_DATA_{id}"))
            .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
            && let Some(items) = json.as_object()
        {
            for (key, value) in items {
                if let Some(value) = value.as_str() {
                    data.entry(key.to_ascii_lowercase())
                        .or_insert_with(|| value.to_owned());
                }
            }
        }
        if url.is_none() && scheme.is_none() && auth.is_empty() && data.is_empty() {
            return None;
        }
        Some(Endpoint {
            id: id.to_owned(),
            url,
            scheme,
            auth,
            data,
        })
    }

    /// Every secret value the agent handed this process: endpoint authorization parameters, the access
    /// token and secret variables. Register them all with the logger before printing anything.
    pub fn secrets(&self) -> Vec<Secret> {
        let mut out = Vec::new();
        for (key, value) in &self.vars {
            let secret_key = key.starts_with("ENDPOINT_AUTH_PARAMETER_")
                && !is_public_auth_parameter(key)
                || key.starts_with("SECRET_")
                || key == "SYSTEM_ACCESSTOKEN";
            if secret_key && !value.is_empty() {
                out.push(Secret::new(value.clone()));
            }
        }
        out
    }
}

/// Authorization parameters that identify rather than authenticate; masking them would hide useful
/// diagnostics (a tenant id) and mangle unrelated output that happens to contain them.
fn is_public_auth_parameter(key: &str) -> bool {
    [
        "_TENANTID",
        "_SERVICEPRINCIPALID",
        "_AUTHENTICATIONTYPE",
        "_SCOPE",
        "_WORKLOADIDENTITYFEDERATIONSUBJECT",
        "_WORKLOADIDENTITYFEDERATIONISSUER",
    ]
    .iter()
    .any(|suffix| key.ends_with(suffix))
}

/// The task's inputs, read from `INPUT_<NAME>` (dots and spaces become `_`, upper case). Values are
/// trimmed as the agent does; an empty value counts as not set.
#[derive(Debug, Clone, Copy)]
pub struct TaskInputs<'a> {
    env: &'a AgentEnv,
}

impl TaskInputs<'_> {
    /// The environment variable that carries an input.
    pub fn env_var(name: &str) -> String {
        format!("INPUT_{}", env_name(name))
    }

    /// An input's value, `None` when unset or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.env
            .var(&TaskInputs::env_var(name))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    /// A required input.
    pub fn required(&self, name: &str) -> Result<&str, Error> {
        self.get(name).ok_or_else(|| Error::MissingInput {
            name: name.to_owned(),
            env_var: TaskInputs::env_var(name),
        })
    }

    /// A boolean input: `true`/`false` in any case; blank gives `default`.
    pub fn boolean(&self, name: &str, default: bool) -> Result<bool, Error> {
        match self.get(name) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(Error::InvalidBoolean {
                name: name.to_owned(),
                value: v.to_owned(),
            }),
        }
    }

    /// A whole-number input; blank gives `None`.
    pub fn number(&self, name: &str) -> Result<Option<u64>, Error> {
        self.get(name)
            .map(|v| {
                v.parse::<u64>().map_err(|_| Error::InvalidNumber {
                    name: name.to_owned(),
                    value: v.to_owned(),
                })
            })
            .transpose()
    }

    /// A multi-line input: one entry per non-blank line, each trimmed.
    pub fn lines(&self, name: &str) -> Vec<&str> {
        self.get(name)
            .map(|v| v.lines().map(str::trim).filter(|l| !l.is_empty()).collect())
            .unwrap_or_default()
    }

    /// A `filePath` input. The agent has already rooted it; a relative value (a local run) is taken
    /// against `System.DefaultWorkingDirectory` when that is known.
    pub fn path(&self, name: &str) -> Option<PathBuf> {
        let value = PathBuf::from(self.get(name)?);
        match self.env.default_working_directory() {
            Some(base) if value.is_relative() => Some(base.join(value)),
            _ => Some(value),
        }
    }

    /// The service connection named by a `connectedService:*` input (its value is the endpoint id).
    pub fn endpoint(&self, name: &str) -> Result<Endpoint, Error> {
        let id = self.required(name)?;
        // A multi-valued connection input is a comma-separated list; this task takes one.
        let id = id.split(',').next().unwrap_or(id).trim();
        self.env.endpoint(id).ok_or_else(|| Error::MissingEndpoint {
            input: name.to_owned(),
            id: id.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> AgentEnv {
        AgentEnv::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn the_build_run_comes_from_the_agents_variables() {
        let e = env(&[
            ("BUILD_BUILDID", "601"),
            ("SYSTEM_DEFINITIONID", "8"),
            ("SYSTEM_TEAMPROJECTID", "p-1"),
            ("BUILD_SOURCEVERSION", "  "),
        ]);
        let run = e.build_run();
        assert_eq!(run.build_id.as_deref(), Some("601"));
        assert_eq!(run.definition_id.as_deref(), Some("8"));
        assert_eq!(run.team_project_id.as_deref(), Some("p-1"));
        assert_eq!(run.source_version, None, "blank is not given");
        assert_eq!(env(&[]).build_run(), BuildRun::default());
    }

    #[test]
    fn input_names_follow_the_agent() {
        assert_eq!(TaskInputs::env_var("configFile"), "INPUT_CONFIGFILE");
        assert_eq!(TaskInputs::env_var("a.b c"), "INPUT_A_B_C");
        let e = env(&[
            ("INPUT_CONFIGFILE", "  release.yml \n"),
            ("INPUT_EMPTY", "  "),
        ]);
        assert_eq!(e.inputs().get("configFile"), Some("release.yml"));
        assert_eq!(e.inputs().get("empty"), None);
        assert!(matches!(
            e.inputs().required("empty"),
            Err(Error::MissingInput { .. })
        ));
    }

    #[test]
    fn booleans_numbers_and_lines() {
        let e = env(&[
            ("INPUT_A", "True"),
            ("INPUT_B", "FALSE"),
            ("INPUT_C", "yes"),
            ("INPUT_N", "30"),
            ("INPUT_M", "a\r\n\n b \n"),
        ]);
        let i = e.inputs();
        assert!(i.boolean("a", false).is_ok_and(|v| v));
        assert!(i.boolean("b", true).is_ok_and(|v| !v));
        assert!(i.boolean("missing", true).is_ok_and(|v| v));
        assert!(matches!(
            i.boolean("c", false),
            Err(Error::InvalidBoolean { .. })
        ));
        assert_eq!(i.number("n").ok().flatten(), Some(30));
        assert!(i.number("m").is_err());
        assert_eq!(i.lines("m"), ["a", "b"]);
    }

    #[test]
    fn endpoint_from_per_key_variables_and_json() {
        let id = "0f1e2d3c-aaaa-bbbb-cccc-000000000001";
        let e = env(&[
            (
                "INPUT_AZURESUBSCRIPTION",
                "0F1E2D3C-AAAA-BBBB-CCCC-000000000001",
            ),
            (
                &format!("ENDPOINT_URL_{id}"),
                "https://management.emulator.test/",
            ),
            (
                &format!("ENDPOINT_AUTH_{id}"),
                r#"{"parameters":{"serviceprincipalid":"sp","tenantid":"t"},"scheme":"WorkloadIdentityFederation"}"#,
            ),
            (
                &format!("ENDPOINT_AUTH_PARAMETER_{id}_TENANTID"),
                "tenant-1",
            ),
            (&format!("ENDPOINT_DATA_{id}_SUBSCRIPTIONID"), "sub-1"),
            ("SYSTEM_ACCESSTOKEN", "tok"),
        ]);
        let ep = e.inputs().endpoint("azureSubscription").ok();
        let ep = ep.as_ref();
        assert_eq!(ep.map(|e| e.id.as_str()), Some(id));
        assert!(ep.is_some_and(|e| e.scheme_is("workloadidentityfederation")));
        assert_eq!(
            ep.and_then(|e| e.auth_parameter("TenantId"))
                .map(Secret::expose),
            Some("tenant-1")
        );
        assert_eq!(
            ep.and_then(|e| e.auth_parameter("serviceprincipalid"))
                .map(Secret::expose),
            Some("sp")
        );
        assert_eq!(
            ep.and_then(|e| e.data_item("SubscriptionId")),
            Some("sub-1")
        );
        assert!(!format!("{ep:?}").contains("tenant-1"));
        assert_eq!(e.access_token().as_ref().map(Secret::expose), Some("tok"));
        assert_eq!(
            e.secrets().iter().map(Secret::expose).collect::<Vec<_>>(),
            ["tok"]
        );
        assert!(matches!(
            env(&[("INPUT_X", "nope")]).inputs().endpoint("x"),
            Err(Error::MissingEndpoint { .. })
        ));
    }

    #[test]
    fn build_reason_and_pull_request() {
        let e = env(&[
            ("BUILD_REASON", "PullRequest"),
            ("SYSTEM_PULLREQUEST_PULLREQUESTID", "42"),
            ("SYSTEM_PULLREQUEST_ISFORK", "True"),
        ]);
        assert!(e.is_pull_request());
        let pr = e.pull_request();
        assert_eq!(pr.as_ref().and_then(|p| p.id.as_deref()), Some("42"));
        assert!(pr.is_some_and(|p| p.is_fork));
        assert!(!env(&[("BUILD_REASON", "IndividualCI")]).is_pull_request());
        assert_eq!(
            env(&[("SYSTEM_DEBUG", "true")]).variable("System.Debug"),
            Some("true")
        );
    }

    #[test]
    fn two_pipelines_sharing_a_build_number_get_different_identities() {
        let run = |definition: &str| {
            env(&[
                ("BUILD_BUILDNUMBER", "20261204.1"),
                ("BUILD_BUILDID", "512"),
                ("SYSTEM_DEFINITIONID", definition),
                (
                    "SYSTEM_COLLECTIONID",
                    "6a1f0c3e-0000-4000-8000-000000000001",
                ),
            ])
        };
        let (a, b) = (run("7"), run("9"));
        assert_eq!(a.build_number(), b.build_number());
        assert_ne!(a.run_identity(), b.run_identity());
        assert_eq!(
            a.run_identity().as_deref(),
            Some("build-512.def-7.6a1f0c3e-0000-4000-8000-000000000001")
        );
        assert_eq!(env(&[("BUILD_BUILDNUMBER", "1")]).run_identity(), None);
        assert_eq!(env(&[("SYSTEM_JOBATTEMPT", "3")]).job_attempt(), Some(3));
    }
}
