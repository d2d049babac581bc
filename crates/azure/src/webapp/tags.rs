//! A slot's resource tags (where the release journal lives), through the Tags API rather than the site.

use crate::client::{Call, parse_json};
use crate::error::Result;
use azure_core::http::Method;
use std::collections::BTreeMap;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::{SlotName, WebApp};

/// The Tags API's version (`Microsoft.Resources/tags`), which is not App Service's.
const TAGS_API_VERSION: &str = "2021-04-01";

impl WebApp {
    /// Resource tags of a slot.
    pub async fn tags(
        &self,
        slot: &SlotName,
        cancel: &CancellationToken,
    ) -> Result<BTreeMap<String, String>> {
        Ok(self.get_slot(slot, cancel).await?.tags)
    }

    /// Replace the resource tags of a slot (used for the release journal).
    pub async fn set_tags(
        &self,
        slot: &SlotName,
        tags: &BTreeMap<String, String>,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let op = self.op("set tags", slot);
        let call = Call::new(&op, Method::Patch, self.url(Some(slot), "")?)
            .json(serde_json::json!({ "tags": tags }))
            .idempotent()
            .accept(&[202]);
        self.inner.send(call, cancel).await.map(drop)
    }

    /// The Tags API of a slot (`…/providers/Microsoft.Resources/tags/default`), on its own api-version.
    fn tags_url(&self, slot: &SlotName) -> Result<Url> {
        let mut u = self.url(Some(slot), "/providers/Microsoft.Resources/tags/default")?;
        u.query_pairs_mut()
            .clear()
            .append_pair("api-version", TAGS_API_VERSION);
        Ok(u)
    }

    /// `PATCH` of the Tags API with `operation` (`Merge` or `Delete`): adds, updates or removes only the
    /// tags given, in one request, leaving every other tag as it is, so writers of different tags never
    /// undo each other. Returns the resource's tags after the change.
    async fn patch_tags(
        &self,
        slot: &SlotName,
        operation: &str,
        tags: &BTreeMap<String, String>,
        cancel: &CancellationToken,
    ) -> Result<BTreeMap<String, String>> {
        let op = self.op(&format!("{} tags", operation.to_ascii_lowercase()), slot);
        // Merging the same tags again, or deleting them again, leaves the same set: safe to retry. ARM
        // answers 409 to a tags write while another operation (a swap, a restart) runs on the site; the
        // tags carry the journal, and losing its write to a passing conflict would cost a healthy release.
        let call = Call::new(&op, Method::Patch, self.tags_url(slot)?)
            .json(serde_json::json!({ "operation": operation, "properties": { "tags": tags } }))
            .idempotent()
            .conflict_is_transient();
        let rsp = self.inner.send(call, cancel).await?;
        let v: serde_json::Value = parse_json(&op, &rsp)?;
        Ok(v["properties"]["tags"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Adds or updates the given tags of a slot, leaving its other tags alone.
    pub async fn merge_tags(
        &self,
        slot: &SlotName,
        tags: &BTreeMap<String, String>,
        cancel: &CancellationToken,
    ) -> Result<BTreeMap<String, String>> {
        self.patch_tags(slot, "Merge", tags, cancel).await
    }

    /// Removes the given tags of a slot; a tag given with a value is removed only while it has that value.
    pub async fn delete_tags(
        &self,
        slot: &SlotName,
        tags: &BTreeMap<String, String>,
        cancel: &CancellationToken,
    ) -> Result<BTreeMap<String, String>> {
        self.patch_tags(slot, "Delete", tags, cancel).await
    }
}
