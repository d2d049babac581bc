//! The port: exactly what the stages need from Azure, as a trait, so the stage code never sees HTTP.
//!
//! `AzurePort` adapts `slot_release_azure`; tests and the rehearsal use the same adapter against the
//! emulator, so there is one code path. Slot names are plain strings; `production` is the production slot.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use slot_release_azure as az;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::health::{AppFailure, HealthCheck, ProbeOutcome};
use crate::hooks::{self, RemoteCommand};
use crate::identity::ReleaseId;
use crate::journal::DeploymentRecord;
use crate::state::{LiveState, PRODUCTION, SlotState};

/// Who writes the Kudu deployment records, so the engine can tell its records from other deployments.
pub const DEPLOYER: &str = "SlotRelease";

/// A Key Vault value; it has no `Display` and a redacted `Debug`.
pub type SecretValue = az::SecretValue;

/// A setting value to write: plain, or a secret that must never be printed.
#[derive(Debug, Clone)]
pub enum SettingValue {
    /// A plain value (also used for Key Vault references, which hold no secret).
    Plain(String),
    /// A secret value read from Key Vault.
    Secret(SecretValue),
}

impl SettingValue {
    fn expose(&self) -> &str {
        match self {
            SettingValue::Plain(v) => v,
            SettingValue::Secret(s) => s.expose(),
        }
    }
}

/// Site-config changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteChange {
    /// New startup command (empty clears it).
    pub startup_command: Option<String>,
    /// New `linuxFxVersion` (e.g. `DOCKER|repo:tag`).
    pub linux_fx_version: Option<String>,
}

/// The output of a command run in a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandResult {
    /// Exit code.
    pub exit_code: i64,
    /// Standard output and error, untrusted text.
    pub output: String,
}

/// Everything the stages need from Azure.
///
/// Every call takes a cancellation token and stops at once when it fires, with an error for which
/// [`Error::is_cancelled`] holds. A cancelled write may still have reached Azure and taken effect: the
/// caller treats it as "may have happened" (the journal and recovery are built for that). Which token a
/// call gets is the caller's choice: the run's for the work of a step, a bounded one for the writes a
/// stop must still make (see `stages`). Checked by `every_port_method_takes_a_cancellation_token`
/// (`tests/tests/tidy.rs`); `prober` and `now_unix` do no I/O.
#[async_trait]
pub trait Port: Send + Sync + std::fmt::Debug {
    /// Reads the live state of the app: the named slots (missing ones are absent), sticky names, tags.
    async fn read_state(
        &self,
        slots: &[String],
        cancel: &CancellationToken,
    ) -> Result<LiveState, Error>;
    /// Creates a slot.
    async fn create_slot(&self, slot: &str, cancel: &CancellationToken) -> Result<(), Error>;
    /// Sets app settings on a slot, keeping all others.
    async fn set_settings(
        &self,
        slot: &str,
        settings: &BTreeMap<String, SettingValue>,
        cancel: &CancellationToken,
    ) -> Result<(), Error>;
    /// Removes app settings from a slot, keeping all others.
    async fn remove_settings(
        &self,
        slot: &str,
        names: &BTreeSet<String>,
        cancel: &CancellationToken,
    ) -> Result<(), Error>;
    /// Marks app setting names sticky (`stick`) or no longer sticky (`unstick`), keeping the other names as
    /// they are. Sticky names stay with their slot in a swap; the others travel with the content.
    async fn set_sticky(
        &self,
        stick: &BTreeSet<String>,
        unstick: &BTreeSet<String>,
        cancel: &CancellationToken,
    ) -> Result<(), Error>;
    /// Changes site config of a slot.
    async fn set_site(
        &self,
        slot: &str,
        change: &SiteChange,
        cancel: &CancellationToken,
    ) -> Result<(), Error>;
    /// Deploys a zip package to a slot and waits for it.
    async fn deploy_zip(
        &self,
        slot: &str,
        package: &Path,
        message: &str,
        cancel: &CancellationToken,
    ) -> Result<(), Error>;
    /// Runs a command in a slot through Kudu.
    async fn run_command(
        &self,
        slot: &str,
        command: &str,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<CommandResult, Error>;
    /// Swaps `source` into `target` and waits.
    async fn swap(
        &self,
        source: &str,
        target: &str,
        cancel: &CancellationToken,
    ) -> Result<(), Error>;
    /// Swap with preview, phase one.
    async fn apply_slot_config(
        &self,
        source: &str,
        target: &str,
        cancel: &CancellationToken,
    ) -> Result<(), Error>;
    /// Cancels a swap with preview.
    async fn reset_slot_config(
        &self,
        source: &str,
        cancel: &CancellationToken,
    ) -> Result<(), Error>;
    /// The site's tags (where the journal lives).
    async fn tags(&self, cancel: &CancellationToken) -> Result<BTreeMap<String, String>, Error>;
    /// Adds or updates the given tags of the site in one request, leaving all others (ARM's Tags API
    /// `Merge`); returns the site's tags after it.
    async fn merge_tags(
        &self,
        tags: &BTreeMap<String, String>,
        cancel: &CancellationToken,
    ) -> Result<BTreeMap<String, String>, Error>;
    /// Removes the given tags of the site (a tag given with a value only while it has that value).
    async fn delete_tags(
        &self,
        tags: &BTreeMap<String, String>,
        cancel: &CancellationToken,
    ) -> Result<BTreeMap<String, String>, Error>;
    /// Writes a deployment record (id = release id) on a slot's Kudu, marking it active.
    async fn put_record(
        &self,
        slot: &str,
        id: &str,
        record: &DeploymentRecord,
        cancel: &CancellationToken,
    ) -> Result<(), Error>;
    /// Reads secrets from a vault by name.
    async fn get_secrets(
        &self,
        vault: &str,
        names: &[String],
        cancel: &CancellationToken,
    ) -> Result<BTreeMap<String, SecretValue>, Error>;
    /// Lists a vault's secret names, no values: the enabled, unexpired ones and the others with why
    /// (`secrets.select`, see [`crate::selection`]). Read-only.
    async fn list_secret_names(
        &self,
        vault: &str,
        cancel: &CancellationToken,
    ) -> Result<crate::selection::VaultListing, Error>;
    /// The HTTPS base URL of a slot's app (for health probes): its default host as ARM names it.
    async fn slot_url(&self, slot: &str, cancel: &CancellationToken) -> Result<url::Url, Error>;
    /// What health probes go through (an HTTP client that trusts the same CAs as the Azure client).
    fn prober(&self) -> Arc<dyn crate::health::Prober>;
    /// Whether the app of a slot crashed in its latest start, from the platform's logs; `None` when it
    /// runs or starts, or when this port cannot tell.
    async fn app_failure(
        &self,
        _slot: &str,
        _cancel: &CancellationToken,
    ) -> Result<Option<AppFailure>, Error> {
        Ok(None)
    }
    /// The time now, in Unix seconds (lock expiry); a fake clock in model tests.
    fn now_unix(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }
}

/// Connects to the app through an agent service connection (`ENDPOINT_*` variables read through `env`).
pub fn connect(
    connection_id: &str,
    env: &dyn Fn(&str) -> Option<String>,
    app: &crate::spec::AppSpec,
) -> Result<AzurePort, Error> {
    let failed = |source| Error::ServiceConnection {
        connection: connection_id.to_owned(),
        source: Box::new(source),
    };
    let connection = az::ServiceConnection::from_agent_env(connection_id, env).map_err(failed)?;
    let subscription = app
        .subscription
        .clone()
        .or_else(|| connection.subscription_id().map(str::to_owned))
        .ok_or(Error::NoSubscription)?;
    let mut http = az::HttpOptions::from_agent_env(env).map_err(failed)?;
    if connection.cloud().is_emulator() {
        // The emulator's names live under `.test`: resolve them to loopback and trust its CA
        // (handed over as the agent's extra CA), never through a proxy.
        let ca = http.extra_ca_pem.take().unwrap_or_default();
        http = az::HttpOptions::emulator(ca);
    }
    let (credential, cloud) = connection.into_parts();
    let azure = az::Azure::new(credential, cloud, http).map_err(failed)?;
    AzurePort::new(azure, &subscription, &app.resource_group, &app.name)
}

/// A port signed in with the developer's own login (`az login`, then `azd auth login`): a run on a
/// workstation, with no service connection. The cloud is `SLOT_RELEASE_CLOUD` (`AzureCloud`, the
/// default, `AzureChinaCloud`, `AzureUSGovernment`, or `emulator:<port>` for `slot-release emulator`);
/// the subscription is `app.subscription`, else `AZURE_SUBSCRIPTION_ID`; the tenant `AZURE_TENANT_ID`.
pub fn connect_developer(
    env: &dyn Fn(&str) -> Option<String>,
    app: &crate::spec::AppSpec,
) -> Result<AzurePort, Error> {
    let name = env("SLOT_RELEASE_CLOUD")
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| "AzureCloud".to_owned());
    let cloud = match name.trim().strip_prefix("emulator:") {
        Some(port) => port.parse().ok().map(az::Cloud::emulator),
        None => az::Cloud::from_environment_name(name.trim()),
    }
    .ok_or_else(|| Error::UnknownCloud { name: name.clone() })?;
    let subscription = app
        .subscription
        .clone()
        .or_else(|| env("AZURE_SUBSCRIPTION_ID").filter(|s| !s.trim().is_empty()))
        .ok_or(Error::NoSubscription)?;
    let connection =
        az::ServiceConnection::developer(cloud, Some(subscription.clone()), env("AZURE_TENANT_ID"));
    let failed = |source| Error::ServiceConnection {
        connection: "az login".to_owned(),
        source: Box::new(source),
    };
    let mut http = az::HttpOptions::from_agent_env(env).map_err(failed)?;
    if connection.cloud().is_emulator() {
        let ca = http.extra_ca_pem.take().unwrap_or_default();
        http = az::HttpOptions::emulator(ca);
    }
    let (credential, cloud) = connection.into_parts();
    let azure = az::Azure::new(credential, cloud, http).map_err(failed)?;
    AzurePort::new(azure, &subscription, &app.resource_group, &app.name)
}

/// The port over the real Azure client (or the emulator through a custom cloud).
#[derive(Debug, Clone)]
pub struct AzurePort {
    azure: az::Azure,
    app: az::WebApp,
    name: String,
}

impl AzurePort {
    /// A port for one app.
    pub fn new(
        azure: az::Azure,
        subscription: &str,
        resource_group: &str,
        name: &str,
    ) -> Result<Self, Error> {
        let app_ref =
            az::AppRef::new(subscription, resource_group, name).map_err(|source| Error::Azure {
                operation: format!("address app {name}"),
                source: Box::new(source),
            })?;
        let app = azure.web_app(&app_ref);
        Ok(AzurePort {
            azure,
            app,
            name: name.to_owned(),
        })
    }

    fn slot(name: &str) -> Result<az::SlotName, Error> {
        if name == PRODUCTION {
            Ok(az::SlotName::production())
        } else {
            az::SlotName::new(name).map_err(|_| Error::InvalidSlotName {
                name: name.to_owned(),
            })
        }
    }

    fn wait(cancel: &CancellationToken, timeout: Duration) -> az::LroOptions {
        az::LroOptions {
            timeout,
            cancel: cancel.clone(),
        }
    }
}

/// The engine's error for a failed call; a cancelled one is [`Error::Cancelled`], naming the call.
fn azure_err(operation: impl Into<String>) -> impl FnOnce(az::AzureError) -> Error {
    let operation = operation.into();
    move |source| {
        if source.kind() == az::ErrorKind::Cancelled {
            return Error::Cancelled {
                step: None,
                during: Some(operation),
            };
        }
        Error::Azure {
            operation,
            source: Box::new(source),
        }
    }
}

/// The release a slot holds, from its newest active deployment record written by the engine: the identity
/// in the record's message, else the one its (reversibly encoded) Kudu id carries. Never the encoded id
/// itself, which would not compare equal to the identity it encodes.
type SlotRecord = (
    Option<String>,
    Option<String>,
    Option<crate::history::ArtifactSource>,
);

fn release_of(deployments: &[az::Deployment]) -> SlotRecord {
    let Some(newest) = deployments
        .iter()
        .filter(|d| d.active && d.deployer == DEPLOYER)
        .max_by(|a, b| a.received_time.cmp(&b.received_time))
    else {
        return (None, None, None);
    };
    let record = serde_json::from_str::<DeploymentRecord>(&newest.message).ok();
    let release = record
        .as_ref()
        .map(|r| r.release.clone())
        .filter(|r| !r.is_empty())
        .or_else(|| ReleaseId::from_kudu_id(&newest.id).map(String::from))
        .or_else(|| Some(newest.id.clone()));
    let record = record.unwrap_or_default();
    (release, record.package_sha256, record.artifact)
}

#[async_trait]
impl Port for AzurePort {
    async fn read_state(
        &self,
        slots: &[String],
        cancel: &CancellationToken,
    ) -> Result<LiveState, Error> {
        let mut state = LiveState::default();
        let mut names: Vec<&str> = vec![PRODUCTION];
        names.extend(
            slots
                .iter()
                .map(String::as_str)
                .filter(|s| *s != PRODUCTION),
        );
        for name in names {
            let slot = Self::slot(name)?;
            let info = match self.app.get_slot(&slot, cancel).await {
                Ok(info) => info,
                Err(e) if e.status() == Some(404) && name != PRODUCTION => continue,
                Err(e) => return Err(azure_err(format!("read {} slot {name}", self.name))(e)),
            };
            let settings = self
                .app
                .app_settings(&slot, cancel)
                .await
                .map_err(azure_err(format!("read settings of {name}")))?;
            let config = self
                .app
                .site_config(&slot, cancel)
                .await
                .map_err(azure_err(format!("read site config of {name}")))?;
            let deployments = self
                .app
                .kudu(&slot)
                .deployments(cancel)
                .await
                .map_err(azure_err(format!("read deployments of {name}")))?;
            if name == PRODUCTION {
                state.tags = info.tags.clone();
            }
            if deployments.iter().any(|d| !d.complete) {
                state.in_flight.push(format!("a deployment to {name}"));
            }
            let (release, package_sha256, artifact) = release_of(&deployments);
            state.slots.insert(
                name.to_owned(),
                SlotState {
                    settings,
                    linux_fx_version: config.linux_fx_version.filter(|v| !v.is_empty()),
                    startup_command: config.app_command_line.filter(|v| !v.is_empty()),
                    release,
                    package_sha256,
                    artifact,
                    host_name: Some(info.default_host),
                },
            );
        }
        let sticky = self
            .app
            .slot_config_names(cancel)
            .await
            .map_err(azure_err("read sticky setting names"))?;
        state.sticky_settings = sticky.app_setting_names.into_iter().collect();
        Ok(state)
    }

    async fn create_slot(&self, slot: &str, cancel: &CancellationToken) -> Result<(), Error> {
        self.app
            .create_slot(
                &Self::slot(slot)?,
                &Self::wait(cancel, Duration::from_secs(600)),
            )
            .await
            .map(drop)
            .map_err(azure_err(format!("create slot {slot}")))
    }

    async fn set_settings(
        &self,
        slot: &str,
        settings: &BTreeMap<String, SettingValue>,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let change = az::SettingsChange {
            set: settings
                .iter()
                .map(|(k, v)| (k.clone(), v.expose().to_owned()))
                .collect(),
            remove: BTreeSet::new(),
        };
        self.app
            .update_app_settings(&Self::slot(slot)?, &change, cancel)
            .await
            .map(drop)
            .map_err(azure_err(format!("set settings on {slot}")))
    }

    async fn remove_settings(
        &self,
        slot: &str,
        names: &BTreeSet<String>,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let change = az::SettingsChange {
            set: BTreeMap::new(),
            remove: names.clone(),
        };
        self.app
            .update_app_settings(&Self::slot(slot)?, &change, cancel)
            .await
            .map(drop)
            .map_err(azure_err(format!("remove settings from {slot}")))
    }

    async fn set_sticky(
        &self,
        stick: &BTreeSet<String>,
        unstick: &BTreeSet<String>,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let mut current = self
            .app
            .slot_config_names(cancel)
            .await
            .map_err(azure_err("read sticky setting names"))?;
        let have: BTreeSet<String> = current.app_setting_names.iter().cloned().collect();
        let mut wanted = have.clone();
        wanted.extend(stick.iter().cloned());
        wanted.retain(|n| !unstick.contains(n));
        if wanted == have {
            return Ok(());
        }
        // Order kept for the names already listed, new ones appended: a minimal, readable change.
        current.app_setting_names.retain(|n| wanted.contains(n));
        current.app_setting_names.extend(
            stick
                .iter()
                .filter(|n| wanted.contains(*n) && !have.contains(*n))
                .cloned(),
        );
        self.app
            .set_slot_config_names(&current, cancel)
            .await
            .map_err(azure_err("change sticky setting names"))
    }

    async fn set_site(
        &self,
        slot: &str,
        change: &SiteChange,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let patch = az::SiteConfigPatch {
            linux_fx_version: change.linux_fx_version.clone(),
            app_command_line: change.startup_command.clone(),
            ..az::SiteConfigPatch::default()
        };
        self.app
            .patch_site_config(&Self::slot(slot)?, &patch, cancel)
            .await
            .map(drop)
            .map_err(azure_err(format!("update site config of {slot}")))
    }

    async fn deploy_zip(
        &self,
        slot: &str,
        package: &Path,
        message: &str,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let opts = az::DeployOptions {
            cancel: cancel.clone(),
            message: Some(message.to_owned()),
            ..az::DeployOptions::default()
        };
        self.app
            .kudu(&Self::slot(slot)?)
            .deploy_zip(package, &opts)
            .await
            .map(drop)
            .map_err(azure_err(format!("deploy {} to {slot}", package.display())))
    }

    async fn run_command(
        &self,
        slot: &str,
        command: &str,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<CommandResult, Error> {
        let out = self
            .app
            .kudu(&Self::slot(slot)?)
            .command(command, "site/wwwroot", timeout, cancel)
            .await
            .map_err(azure_err(format!("run a command in {slot}")))?;
        let mut output = out.output;
        if !out.error.is_empty() {
            if !output.is_empty() && !output.ends_with('\n') {
                output.push('\n');
            }
            output.push_str(&out.error);
        }
        Ok(CommandResult {
            exit_code: out.exit_code,
            output,
        })
    }

    async fn swap(
        &self,
        source: &str,
        target: &str,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let opts = az::SwapOptions {
            preserve_vnet: None,
            wait: Self::wait(cancel, Duration::from_secs(1800)),
        };
        let result = self
            .app
            .swap(&Self::slot(source)?, &Self::slot(target)?, &opts)
            .await;
        let Err(err) = result else {
            return Ok(());
        };
        // A swap whose warm-up failed because the source's app crashed says so, with its exit
        // status and last line; the error's kind stays Azure's, so retries decide as before.
        let mut operation = format!("swap {source} into {target}");
        if matches!(
            err.kind(),
            az::ErrorKind::OperationFailed | az::ErrorKind::Transient | az::ErrorKind::Rejected
        ) && let Ok(Some(failure)) = self.app_failure(source, cancel).await
        {
            operation = format!(
                "swap {source} into {target} (the app of {source} is down: {})",
                failure.headline()
            );
        }
        Err(azure_err(operation)(err))
    }

    async fn apply_slot_config(
        &self,
        source: &str,
        target: &str,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let opts = az::SwapOptions {
            preserve_vnet: None,
            wait: Self::wait(cancel, Duration::from_secs(1800)),
        };
        self.app
            .apply_slot_config(&Self::slot(source)?, &Self::slot(target)?, &opts)
            .await
            .map_err(azure_err(format!("apply {target} settings to {source}")))
    }

    async fn reset_slot_config(
        &self,
        source: &str,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        self.app
            .reset_slot_config(&Self::slot(source)?, cancel)
            .await
            .map_err(azure_err(format!("reset slot config of {source}")))
    }

    async fn tags(&self, cancel: &CancellationToken) -> Result<BTreeMap<String, String>, Error> {
        self.app
            .tags(&az::SlotName::production(), cancel)
            .await
            .map_err(azure_err("read the journal tags"))
    }

    async fn merge_tags(
        &self,
        tags: &BTreeMap<String, String>,
        cancel: &CancellationToken,
    ) -> Result<BTreeMap<String, String>, Error> {
        self.app
            .merge_tags(&az::SlotName::production(), tags, cancel)
            .await
            .map_err(azure_err("merge the journal tags"))
    }

    async fn delete_tags(
        &self,
        tags: &BTreeMap<String, String>,
        cancel: &CancellationToken,
    ) -> Result<BTreeMap<String, String>, Error> {
        self.app
            .delete_tags(&az::SlotName::production(), tags, cancel)
            .await
            .map_err(azure_err("delete journal tags"))
    }

    async fn put_record(
        &self,
        slot: &str,
        id: &str,
        record: &DeploymentRecord,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let message = serde_json::to_string(record).unwrap_or_default();
        let failed = record.phase == crate::journal::Phase::Failed.as_str();
        let rec = az::DeploymentRecord {
            status: if failed {
                az::DeployStatus::Failed
            } else {
                az::DeployStatus::Success
            },
            message,
            author: "slot-release".into(),
            deployer: DEPLOYER.into(),
            active: !failed,
            details: format!("release {} phase {}", record.release, record.phase),
        };
        // Kudu ids allow letters, digits, `-` and `_`: the identity is encoded reversibly, so two
        // releases never share a record (`20261204.1` and `20261204-1` stay apart).
        let id = match ReleaseId::new(id) {
            Ok(release) => release.kudu_id(),
            Err(err) => return Err(err),
        };
        self.app
            .kudu(&Self::slot(slot)?)
            .put_deployment_record(&id, &rec, cancel)
            .await
            .map(drop)
            .map_err(azure_err(format!("write the deployment record on {slot}")))
    }

    async fn get_secrets(
        &self,
        vault: &str,
        names: &[String],
        cancel: &CancellationToken,
    ) -> Result<BTreeMap<String, SecretValue>, Error> {
        let kv = self
            .azure
            .key_vault(vault)
            .map_err(azure_err(format!("address vault {vault}")))?;
        let refs = names
            .iter()
            .map(|n| az::SecretRef::parse(n))
            .collect::<Result<Vec<_>, _>>()
            .map_err(azure_err(format!("name secrets of {vault}")))?;
        kv.get_secrets(&refs, cancel)
            .await
            .map_err(azure_err(format!("read secrets from {vault}")))
    }

    async fn list_secret_names(
        &self,
        vault: &str,
        cancel: &CancellationToken,
    ) -> Result<crate::selection::VaultListing, Error> {
        let kv = self
            .azure
            .key_vault(vault)
            .map_err(azure_err(format!("address vault {vault}")))?;
        let (names, skipped) = kv
            .list_secret_names(&az::SecretFilter::All, cancel)
            .await
            .map_err(azure_err(format!("list the secrets of {vault}")))?;
        Ok(crate::selection::VaultListing {
            names,
            skipped: skipped
                .into_iter()
                .map(|s| crate::selection::SkippedSecret {
                    name: s.name,
                    reason: s.reason,
                })
                .collect(),
        })
    }

    async fn slot_url(&self, slot: &str, cancel: &CancellationToken) -> Result<url::Url, Error> {
        // Read from ARM, never built from the names: an app may have a unique default host name
        // (`<site>-<hash>.<region>.azurewebsites.net`), and a long slot host is shortened.
        let info = self
            .app
            .get_slot(&Self::slot(slot)?, cancel)
            .await
            .map_err(azure_err(format!("read the host name of slot {slot}")))?;
        self.azure
            .cloud()
            .host_url(&info.default_host)
            .map_err(azure_err(format!("address slot {slot}")))
    }

    fn prober(&self) -> Arc<dyn crate::health::Prober> {
        Arc::new(self.azure.page_client())
    }

    async fn app_failure(
        &self,
        slot: &str,
        cancel: &CancellationToken,
    ) -> Result<Option<AppFailure>, Error> {
        let name = Self::slot(slot)?;
        let report = self
            .app
            .kudu(&name)
            .start_report(cancel)
            .await
            .map_err(azure_err(format!("read the container logs of {slot}")))?;
        let Some(report) = report else {
            return Ok(None);
        };
        let container = self
            .app
            .get_slot(&name, cancel)
            .await
            .is_ok_and(|info| info.is_container());
        Ok(Some(AppFailure {
            summary: failure_summary(&report.failure, container),
            log_tail: report.app_lines,
        }))
    }
}

/// One sentence for a failed start: what ended, with its status and when, as far as the log says.
pub(crate) fn failure_summary(failure: &az::StartFailure, container: bool) -> String {
    let what = if container {
        "the container"
    } else {
        "the startup command"
    };
    match failure {
        az::StartFailure::Exited { status, after, .. } => {
            let status = status.map_or_else(String::new, |s| format!(" with status {s}"));
            let after =
                after.map_or_else(String::new, |d| format!(" after {:.1} s", d.as_secs_f64()));
            format!("{what} exited{status}{after}")
        }
        az::StartFailure::ImagePull { message } => {
            format!("App Service could not pull the image: {message}")
        }
        az::StartFailure::NoAnswer { port } => {
            let port = port.map_or_else(String::new, |p| format!(" on port {p}"));
            format!("{what} did not answer HTTP pings{port}, so App Service failed the site start")
        }
    }
}

/// A [`crate::health::CrashCheck`] that asks the port about one slot. A failure to read the logs is
/// not a crash: the gate then goes on probing.
#[derive(Debug)]
pub struct SlotCrashCheck {
    /// The port.
    pub port: Arc<dyn Port>,
    /// The slot probed.
    pub slot: String,
    /// The gate's cancellation: a log read in flight stops with the gate.
    pub cancel: CancellationToken,
}

#[async_trait]
impl crate::health::CrashCheck for SlotCrashCheck {
    async fn crashed(&self) -> Option<AppFailure> {
        self.port
            .app_failure(&self.slot, &self.cancel)
            .await
            .ok()
            .flatten()
    }
}

/// A port for runs that need no Azure (the build stage): every call explains that.
#[derive(Debug, Clone, Copy, Default)]
pub struct Offline;

impl Offline {
    fn refuse<T>(&self, what: &str) -> Result<T, Error> {
        Err(Error::Offline {
            operation: what.to_owned(),
        })
    }
}

#[async_trait]
impl Port for Offline {
    async fn read_state(&self, _: &[String], _: &CancellationToken) -> Result<LiveState, Error> {
        self.refuse("read the live state")
    }
    async fn create_slot(&self, _: &str, _: &CancellationToken) -> Result<(), Error> {
        self.refuse("create a slot")
    }
    async fn set_settings(
        &self,
        _: &str,
        _: &BTreeMap<String, SettingValue>,
        _: &CancellationToken,
    ) -> Result<(), Error> {
        self.refuse("set settings")
    }
    async fn remove_settings(
        &self,
        _: &str,
        _: &BTreeSet<String>,
        _: &CancellationToken,
    ) -> Result<(), Error> {
        self.refuse("remove settings")
    }
    async fn set_sticky(
        &self,
        _: &BTreeSet<String>,
        _: &BTreeSet<String>,
        _: &CancellationToken,
    ) -> Result<(), Error> {
        self.refuse("change sticky setting names")
    }
    async fn set_site(&self, _: &str, _: &SiteChange, _: &CancellationToken) -> Result<(), Error> {
        self.refuse("change site config")
    }
    async fn deploy_zip(
        &self,
        _: &str,
        _: &Path,
        _: &str,
        _: &CancellationToken,
    ) -> Result<(), Error> {
        self.refuse("deploy")
    }
    async fn run_command(
        &self,
        _: &str,
        _: &str,
        _: Duration,
        _: &CancellationToken,
    ) -> Result<CommandResult, Error> {
        self.refuse("run a command")
    }
    async fn swap(&self, _: &str, _: &str, _: &CancellationToken) -> Result<(), Error> {
        self.refuse("swap")
    }
    async fn apply_slot_config(
        &self,
        _: &str,
        _: &str,
        _: &CancellationToken,
    ) -> Result<(), Error> {
        self.refuse("apply slot config")
    }
    async fn reset_slot_config(&self, _: &str, _: &CancellationToken) -> Result<(), Error> {
        self.refuse("reset slot config")
    }
    async fn tags(&self, _: &CancellationToken) -> Result<BTreeMap<String, String>, Error> {
        self.refuse("read the journal")
    }
    async fn merge_tags(
        &self,
        _: &BTreeMap<String, String>,
        _: &CancellationToken,
    ) -> Result<BTreeMap<String, String>, Error> {
        self.refuse("write the journal")
    }
    async fn delete_tags(
        &self,
        _: &BTreeMap<String, String>,
        _: &CancellationToken,
    ) -> Result<BTreeMap<String, String>, Error> {
        self.refuse("write the journal")
    }
    async fn put_record(
        &self,
        _: &str,
        _: &str,
        _: &DeploymentRecord,
        _: &CancellationToken,
    ) -> Result<(), Error> {
        self.refuse("write a deployment record")
    }
    async fn get_secrets(
        &self,
        _: &str,
        _: &[String],
        _: &CancellationToken,
    ) -> Result<BTreeMap<String, SecretValue>, Error> {
        self.refuse("read secrets")
    }
    async fn list_secret_names(
        &self,
        _: &str,
        _: &CancellationToken,
    ) -> Result<crate::selection::VaultListing, Error> {
        self.refuse("list secrets")
    }
    async fn slot_url(&self, _: &str, _: &CancellationToken) -> Result<url::Url, Error> {
        self.refuse("address a slot")
    }
    fn prober(&self) -> Arc<dyn crate::health::Prober> {
        Arc::new(Offline)
    }
}

/// Slot hooks run through Kudu's command API, via the port.
#[derive(Debug)]
pub struct SlotCommand {
    port: Arc<dyn Port>,
    slot: String,
}

impl SlotCommand {
    /// Commands run in `slot`.
    pub fn new(port: Arc<dyn Port>, slot: &str) -> Self {
        SlotCommand {
            port,
            slot: slot.to_owned(),
        }
    }
}

#[async_trait::async_trait]
impl RemoteCommand for SlotCommand {
    async fn run(
        &self,
        command: &str,
        _dir: &str,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<hooks::RemoteOutput, Error> {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled {
                step: None,
                during: None,
            });
        }
        match self
            .port
            .run_command(&self.slot, command, timeout, cancel)
            .await
        {
            Ok(out) => Ok(hooks::RemoteOutput {
                exit_code: i32::try_from(out.exit_code).unwrap_or(-1),
                stdout: out.output,
                stderr: String::new(),
            }),
            // The hook runner reports a cancelled command as cancelled, not as a failure to run.
            Err(err) if err.is_cancelled() => Err(err),
            // The port's error follows in the chain; repeating it here would print it twice.
            Err(err) => Err(Error::RemoteCommandFailed {
                message: "the slot's command API failed".to_owned(),
                source: Some(Box::new(err)),
            }),
        }
    }
}

#[async_trait]
impl crate::health::Prober for Offline {
    async fn probe(&self, _: &url::Url, _: &HealthCheck) -> ProbeOutcome {
        ProbeOutcome::ConnectionError {
            message: "this run has no Azure connection".to_owned(),
        }
    }
}
