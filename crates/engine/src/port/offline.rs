//! The port of runs that need no Azure (the build stage): every call refuses, saying so.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::{
    CommandResult, ConnectionStringValue, Port, SecretValue, SettingValue, SiteChange, SlotControl,
};
use crate::error::Error;
use crate::health::{HealthCheck, ProbeOutcome};
use crate::journal::DeploymentRecord;
use crate::state::{LiveState, SiteSettings, SlotName};

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
    async fn read_state(&self, _: &[SlotName], _: &CancellationToken) -> Result<LiveState, Error> {
        self.refuse("read the live state")
    }
    async fn create_slot(&self, _: &SlotName, _: &CancellationToken) -> Result<(), Error> {
        self.refuse("create a slot")
    }
    async fn set_settings(
        &self,
        _: &SlotName,
        _: &BTreeMap<String, SettingValue>,
        _: &CancellationToken,
    ) -> Result<(), Error> {
        self.refuse("set settings")
    }
    async fn remove_settings(
        &self,
        _: &SlotName,
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
    async fn set_connection_strings(
        &self,
        _: &SlotName,
        _: &BTreeMap<String, ConnectionStringValue>,
        _: &CancellationToken,
    ) -> Result<(), Error> {
        self.refuse("set connection strings")
    }
    async fn remove_connection_strings(
        &self,
        _: &SlotName,
        _: &BTreeSet<String>,
        _: &CancellationToken,
    ) -> Result<(), Error> {
        self.refuse("remove connection strings")
    }
    async fn set_sticky_connection_strings(
        &self,
        _: &BTreeSet<String>,
        _: &BTreeSet<String>,
        _: &CancellationToken,
    ) -> Result<(), Error> {
        self.refuse("change sticky connection string names")
    }
    async fn set_site(
        &self,
        _: &SlotName,
        _: &SiteChange,
        _: &CancellationToken,
    ) -> Result<(), Error> {
        self.refuse("change site config")
    }
    async fn set_site_config(
        &self,
        _: &SlotName,
        _: &SiteSettings,
        _: &CancellationToken,
    ) -> Result<(), Error> {
        self.refuse("change general settings")
    }
    async fn deploy_zip(
        &self,
        _: &SlotName,
        _: &Path,
        _: &str,
        _: &CancellationToken,
    ) -> Result<(), Error> {
        self.refuse("deploy")
    }
    async fn run_command(
        &self,
        _: &SlotName,
        _: &str,
        _: Duration,
        _: &CancellationToken,
    ) -> Result<CommandResult, Error> {
        self.refuse("run a command")
    }
    async fn swap(&self, _: &SlotName, _: &SlotName, _: &CancellationToken) -> Result<(), Error> {
        self.refuse("swap")
    }
    async fn apply_slot_config(
        &self,
        _: &SlotName,
        _: &SlotName,
        _: &CancellationToken,
    ) -> Result<(), Error> {
        self.refuse("apply slot config")
    }
    async fn reset_slot_config(&self, _: &SlotName, _: &CancellationToken) -> Result<(), Error> {
        self.refuse("reset slot config")
    }
    async fn set_routing(
        &self,
        _: &[crate::state::RoutingRule],
        _: &CancellationToken,
    ) -> Result<(), Error> {
        self.refuse("route production traffic")
    }
    async fn control_slot(
        &self,
        _: &SlotName,
        control: SlotControl,
        _: &CancellationToken,
    ) -> Result<(), Error> {
        self.refuse(&format!("{} a slot", control.as_str()))
    }
    async fn delete_slot(&self, _: &SlotName, _: &CancellationToken) -> Result<(), Error> {
        self.refuse("delete a slot")
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
        _: &SlotName,
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
    async fn slot_url(&self, _: &SlotName, _: &CancellationToken) -> Result<url::Url, Error> {
        self.refuse("address a slot")
    }
    fn prober(&self) -> Arc<dyn crate::health::Prober> {
        Arc::new(Offline)
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
