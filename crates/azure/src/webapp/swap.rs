//! Swapping slots, with and without preview (apply, then swap or reset the slot config), and restarting one.

use crate::client::Call;
use crate::error::{AzureError, Result};
use azure_core::http::Method;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::{SlotName, SwapOptions, WebApp};

impl WebApp {
    fn swap_url(&self, source: &SlotName, action: &str) -> Result<Url> {
        self.url(Some(source), &format!("/{action}"))
    }

    fn slot_entity(target: &SlotName, preserve_vnet: Option<bool>) -> serde_json::Value {
        let mut b = serde_json::json!({ "targetSlot": target.as_str() });
        if let Some(p) = preserve_vnet {
            b["preserveVnet"] = p.into();
        }
        b
    }

    /// Swap `source` into `target` and wait for the operation. Transient failures (another operation
    /// in progress, warm-up failed) come back with `is_transient()`; the engine decides on retrying.
    pub async fn swap(
        &self,
        source: &SlotName,
        target: &SlotName,
        opts: &SwapOptions,
    ) -> Result<()> {
        if source == target {
            return Err(AzureError::invalid(
                "swap",
                source.as_str(),
                "a slot cannot be swapped with itself",
            ));
        }
        let op = format!("swap {}/{source} into {target}", self.app.name);
        // Not idempotent: retrying a swap that the server accepted would swap back.
        let call = Call::new(&op, Method::Post, self.swap_url(source, "slotsswap")?)
            .json(Self::slot_entity(target, opts.preserve_vnet));
        self.inner.send_lro(call, &opts.wait).await.map(drop)
    }

    /// Swap with preview, phase 1: apply `target`'s slot-specific config to `source` (and restart it).
    pub async fn apply_slot_config(
        &self,
        source: &SlotName,
        target: &SlotName,
        opts: &SwapOptions,
    ) -> Result<()> {
        let op = format!("apply {target} config to {}/{source}", self.app.name);
        let call = Call::new(&op, Method::Post, self.swap_url(source, "applySlotConfig")?)
            .json(Self::slot_entity(target, opts.preserve_vnet))
            .idempotent();
        self.inner.send_lro(call, &opts.wait).await.map(drop)
    }

    /// Cancel a swap with preview: restore the slot's own config.
    pub async fn reset_slot_config(
        &self,
        slot: &SlotName,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let op = self.op("reset slot config", slot);
        let call =
            Call::new(&op, Method::Post, self.swap_url(slot, "resetSlotConfig")?).idempotent();
        self.inner.send(call, cancel).await.map(drop)
    }

    /// Restart a slot.
    pub async fn restart(&self, slot: &SlotName, cancel: &CancellationToken) -> Result<()> {
        let op = self.op("restart", slot);
        let call = Call::new(&op, Method::Post, self.swap_url(slot, "restart")?);
        self.inner.send(call, cancel).await.map(drop)
    }
}
