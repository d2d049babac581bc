//! Slot Release emulator: a local, HTTPS, Host-routed stand-in for Entra ID, the Azure Pipelines OIDC
//! endpoint, the managed identity endpoint, ARM App Service, Kudu and Key Vault, running real app
//! processes, with fault injection and state inspection. See `docs/emulator.md`.

mod admin;
mod applog;
mod arm;
mod cert;
mod discovery;
mod entra;
mod error;
mod fault;
mod frontend;
mod functions_host;
mod hostnames;
mod iis;
mod keyvault;
mod kql;
mod kudu;
mod kudu_job;
mod kudu_logs;
mod kv_write;
mod logs;
mod metrics;
mod onedeploy;
mod oryx;
mod platform;
mod proxy;
mod reqlog;
mod runtime;
mod seed;
mod server;
mod stack;
mod state;
mod tags;
mod tls;
mod token;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use error::EmulatorError;
pub use fault::{Fault, RouteMatch, Scope};
pub use platform::{ConnectionString, ConnectionStringType};
pub use reqlog::REQUEST_LOG_CAPACITY;
pub use seed::{
    AppKind, AppOs, ConnectionKind, HostNameStyle, SecretString, Seed, SeedApp, SeedClient,
    SeedManagedIdentity, SeedPlan, SeedResourceGroup, SeedSecret, SeedServiceConnection, SeedSlot,
    SeedSubscription, SeedVault, SlotConfigNames, Throttle,
};
pub use server::LoopbackResolver;
pub use state::{
    AppSnapshot, DeploymentRecord, RequestRecord, RunState, SlotSnapshot, StateSnapshot,
    VaultSnapshot,
};
pub use token::{Credential, CredentialKind};

/// The DNS suffix of every emulator host.
pub const DOMAIN: &str = "emulator.test";
/// Token audience of ARM (and Kudu).
pub const ARM_AUDIENCE: &str = "https://management.emulator.test/";
/// Token audience of Key Vault.
pub const VAULT_AUDIENCE: &str = "https://vault.emulator.test";
/// Token audience of the Log Analytics query API.
pub const LOGS_AUDIENCE: &str = "https://api.loganalytics.emulator.test";

/// Maps a container image pattern to the local command that stands in for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageMapping {
    /// Image reference glob, e.g. `contoso/app:*` (`*` matches any run of characters).
    pub pattern: String,
    /// Command run with `sh -c`.
    pub command: String,
    /// Working directory of the command (in a seed file: relative to the file's folder, which is
    /// the default).
    #[serde(default)]
    pub dir: PathBuf,
    /// The image sits in a private registry: a slot pulls it only with what this accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private: Option<PrivateImage>,
}

/// Who may pull a private image. The emulator cannot check the registry's role assignments
/// (`AcrPull`), so `identity: true` lets any slot pull that has `acrUseManagedIdentityCreds` on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrivateImage {
    /// The registry host, compared with the slot's `DOCKER_REGISTRY_SERVER_URL`.
    pub server: String,
    /// The user name `DOCKER_REGISTRY_SERVER_USERNAME` must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The password `DOCKER_REGISTRY_SERVER_PASSWORD` must carry (a Key Vault reference is resolved
    /// first, as App Service does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Whether the app's managed identity may pull it.
    #[serde(default)]
    pub identity: bool,
}

/// How to start an emulator.
#[derive(Debug, Clone)]
pub struct EmulatorOptions {
    /// Tenant, identities, subscriptions, apps and vaults.
    pub seed: Seed,
    /// Directory for the CA file, site folders, app homes and uploads.
    pub work_dir: PathBuf,
    /// Faults active from the start.
    pub faults: Vec<Fault>,
    /// Container image mappings.
    pub images: Vec<ImageMapping>,
    /// How long an app may take to listen on `PORT` before the slot answers 503.
    pub app_start_timeout: Duration,
    /// `Retry-After` sent with long-running operations.
    pub lro_retry_after: Duration,
    /// Lifetime of Entra access tokens.
    pub token_lifetime: Duration,
    /// Lifetime of Pipelines OIDC tokens (client assertions).
    pub oidc_token_lifetime: Duration,
    /// Delay between Kudu deployment status steps (0 → 1 → 2 → 4).
    pub deployment_step_delay: Duration,
    /// Port to listen on; 0 picks a free one.
    pub port: u16,
    /// Public certificates the seed's clients sign client assertions with, as Entra's
    /// "Certificates & secrets" holds them. Each must name a client of the seed.
    pub client_certificates: Vec<ClientCertificate>,
    /// Folders put in front of `PATH` for code apps and their builds: they stand in for the tools
    /// App Service's images carry (e.g. a `gunicorn` for Python's default startup).
    pub runtime_path: Vec<PathBuf>,
    /// The local package index (a folder of wheels and sdists) Oryx-style Python builds install
    /// from: `pip install --no-index --find-links <dir>`, so a build never reaches the network.
    pub python_packages: Option<PathBuf>,
    /// The npm cache Oryx-style Node builds install from with `--offline` (fill it with
    /// `npm cache add <tarball> --cache <dir>`), so a build never reaches the network.
    pub npm_cache: Option<PathBuf>,
}

/// The tools a code app's image and build find (see the fields of `EmulatorOptions`).
#[derive(Debug, Clone, Default)]
pub(crate) struct RuntimeTools {
    pub(crate) path: Vec<PathBuf>,
    pub(crate) python_packages: Option<PathBuf>,
    pub(crate) npm_cache: Option<PathBuf>,
}

/// A certificate credential of an app registration: the public certificate only, never its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientCertificate {
    /// The application (client) ID the certificate belongs to.
    pub client_id: String,
    /// PEM text with a `CERTIFICATE` block (an RSA certificate); other blocks are ignored.
    pub certificate_pem: String,
}

impl EmulatorOptions {
    /// Options with defaults: 30 s app start, 1 s `Retry-After`, 1 h tokens, 10 min OIDC tokens.
    pub fn new(seed: Seed, work_dir: impl Into<PathBuf>) -> Self {
        Self {
            seed,
            work_dir: work_dir.into(),
            faults: Vec::new(),
            images: Vec::new(),
            app_start_timeout: Duration::from_secs(30),
            lro_retry_after: Duration::from_secs(1),
            token_lifetime: Duration::from_secs(3600),
            oidc_token_lifetime: Duration::from_secs(600),
            deployment_step_delay: Duration::from_millis(200),
            port: 0,
            client_certificates: Vec::new(),
            runtime_path: Vec::new(),
            python_packages: None,
            npm_cache: None,
        }
    }
}

/// The base URLs of the emulated services (all `https://<host>:<port>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoints {
    /// ARM, e.g. `https://management.emulator.test:8443` (no trailing slash).
    pub arm: String,
    /// Entra authority host, e.g. `https://login.emulator.test:8443`.
    pub authority: String,
    /// Full `SYSTEM_OIDCREQUESTURI` for the Pipelines OIDC endpoint.
    pub pipelines_oidc: String,
    /// Full `IDENTITY_ENDPOINT` of the managed identity endpoint.
    pub identity: String,
    /// Admin API base URL.
    pub admin: String,
    /// The Log Analytics query API's base URL, e.g. `https://api.loganalytics.emulator.test:8443/v1`
    /// (a client's `endpoint`); its token audience is [`LOGS_AUDIENCE`].
    #[serde(default)]
    pub log_analytics: String,
    /// Key Vault DNS suffix including the port: a vault URL is `https://<name>.<suffix>`.
    pub vault_dns_suffix: String,
    /// App Service DNS suffix including the port: an app URL is `https://<app>[-<slot>].<suffix>`.
    pub app_service_dns_suffix: String,
    /// ARM token audience.
    pub arm_audience: String,
    /// Key Vault token audience.
    pub vault_audience: String,
    /// `http://127.0.0.1:<port>` of the emulator's `CONNECT` proxy: set it as `HTTPS_PROXY` (or
    /// `AGENT_PROXYURL`) and a client reaches every `*.emulator.test` host without DNS entries.
    pub proxy: String,
}

/// Data shared by every request handler.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) port: u16,
    pub(crate) seed: Seed,
    pub(crate) work_dir: PathBuf,
    pub(crate) images: Vec<ImageMapping>,
    pub(crate) runtime: RuntimeTools,
    pub(crate) app_start_timeout: Duration,
    pub(crate) lro_retry_after: Duration,
    pub(crate) deployment_step_delay: Duration,
    pub(crate) token_lifetime: Mutex<Duration>,
    pub(crate) oidc_token_lifetime: Mutex<Duration>,
    pub(crate) identity_header: SecretString,
    pub(crate) key: token::TokenKey,
    pub(crate) client_certificates: Vec<cert::RegisteredCert>,
    pub(crate) state: Mutex<state::State>,
    pub(crate) faults: Mutex<fault::FaultSet>,
    pub(crate) requests: Mutex<reqlog::RequestLog>,
    /// Azure Monitor's HTTP metrics of every slot, from what its front end answered.
    pub(crate) metrics: Mutex<metrics::Store>,
    pub(crate) http: reqwest::Client,
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it: the emulator's state stays
/// usable for inspection even after a bug in one handler.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn url(&self, host: &str) -> String {
        format!("https://{host}.{DOMAIN}:{}", self.port)
    }
    pub(crate) fn host_with_port(&self, host: &str) -> String {
        format!("{host}:{}", self.port)
    }
}

/// A running emulator. Dropping it stops the server and kills every app process.
#[derive(Debug)]
pub struct Emulator {
    shared: Arc<Shared>,
    handle: axum_server::Handle<SocketAddr>,
    server: Option<tokio::task::JoinHandle<()>>,
    proxy: (u16, tokio::task::JoinHandle<()>),
    ca_pem: String,
    ca_path: PathBuf,
}

impl Emulator {
    /// Generates the CA, seeds the state, starts every slot's app and serves on 127.0.0.1.
    pub async fn start(opts: EmulatorOptions) -> Result<Emulator, EmulatorError> {
        server::start(opts).await
    }

    /// The port every host is served on.
    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// The CA certificate (PEM) clients must trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate file (`work_dir/ca.pem`).
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// The seed the emulator started from.
    pub fn seed(&self) -> &Seed {
        &self.shared.seed
    }

    /// Base URLs of every service.
    pub fn endpoints(&self) -> Endpoints {
        let s = &self.shared;
        Endpoints {
            arm: s.url("management"),
            authority: s.url("login"),
            pipelines_oidc: format!(
                "{}/{}/{}/_apis/distributedtask/hubs/build/plans/00000000-0000-0000-0000-00000000a001/jobs/00000000-0000-0000-0000-00000000b001/oidctoken",
                s.url("pipelines"),
                s.seed.organization,
                s.seed.project
            ),
            identity: format!("{}/msi/token", s.url("identity")),
            admin: s.url("admin"),
            log_analytics: format!("{}/v1", s.url("api.loganalytics")),
            vault_dns_suffix: format!("vault.{DOMAIN}:{}", s.port),
            app_service_dns_suffix: format!("azurewebsites.{DOMAIN}:{}", s.port),
            arm_audience: ARM_AUDIENCE.to_owned(),
            vault_audience: VAULT_AUDIENCE.to_owned(),
            proxy: format!("http://127.0.0.1:{}", self.proxy.0),
        }
    }

    /// `https://<name>.vault.emulator.test:<port>`.
    pub fn vault_url(&self, vault: &str) -> String {
        self.shared.url(&format!("{vault}.vault"))
    }

    /// `https://<default host of the slot>:<port>`, the host ARM names in `defaultHostName` (e.g.
    /// `contoso-web-<hash>.eastus-01.azurewebsites.emulator.test` with unique host names); empty
    /// host for an app the emulator does not have.
    pub fn app_url(&self, app: &str, slot: &str) -> String {
        format!(
            "https://{}",
            self.shared.host_with_port(&self.app_host(app, slot))
        )
    }

    /// `https://<SCM host of the slot>:<port>`, the `Repository` host ARM names.
    pub fn scm_url(&self, app: &str, slot: &str) -> String {
        format!(
            "https://{}",
            self.shared.host_with_port(&self.scm_host(app, slot))
        )
    }

    /// The default host of a slot, without the port (empty for an unknown app).
    pub fn app_host(&self, app: &str, slot: &str) -> String {
        self.hosts(app, slot).map(|h| h.app).unwrap_or_default()
    }

    /// The SCM (Kudu) host of a slot, without the port (empty for an unknown app).
    pub fn scm_host(&self, app: &str, slot: &str) -> String {
        self.hosts(app, slot).map(|h| h.scm).unwrap_or_default()
    }

    fn hosts(&self, app: &str, slot: &str) -> Option<hostnames::SlotHosts> {
        lock(&self.shared.state)
            .apps
            .get(&app.to_ascii_lowercase())
            .map(|a| a.hosts(slot))
    }

    /// The value managed identity clients must send as `X-IDENTITY-HEADER`.
    pub fn identity_header(&self) -> &SecretString {
        &self.shared.identity_header
    }

    /// The environment an Azure Pipelines agent would give a task using the first seeded service
    /// connection of this kind: `ENDPOINT_URL_/AUTH_/DATA_*` (Azure Stack-style custom cloud data
    /// pointing at the emulator), `SYSTEM_OIDCREQUESTURI`, `SYSTEM_ACCESSTOKEN` and, for managed
    /// identity, `IDENTITY_ENDPOINT`/`IDENTITY_HEADER`. Empty when no such connection is seeded.
    pub fn service_connection_env(&self, conn: &ConnectionKind) -> Vec<(String, String)> {
        self.shared
            .seed
            .service_connections
            .iter()
            .find(|c| c.kind == *conn)
            .map(|c| server::service_connection_env(&self.shared, &self.endpoints(), c))
            .unwrap_or_default()
    }

    /// The same as [`Emulator::service_connection_env`] for a service connection chosen by ID.
    pub fn service_connection_env_for(&self, connection_id: &str) -> Vec<(String, String)> {
        self.shared
            .seed
            .service_connections
            .iter()
            .find(|c| c.id.eq_ignore_ascii_case(connection_id))
            .map(|c| server::service_connection_env(&self.shared, &self.endpoints(), c))
            .unwrap_or_default()
    }

    /// Adds a fault at run time.
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).add(fault);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// The faults still active.
    pub fn faults(&self) -> Vec<Fault> {
        lock(&self.shared.faults).list()
    }

    /// Changes the lifetime of tokens issued from now on (e.g. to make them expire mid-release).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        *lock(&self.shared.token_lifetime) = lifetime;
    }

    /// Changes the lifetime of OIDC tokens issued from now on.
    pub fn set_oidc_token_lifetime(&self, lifetime: Duration) {
        *lock(&self.shared.oidc_token_lifetime) = lifetime;
    }

    /// Every slot's content digest, settings, sticky names, config, image, running state, tags and
    /// deployments, and every vault's secret names.
    pub fn snapshot(&self) -> StateSnapshot {
        state::snapshot(&self.shared)
    }

    /// Every request received so far, oldest first: the newest [`REQUEST_LOG_CAPACITY`] of them.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.requests).to_vec()
    }

    /// Every credential value this emulator has handed out or holds, for leak detectors: each access
    /// and OIDC token issued so far (oldest first), each app's publishing password, the seed's
    /// client secrets, the managed identity header, the job's access token and each function app slot's
    /// host keys (master and default function key). The emulator never
    /// holds a certificate's private key (only the public certificate is registered), so none is
    /// listed.
    pub fn credentials(&self) -> Vec<Credential> {
        let s = &self.shared;
        let mut out = s.key.issued();
        for app in lock(&s.state).apps.values() {
            out.push(Credential {
                kind: CredentialKind::PublishingPassword,
                label: format!("publishing password of {}", app.name),
                value: app.publishing_password.clone(),
            });
            for slot in app.slots.values() {
                if let Some(keys) = &slot.host_keys {
                    for (which, value) in [("master", &keys.master), ("default", &keys.default)] {
                        out.push(Credential {
                            kind: CredentialKind::FunctionHostKey,
                            label: format!("{which} host key of {} slot {}", app.name, slot.name),
                            value: value.clone(),
                        });
                    }
                }
            }
        }
        for client in &s.seed.clients {
            if let Some(secret) = &client.secret {
                out.push(Credential {
                    kind: CredentialKind::ClientSecret,
                    label: format!("client secret of {}", client.client_id),
                    value: secret.clone(),
                });
            }
        }
        out.push(Credential {
            kind: CredentialKind::IdentityHeader,
            label: "managed identity header".to_owned(),
            value: s.identity_header.clone(),
        });
        out.push(Credential {
            kind: CredentialKind::SystemAccessToken,
            label: "system access token".to_owned(),
            value: s.seed.system_access_token.clone(),
        });
        out
    }

    /// Forgets the request log (handy between test phases).
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Every `*.emulator.test` host name the seed currently defines (fixed hosts, vaults, apps and
    /// their SCM hosts), for clients that map names to 127.0.0.1 one by one.
    pub fn loopback_hosts(&self) -> Vec<String> {
        state::loopback_hosts(&self.shared)
    }

    /// A reqwest client builder that trusts the emulator's CA and resolves every
    /// `*.emulator.test` name to 127.0.0.1.
    pub fn client_builder(&self) -> Result<reqwest::ClientBuilder, EmulatorError> {
        let cert = reqwest::Certificate::from_pem(self.ca_pem.as_bytes())
            .map_err(EmulatorError::HttpClient)?;
        Ok(reqwest::Client::builder()
            .tls_certs_merge([cert])
            .dns_resolver(Arc::new(LoopbackResolver))
            .no_proxy())
    }

    /// Stops serving and kills every app process.
    pub async fn shutdown(mut self) {
        self.stop();
        if let Some(task) = self.server.take() {
            let _ = task.await;
        }
    }

    fn stop(&mut self) {
        self.handle.shutdown();
        self.proxy.1.abort();
        runtime::kill_all(&self.shared);
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
        if let Some(task) = self.server.take() {
            task.abort();
        }
    }
}

/// Starts an emulator, prints what a client needs to connect, and serves until Ctrl-C/SIGTERM.
pub async fn serve_until_signal(opts: EmulatorOptions) -> Result<(), EmulatorError> {
    let emulator = Emulator::start(opts).await?;
    println!("{}", emulator.connection_summary());
    wait_for_signal().await?;
    emulator.shutdown().await;
    Ok(())
}

impl Emulator {
    /// A human-readable summary: endpoints, CA file, hosts to map to 127.0.0.1 and a sample
    /// service-connection environment for each seeded connection kind.
    pub fn connection_summary(&self) -> String {
        use std::fmt::Write;
        let e = self.endpoints();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Slot Release emulator listening on 127.0.0.1:{}",
            self.port()
        );
        let _ = writeln!(out, "CA certificate: {}", self.ca_path.display());
        let _ = writeln!(out, "ARM:            {}", e.arm);
        let _ = writeln!(out, "Authority:      {}", e.authority);
        let _ = writeln!(out, "Pipelines OIDC: {}", e.pipelines_oidc);
        let _ = writeln!(out, "Identity:       {}", e.identity);
        let _ = writeln!(out, "Admin:          {}", e.admin);
        let _ = writeln!(out, "Log Analytics:  {}", e.log_analytics);
        let _ = writeln!(
            out,
            "HTTPS proxy:    {} (reaches every emulator host; no DNS entries needed)",
            e.proxy
        );
        let _ = writeln!(out, "Tenant:         {}", self.shared.seed.tenant_id);
        if !self.shared.images.is_empty() {
            let _ = writeln!(out, "Container images (first match wins):");
            for m in &self.shared.images {
                let _ = writeln!(
                    out,
                    "  {} -> {} (in {})",
                    m.pattern,
                    m.command,
                    m.dir.display()
                );
            }
        }
        let _ = writeln!(
            out,
            "Apps (app/slot, then its host and its SCM host, as ARM names them):"
        );
        for app in self.snapshot().apps {
            for slot in app.slots {
                let _ = writeln!(
                    out,
                    "  {}/{}  https://{}:{}  https://{}:{}",
                    app.name,
                    slot.name,
                    slot.host_name,
                    self.port(),
                    slot.scm_host_name,
                    self.port()
                );
            }
        }
        let _ = writeln!(out, "Resolve these names to 127.0.0.1:");
        for h in self.loopback_hosts() {
            let _ = writeln!(out, "  {h}");
        }
        for kind in [
            ConnectionKind::ServicePrincipal,
            ConnectionKind::WorkloadIdentityFederation,
            ConnectionKind::ManagedIdentity,
        ] {
            let mut env = self.service_connection_env(&kind);
            if env.is_empty() {
                continue;
            }
            // The CA too: without it nothing trusts the emulator.
            env.insert(
                0,
                (
                    "AGENT_CAINFO".to_owned(),
                    self.ca_path.display().to_string(),
                ),
            );
            let _ = writeln!(out, "Environment for a {kind:?} service connection:");
            for (k, v) in &env {
                let _ = writeln!(out, "  {k}={v}");
            }
            // The agent's names hold the connection's GUID, whose `-` a shell cannot `export`; `env` takes
            // them, so the block is also saved as a file for `env $(cat FILE) slot-release …`.
            let file = self.ca_path.with_file_name(format!("{kind:?}.env"));
            let text: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            if std::fs::write(&file, text).is_ok() {
                let _ = writeln!(
                    out,
                    "  (saved as {}: env $(cat {}) slot-release plan --service-connection <id> --config release.yml)",
                    file.display(),
                    file.display()
                );
            }
        }
        out
    }
}

async fn wait_for_signal() -> Result<(), EmulatorError> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(EmulatorError::Signal)?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map_err(EmulatorError::Signal),
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.map_err(EmulatorError::Signal)
    }
}
