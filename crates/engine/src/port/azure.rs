//! The port over the Azure client: every call of [`Port`] as App Service, Kudu and Key Vault requests,
//! and the one place an engine [`SlotName`] becomes the client's slot.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use slot_release_azure as az;
use tokio_util::sync::CancellationToken;

use super::failure::failure_summary;
use super::{
    CommandResult, ConnectionStringValue, DEPLOYER, Port, SecretValue, SettingValue, SiteChange,
    SlotControl,
};
use crate::error::Error;
use crate::health::AppFailure;
use crate::identity::ReleaseId;
use crate::journal::DeploymentRecord;
use crate::state::{
    ConnectionStringState, Hosting, LiveState, RoutingRule, SiteContainerState, SiteSettings,
    SlotName, SlotState, WindowsStack,
};

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

    /// The one place an engine slot becomes the Azure client's: production is the site itself, any
    /// other name a `/slots/` segment. It cannot fail in practice: a [`SlotName`] keeps the config's
    /// rules, a subset of the client's. The client checks names of its own (it is a library with other
    /// callers), so a disagreement would show as an error addressing that slot, never as a panic.
    fn slot(name: &SlotName) -> Result<az::SlotName, Error> {
        if name.is_production() {
            Ok(az::SlotName::production())
        } else {
            az::SlotName::new(name.as_str()).map_err(azure_err(format!("address slot {name}")))
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
        slots: &[SlotName],
        cancel: &CancellationToken,
    ) -> Result<LiveState, Error> {
        let mut state = LiveState::default();
        let production = SlotName::production();
        let names = std::iter::once(&production).chain(slots.iter().filter(|s| !s.is_production()));
        for name in names {
            let slot = Self::slot(name)?;
            let info = match self.app.get_slot(&slot, cancel).await {
                Ok(info) => info,
                Err(e) if e.status() == Some(404) && !name.is_production() => continue,
                Err(e) => return Err(azure_err(format!("read {} slot {name}", self.name))(e)),
            };
            let settings = self
                .app
                .app_settings(&slot, cancel)
                .await
                .map_err(azure_err(format!("read settings of {name}")))?;
            let connection_strings = self
                .app
                .connection_strings(&slot, cancel)
                .await
                .map_err(azure_err(format!("read connection strings of {name}")))?
                .into_iter()
                .map(|(k, v)| {
                    (
                        k,
                        ConnectionStringState {
                            kind: v.kind,
                            value: v.value,
                        },
                    )
                })
                .collect();
            let config = self
                .app
                .site_config(&slot, cancel)
                .await
                .map_err(azure_err(format!("read site config of {name}")))?;
            // Linux names its stack in `linuxFxVersion`; Windows in the version fields with the portal's
            // `CURRENT_STACK` metadata saying which one counts.
            let windows = if info.is_linux() {
                None
            } else {
                let metadata = self
                    .app
                    .metadata(&slot, cancel)
                    .await
                    .map_err(azure_err(format!("read metadata of {name}")))?;
                Some(WindowsStack {
                    windows_fx_version: config.windows_fx_version.clone(),
                    current_stack: metadata.get("CURRENT_STACK").cloned(),
                    net_framework_version: config.net_framework_version.clone(),
                    java_version: config.java_version.clone(),
                    php_version: config.php_version.clone(),
                    node_version: config.node_version.clone(),
                    python_version: config.python_version.clone(),
                })
            };
            let deployments = self
                .app
                .kudu(&slot)
                .deployments(cancel)
                .await
                .map_err(azure_err(format!("read deployments of {name}")))?;
            if name.is_production() {
                state.tags = info.tags.clone();
                // Read strictly on their own: a canary puts back exactly the rules it found.
                state.routing = self
                    .app
                    .routing_rules(cancel)
                    .await
                    .map_err(azure_err("read production's traffic routing rules"))?
                    .into_iter()
                    .map(|r| RoutingRule {
                        name: r.name,
                        host: r.action_host_name,
                        percent: r.reroute_percentage,
                        other: r.other,
                    })
                    .collect();
                state.hosting = Hosting {
                    function_app: info.is_function_app(),
                    plan_tier: info.plan_tier.clone(),
                    function_app_config: info.function_app_config,
                    linux: info.is_linux(),
                };
            }
            if deployments.iter().any(|d| !d.complete) {
                state.in_flight.push(format!("a deployment to {name}"));
            }
            let (release, package_sha256, artifact) = release_of(&deployments);
            let site_containers = if config
                .linux_fx_version
                .as_deref()
                .is_some_and(|fx| fx.trim().eq_ignore_ascii_case("SITECONTAINERS"))
            {
                self.app
                    .site_containers(&slot, cancel)
                    .await
                    .map_err(azure_err(format!("read sitecontainers of {name}")))?
                    .into_iter()
                    .map(|c| SiteContainerState {
                        is_main: c.is_main(),
                        image: c.image().unwrap_or_default().to_owned(),
                        name: c.name,
                    })
                    .collect()
            } else {
                Vec::new()
            };
            state.slots.insert(
                name.clone(),
                SlotState {
                    settings,
                    connection_strings,
                    linux_fx_version: config.linux_fx_version.filter(|v| !v.is_empty()),
                    windows,
                    startup_command: config.app_command_line.filter(|v| !v.is_empty()),
                    release,
                    package_sha256,
                    artifact,
                    host_name: Some(info.default_host),
                    site_config: SiteSettings {
                        always_on: config.always_on,
                        http20_enabled: config.http20_enabled,
                        min_tls_version: config.min_tls_version,
                        ftps_state: config.ftps_state,
                        health_check_path: config.health_check_path.filter(|v| !v.is_empty()),
                        acr_use_managed_identity_creds: config.acr_use_managed_identity_creds,
                        acr_user_managed_identity_id: config
                            .acr_user_managed_identity_id
                            .filter(|v| !v.is_empty()),
                    },
                    site_containers,
                },
            );
        }
        let sticky = self
            .app
            .slot_config_names(cancel)
            .await
            .map_err(azure_err("read sticky setting names"))?;
        state.sticky_settings = sticky.app_setting_names.into_iter().collect();
        state.sticky_connection_strings = sticky.connection_string_names.into_iter().collect();
        Ok(state)
    }

    async fn create_slot(&self, slot: &SlotName, cancel: &CancellationToken) -> Result<(), Error> {
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
        slot: &SlotName,
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
        slot: &SlotName,
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
        self.app
            .update_sticky_names(az::StickyKind::AppSettings, stick, unstick, cancel)
            .await
            .map(drop)
            .map_err(azure_err("change sticky setting names"))
    }

    async fn set_connection_strings(
        &self,
        slot: &SlotName,
        strings: &BTreeMap<String, ConnectionStringValue>,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let change = az::ConnectionStringsChange {
            set: strings
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        az::ConnectionString {
                            value: v.value.expose().to_owned(),
                            kind: v.kind.clone(),
                        },
                    )
                })
                .collect(),
            remove: BTreeSet::new(),
        };
        self.app
            .update_connection_strings(&Self::slot(slot)?, &change, cancel)
            .await
            .map(drop)
            .map_err(azure_err(format!("set connection strings on {slot}")))
    }

    async fn remove_connection_strings(
        &self,
        slot: &SlotName,
        names: &BTreeSet<String>,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let change = az::ConnectionStringsChange {
            set: BTreeMap::new(),
            remove: names.clone(),
        };
        self.app
            .update_connection_strings(&Self::slot(slot)?, &change, cancel)
            .await
            .map(drop)
            .map_err(azure_err(format!("remove connection strings from {slot}")))
    }

    async fn set_sticky_connection_strings(
        &self,
        stick: &BTreeSet<String>,
        unstick: &BTreeSet<String>,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        self.app
            .update_sticky_names(az::StickyKind::ConnectionStrings, stick, unstick, cancel)
            .await
            .map(drop)
            .map_err(azure_err("change sticky connection string names"))
    }

    async fn set_site(
        &self,
        slot: &SlotName,
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

    async fn set_image(
        &self,
        slot: &SlotName,
        image: &str,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let name = Self::slot(slot)?;
        let config = self
            .app
            .site_config(&name, cancel)
            .await
            .map_err(azure_err(format!("read site config of {slot}")))?;
        let site_containers = config
            .linux_fx_version
            .as_deref()
            .is_some_and(|fx| fx.trim().eq_ignore_ascii_case("SITECONTAINERS"));
        if !site_containers {
            return self
                .set_site(
                    slot,
                    &SiteChange {
                        startup_command: None,
                        linux_fx_version: Some(format!("DOCKER|{image}")),
                    },
                    cancel,
                )
                .await;
        }
        self.app
            .set_main_container_image(&name, image, cancel)
            .await
            .map(drop)
            .map_err(azure_err(format!(
                "set the main container's image on {slot}"
            )))
    }

    async fn set_site_config(
        &self,
        slot: &SlotName,
        change: &SiteSettings,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let patch = az::SiteConfigPatch {
            always_on: change.always_on,
            http20_enabled: change.http20_enabled,
            min_tls_version: change.min_tls_version.clone(),
            ftps_state: change.ftps_state.clone(),
            health_check_path: change.health_check_path.clone(),
            acr_use_managed_identity_creds: change.acr_use_managed_identity_creds,
            acr_user_managed_identity_id: change.acr_user_managed_identity_id.clone(),
            ..az::SiteConfigPatch::default()
        };
        self.app
            .patch_site_config(&Self::slot(slot)?, &patch, cancel)
            .await
            .map(drop)
            .map_err(azure_err(format!("update general settings of {slot}")))
    }

    async fn deploy_zip(
        &self,
        slot: &SlotName,
        package: &Path,
        message: &str,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let opts = az::DeployOptions {
            cancel: cancel.clone(),
            message: Some(message.to_owned()),
            artifact_type: crate::package::onedeploy_type(package).to_owned(),
            ..az::DeployOptions::default()
        };
        self.app
            .kudu(&Self::slot(slot)?)
            .deploy_zip(package, &opts)
            .await
            .map(drop)
            .map_err(azure_err(format!("deploy {} to {slot}", package.display())))
    }

    async fn use_kept_package(
        &self,
        slot: &SlotName,
        sha256: &str,
        cancel: &CancellationToken,
    ) -> Result<String, Error> {
        let name = Self::slot(slot)?;
        let kudu = self.app.kudu(&name);
        let kept = kudu
            .site_packages(cancel)
            .await
            .map_err(azure_err(format!("list the kept packages of {slot}")))?;
        for zip in &kept.zips {
            let digest = kudu
                .site_package_sha256(zip, cancel)
                .await
                .map_err(azure_err(format!("read the kept package {zip} of {slot}")))?;
            if !digest.eq_ignore_ascii_case(sha256) {
                continue;
            }
            kudu.use_site_package(zip, cancel)
                .await
                .map_err(azure_err(format!("point {slot} at the kept package {zip}")))?;
            // The site mounts the package packagename.txt names when it starts.
            self.app
                .restart_synchronously(&name, cancel)
                .await
                .map_err(azure_err(format!("restart slot {slot}")))?;
            return Ok(zip.clone());
        }
        Err(Error::KeptPackageGone {
            slot: slot.to_string(),
            sha256: sha256.to_owned(),
            kept: kept.zips.len(),
        })
    }

    async fn run_command(
        &self,
        slot: &SlotName,
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
        source: &SlotName,
        target: &SlotName,
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
        source: &SlotName,
        target: &SlotName,
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
        source: &SlotName,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        self.app
            .reset_slot_config(&Self::slot(source)?, cancel)
            .await
            .map_err(azure_err(format!("reset slot config of {source}")))
    }

    async fn set_routing(
        &self,
        rules: &[RoutingRule],
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let rules: Vec<az::RampUpRule> = rules
            .iter()
            .map(|r| az::RampUpRule {
                action_host_name: r.host.clone(),
                reroute_percentage: r.percent,
                name: r.name.clone(),
                other: r.other.clone(),
            })
            .collect();
        self.app
            .set_routing_rules(&rules, cancel)
            .await
            .map(drop)
            .map_err(azure_err("set production's traffic routing rules"))
    }

    async fn control_slot(
        &self,
        slot: &SlotName,
        control: SlotControl,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let name = Self::slot(slot)?;
        match control {
            SlotControl::Start => self.app.start(&name, cancel).await,
            SlotControl::Stop => self.app.stop(&name, cancel).await,
            SlotControl::Restart => self.app.restart_synchronously(&name, cancel).await,
        }
        .map_err(azure_err(format!("{} slot {slot}", control.as_str())))
    }

    async fn delete_slot(&self, slot: &SlotName, cancel: &CancellationToken) -> Result<(), Error> {
        self.app
            .delete_slot(&Self::slot(slot)?, cancel)
            .await
            .map_err(azure_err(format!("delete slot {slot}")))
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
        slot: &SlotName,
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

    async fn slot_url(
        &self,
        slot: &SlotName,
        cancel: &CancellationToken,
    ) -> Result<url::Url, Error> {
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

    async fn function_key(
        &self,
        slot: &SlotName,
        cancel: &CancellationToken,
    ) -> Result<SecretValue, Error> {
        self.app
            .function_key(&Self::slot(slot)?, cancel)
            .await
            .map_err(azure_err(format!("read the function key of slot {slot}")))
    }

    fn keyed_prober(&self, key: SecretValue) -> Arc<dyn crate::health::Prober> {
        Arc::new(self.azure.page_client().with_function_key(key))
    }

    async fn slot_traffic(
        &self,
        slot: &SlotName,
        from_unix: i64,
        to_unix: i64,
        cancel: &CancellationToken,
    ) -> Result<crate::analysis::Traffic, Error> {
        let query = az::MetricsQuery {
            names: crate::analysis::METRICS.map(str::to_owned).to_vec(),
            from_unix,
            to_unix,
            // Azure Monitor's finest grain; the points are summed, so the grain only bounds the span.
            interval: "PT1M".to_owned(),
            aggregations: vec!["Total".to_owned(), "Count".to_owned()],
        };
        let series = self
            .app
            .metrics(&Self::slot(slot)?, &query, cancel)
            .await
            .map_err(azure_err(format!("read the metrics of {slot}")))?;
        let find = |name: &str| series.iter().find(|s| s.name.eq_ignore_ascii_case(name));
        let total = |name: &str| find(name).map_or(0.0, |s| s.sum(|p| p.total));
        let time = find("HttpResponseTime");
        Ok(crate::analysis::Traffic {
            requests: total("Requests").round() as u64,
            http5xx: total("Http5xx").round() as u64,
            response_time_total_s: time.map_or(0.0, |s| s.sum(|p| p.total)),
            response_time_samples: time.map_or(0.0, |s| s.sum(|p| p.count)).round() as u64,
        })
    }

    async fn query_logs(
        &self,
        workspace: &str,
        query: &str,
        from_unix: i64,
        to_unix: i64,
        cancel: &CancellationToken,
    ) -> Result<crate::analysis::LogTable, Error> {
        let operation = format!("query Log Analytics workspace {workspace}");
        let table = self
            .azure
            .log_analytics()
            .map_err(azure_err(operation.clone()))?
            .query(workspace, query, from_unix, to_unix, cancel)
            .await
            .map_err(azure_err(operation))?;
        Ok(crate::analysis::LogTable {
            columns: table.columns.into_iter().map(|c| c.name).collect(),
            rows: table.rows,
        })
    }

    async fn app_failure(
        &self,
        slot: &SlotName,
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
