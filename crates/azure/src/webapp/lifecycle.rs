//! A slot's life outside a release: start, stop, restart (waiting for the platform) and deleting a slot,
//! as `AzureAppServiceManage@0` offers them.

use crate::client::Call;
use crate::error::{AzureError, Result};
use azure_core::http::Method;
use tokio_util::sync::CancellationToken;

use super::{SlotName, WebApp};

impl WebApp {
    /// Starts a stopped slot (ARM answers 200 once the platform has taken the request; the site's
    /// `state` reads `Running` from then on). Starting a running slot changes nothing.
    pub async fn start(&self, slot: &SlotName, cancel: &CancellationToken) -> Result<()> {
        let op = self.op("start", slot);
        let call = Call::new(&op, Method::Post, self.url(Some(slot), "/start")?).idempotent();
        self.inner.send(call, cancel).await.map(drop)
    }

    /// Stops a slot: its processes end and the platform answers its host with 403 "This web app is
    /// stopped" until it is started again.
    pub async fn stop(&self, slot: &SlotName, cancel: &CancellationToken) -> Result<()> {
        let op = self.op("stop", slot);
        let call = Call::new(&op, Method::Post, self.url(Some(slot), "/stop")?).idempotent();
        self.inner.send(call, cancel).await.map(drop)
    }

    /// Restarts a slot's processes and, with `synchronous=true`, answers only once they were restarted;
    /// `softRestart=false` restarts the worker whole rather than only reloading the configuration, which is
    /// what a user who asks for a restart means.
    pub async fn restart_synchronously(
        &self,
        slot: &SlotName,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let op = self.op("restart", slot);
        let mut url = self.url(Some(slot), "/restart")?;
        url.query_pairs_mut()
            .append_pair("softRestart", "false")
            .append_pair("synchronous", "true");
        self.inner
            .send(Call::new(&op, Method::Post, url), cancel)
            .await
            .map(drop)
    }

    /// Deletes a deployment slot with its metrics. `deleteEmptyServerFarm=false` is sent explicitly: the
    /// plan the slot runs on is shared with production and must never go with it.
    pub async fn delete_slot(&self, slot: &SlotName, cancel: &CancellationToken) -> Result<()> {
        if slot.is_production() {
            return Err(AzureError::invalid(
                "slot name",
                "production",
                "the production slot is the site itself and is never deleted as a slot",
            ));
        }
        let op = self.op("delete slot", slot);
        let mut url = self.url(Some(slot), "")?;
        url.query_pairs_mut()
            .append_pair("deleteMetrics", "true")
            .append_pair("deleteEmptyServerFarm", "false");
        self.inner
            .send(Call::new(&op, Method::Delete, url).idempotent(), cancel)
            .await
            .map(drop)
    }
}
