//! The port: exactly what the stages need from Azure, as a trait, so the stage code never sees HTTP.
//!
//! `AzurePort` (in `azure`) adapts `slot_release_azure`; tests and the rehearsal use the same adapter
//! against the emulator, so there is one code path. `connect` signs a port in, `Offline` is the port of
//! runs with no Azure, `failure` words a crashed start. Slots are [`SlotName`]s; `production` is the
//! production slot, and `azure` is the one place a slot becomes the Azure client's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use slot_release_azure as az;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::health::AppFailure;
use crate::hooks::{self, RemoteCommand};
use crate::journal::DeploymentRecord;
use crate::state::{LiveState, SiteSettings, SlotName};

mod azure;
mod connect;
mod failure;
mod offline;

pub use azure::AzurePort;
pub use connect::{SignedIn, connect, connect_developer, sign_in};
pub use offline::Offline;

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
    pub(super) fn expose(&self) -> &str {
        match self {
            SettingValue::Plain(v) => v,
            SettingValue::Secret(s) => s.expose(),
        }
    }
}

/// A connection string to write: its type (as ARM spells it) and its value, plain or a secret.
#[derive(Debug, Clone)]
pub struct ConnectionStringValue {
    /// The type, e.g. `SQLAzure`.
    pub kind: String,
    /// The value; a plain one is still never printed (it comes from release.yml and is masked).
    pub value: SettingValue,
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
/// What `slot-release app` does to a slot's app.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum SlotControl {
    /// Start a stopped slot.
    Start,
    /// Stop a slot: its app ends and its host answers 403 until it is started.
    Stop,
    /// Restart a slot's app.
    Restart,
}

impl SlotControl {
    /// The command's name, as typed and as the journal records it.
    pub fn as_str(self) -> &'static str {
        match self {
            SlotControl::Start => "start",
            SlotControl::Stop => "stop",
            SlotControl::Restart => "restart",
        }
    }
}

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
        slots: &[SlotName],
        cancel: &CancellationToken,
    ) -> Result<LiveState, Error>;
    /// Creates a slot.
    async fn create_slot(&self, slot: &SlotName, cancel: &CancellationToken) -> Result<(), Error>;
    /// Sets app settings on a slot, keeping all others.
    async fn set_settings(
        &self,
        slot: &SlotName,
        settings: &BTreeMap<String, SettingValue>,
        cancel: &CancellationToken,
    ) -> Result<(), Error>;
    /// Removes app settings from a slot, keeping all others.
    async fn remove_settings(
        &self,
        slot: &SlotName,
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
    /// Sets connection strings on a slot, keeping all others.
    async fn set_connection_strings(
        &self,
        slot: &SlotName,
        strings: &BTreeMap<String, ConnectionStringValue>,
        cancel: &CancellationToken,
    ) -> Result<(), Error>;
    /// Removes connection strings from a slot, keeping all others.
    async fn remove_connection_strings(
        &self,
        slot: &SlotName,
        names: &BTreeSet<String>,
        cancel: &CancellationToken,
    ) -> Result<(), Error>;
    /// Marks connection string names sticky (`stick`) or no longer sticky (`unstick`), keeping the other
    /// names, and the app setting names, as they are.
    async fn set_sticky_connection_strings(
        &self,
        stick: &BTreeSet<String>,
        unstick: &BTreeSet<String>,
        cancel: &CancellationToken,
    ) -> Result<(), Error>;
    /// Changes site config of a slot.
    async fn set_site(
        &self,
        slot: &SlotName,
        change: &SiteChange,
        cancel: &CancellationToken,
    ) -> Result<(), Error>;
    /// Changes general settings of a slot (`config/web`) in one request: the fields given, no others.
    async fn set_site_config(
        &self,
        slot: &SlotName,
        change: &SiteSettings,
        cancel: &CancellationToken,
    ) -> Result<(), Error>;
    /// Deploys a zip package to a slot and waits for it.
    async fn deploy_zip(
        &self,
        slot: &SlotName,
        package: &Path,
        message: &str,
        cancel: &CancellationToken,
    ) -> Result<(), Error>;
    /// Rolls out an image on a slot: `linuxFxVersion: DOCKER|image`, or for a sitecontainers app the
    /// main container's image (its sidecars untouched).
    async fn set_image(
        &self,
        slot: &SlotName,
        image: &str,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        self.set_site(
            slot,
            &SiteChange {
                startup_command: None,
                linux_fx_version: Some(format!("DOCKER|{image}")),
            },
            cancel,
        )
        .await
    }
    /// Run from package: points the slot's `packagename.txt` at the kept zip whose SHA-256 is
    /// `sha256` and restarts the slot; answers the zip's name. Every kept zip is read and hashed: a
    /// name says nothing about what a zip holds.
    async fn use_kept_package(
        &self,
        slot: &SlotName,
        sha256: &str,
        _cancel: &CancellationToken,
    ) -> Result<String, Error> {
        Err(Error::Offline {
            operation: format!("run the kept package {sha256} on slot {slot}"),
        })
    }
    /// Runs a command in a slot through Kudu.
    async fn run_command(
        &self,
        slot: &SlotName,
        command: &str,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<CommandResult, Error>;
    /// Swaps `source` into `target` and waits.
    async fn swap(
        &self,
        source: &SlotName,
        target: &SlotName,
        cancel: &CancellationToken,
    ) -> Result<(), Error>;
    /// Swap with preview, phase one.
    async fn apply_slot_config(
        &self,
        source: &SlotName,
        target: &SlotName,
        cancel: &CancellationToken,
    ) -> Result<(), Error>;
    /// Cancels a swap with preview.
    async fn reset_slot_config(
        &self,
        source: &SlotName,
        cancel: &CancellationToken,
    ) -> Result<(), Error>;
    /// Replaces production's traffic-routing rules with `rules` (none: all of production's traffic stays
    /// on production).
    async fn set_routing(
        &self,
        rules: &[crate::state::RoutingRule],
        cancel: &CancellationToken,
    ) -> Result<(), Error>;
    /// Starts, stops or restarts a slot's app (a restart answers once the platform restarted it).
    async fn control_slot(
        &self,
        slot: &SlotName,
        control: SlotControl,
        cancel: &CancellationToken,
    ) -> Result<(), Error>;
    /// Deletes a deployment slot (never production, never the plan it runs on).
    async fn delete_slot(&self, slot: &SlotName, cancel: &CancellationToken) -> Result<(), Error>;
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
        slot: &SlotName,
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
    async fn slot_url(
        &self,
        slot: &SlotName,
        cancel: &CancellationToken,
    ) -> Result<url::Url, Error>;
    /// What health probes go through (an HTTP client that trusts the same CAs as the Azure client).
    fn prober(&self) -> Arc<dyn crate::health::Prober>;
    /// The default function key of a function app's slot (the Functions host's `listkeys`), for probes of a
    /// function that asks for one. A secret: the caller registers it with the log before anything else.
    async fn function_key(
        &self,
        slot: &SlotName,
        _cancel: &CancellationToken,
    ) -> Result<SecretValue, Error> {
        Err(Error::Offline {
            operation: format!("read the function key of slot {slot}"),
        })
    }
    /// A prober that sends `key` as the function key with every probe; a port whose probes need no key
    /// (an in-memory one) answers with its own prober.
    fn keyed_prober(&self, _key: SecretValue) -> Arc<dyn crate::health::Prober> {
        self.prober()
    }
    /// Whether the app of a slot crashed in its latest start, from the platform's logs; `None` when it
    /// runs or starts, or when this port cannot tell.
    async fn app_failure(
        &self,
        _slot: &SlotName,
        _cancel: &CancellationToken,
    ) -> Result<Option<AppFailure>, Error> {
        Ok(None)
    }
    /// What `slot` served over `[from_unix, to_unix)`, from Azure Monitor's metrics of the slot
    /// (`Requests`, `Http5xx`, `HttpResponseTime` in one request), for a gate's traffic analysis.
    async fn slot_traffic(
        &self,
        slot: &SlotName,
        _from_unix: i64,
        _to_unix: i64,
        _cancel: &CancellationToken,
    ) -> Result<crate::analysis::Traffic, Error> {
        Err(Error::Offline {
            operation: format!("read the metrics of slot {slot}"),
        })
    }
    /// Runs a KQL query on a Log Analytics workspace over `[from_unix, to_unix)` and returns its first
    /// table, for a gate's analysis of the logs.
    async fn query_logs(
        &self,
        workspace: &str,
        _query: &str,
        _from_unix: i64,
        _to_unix: i64,
        _cancel: &CancellationToken,
    ) -> Result<crate::analysis::LogTable, Error> {
        Err(Error::Offline {
            operation: format!("query Log Analytics workspace {workspace}"),
        })
    }
    /// The time now, in Unix seconds (lock expiry); a fake clock in model tests.
    fn now_unix(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }
}

/// A [`crate::health::CrashCheck`] that asks the port about one slot. A failure to read the logs is
/// not a crash: the gate then goes on probing.
#[derive(Debug)]
pub struct SlotCrashCheck {
    /// The port.
    pub port: Arc<dyn Port>,
    /// The slot probed.
    pub slot: SlotName,
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

/// Slot hooks run through Kudu's command API, via the port.
#[derive(Debug)]
pub struct SlotCommand {
    port: Arc<dyn Port>,
    slot: SlotName,
}

impl SlotCommand {
    /// Commands run in `slot`.
    pub fn new(port: Arc<dyn Port>, slot: &SlotName) -> Self {
        SlotCommand {
            port,
            slot: slot.clone(),
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
