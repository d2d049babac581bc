//! The sitecontainers of a sitecontainers app (`linuxFxVersion: SITECONTAINERS`,
//! `Microsoft.Web/sites/slots/sitecontainers/{name}`): listing them, and replacing the main container's
//! image with everything else of it, and every sidecar, left exactly as it was.

use crate::client::{Call, parse_json};
use crate::error::{AzureError, Result};
use azure_core::http::Method;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::{SlotName, WebApp};

/// One site container as ARM returns it: its name and its `properties`, kept whole so that a PUT
/// sends back what it read.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SiteContainer {
    /// The container's name.
    pub name: String,
    /// Its ARM `properties` (`image`, `isMain`, `targetPort`, `authType`, …).
    #[serde(default)]
    pub properties: serde_json::Map<String, serde_json::Value>,
}

impl SiteContainer {
    /// Whether this is the slot's main container (`isMain: true`), the one that serves the site.
    pub fn is_main(&self) -> bool {
        self.properties.get("isMain") == Some(&serde_json::Value::Bool(true))
    }

    /// Its image reference.
    pub fn image(&self) -> Option<&str> {
        self.properties.get("image").and_then(|v| v.as_str())
    }
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    value: Vec<SiteContainer>,
}

/// The name a container is addressed by: ARM's `name` of a child resource may be `site/child`.
fn short_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

impl WebApp {
    /// The slot's site containers.
    pub async fn site_containers(
        &self,
        slot: &SlotName,
        cancel: &CancellationToken,
    ) -> Result<Vec<SiteContainer>> {
        let op = self.op("list sitecontainers", slot);
        let rsp = self
            .inner
            .send(
                Call::new(&op, Method::Get, self.url(Some(slot), "/sitecontainers")?),
                cancel,
            )
            .await?;
        let page: Page = parse_json(&op, &rsp)?;
        Ok(page
            .value
            .into_iter()
            .map(|c| SiteContainer {
                name: short_name(&c.name).to_owned(),
                ..c
            })
            .collect())
    }

    /// Replaces the main container's image: the container is PUT back with its own properties and
    /// only `image` changed; sidecars are not sent at all. Answers the main container's name.
    pub async fn set_main_container_image(
        &self,
        slot: &SlotName,
        image: &str,
        cancel: &CancellationToken,
    ) -> Result<String> {
        let containers = self.site_containers(slot, cancel).await?;
        let Some(main) = containers.into_iter().find(SiteContainer::is_main) else {
            return Err(AzureError::protocol(
                self.op("find the main sitecontainer", slot),
                "the slot runs SITECONTAINERS but none of its sitecontainers has isMain: true",
            ));
        };
        let mut properties = main.properties.clone();
        properties.insert("image".into(), serde_json::Value::from(image));
        // ARM stamps these; they are not part of what a PUT sets.
        properties.remove("createdTime");
        properties.remove("lastModifiedTime");
        let op = self.op(
            &format!("set the image of sitecontainer {}", main.name),
            slot,
        );
        let call = Call::new(
            &op,
            Method::Put,
            self.url(Some(slot), &format!("/sitecontainers/{}", main.name))?,
        )
        .json(serde_json::json!({ "properties": properties }));
        self.inner.send(call, cancel).await?;
        Ok(main.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_main_container_is_the_one_marked_is_main() {
        let c: SiteContainer = serde_json::from_value(serde_json::json!({
            "name": "contoso-web/main",
            "properties": {"image": "r/a:1", "isMain": true}
        }))
        .unwrap();
        assert!(c.is_main());
        assert_eq!(c.image(), Some("r/a:1"));
        assert_eq!(short_name(&c.name), "main");
        let sidecar: SiteContainer = serde_json::from_value(serde_json::json!({
            "name": "otel", "properties": {"image": "otel:1", "isMain": false}
        }))
        .unwrap();
        assert!(!sidecar.is_main());
    }
}
