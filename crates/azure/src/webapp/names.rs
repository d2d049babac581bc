//! The names ARM addresses an app by: slot names (production is the slot without a `/slots/` segment),
//! resource ids and app references, each validated when made.

use crate::error::{AzureError, Result};
use std::fmt;

/// A deployment slot name; production is the slot without a `/slots/` segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlotName(Option<String>);

impl SlotName {
    /// The production slot.
    pub fn production() -> Self {
        Self(None)
    }

    /// Parse a slot name; `production` (any case) is the production slot.
    pub fn new(name: &str) -> Result<Self> {
        let n = name.trim();
        if n.eq_ignore_ascii_case("production") {
            return Ok(Self(None));
        }
        if n.is_empty() || n.len() > 59 || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(AzureError::invalid(
                "slot name",
                name,
                "use 1-59 letters, digits and hyphens",
            ));
        }
        Ok(Self(Some(n.to_ascii_lowercase())))
    }

    /// True for production.
    pub fn is_production(&self) -> bool {
        self.0.is_none()
    }

    /// The slot segment (`None` for production).
    pub fn slot(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// The name as Azure's swap bodies use it (`production` for production).
    pub fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or("production")
    }
}

impl fmt::Display for SlotName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An ARM resource id of a site or slot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceId(String);

impl ResourceId {
    /// Parse `/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Web/sites/{name}[/slots/{slot}]`.
    pub fn parse(id: &str) -> Result<(AppRef, SlotName)> {
        let bad = || {
            AzureError::invalid(
                "resource id",
                id,
                "expected /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Web/sites/{name}[/slots/{slot}]",
            )
        };
        let parts: Vec<&str> = id.trim_matches('/').split('/').collect();
        let eq = |i: usize, s: &str| parts.get(i).is_some_and(|p| p.eq_ignore_ascii_case(s));
        if !(eq(0, "subscriptions")
            && eq(2, "resourceGroups")
            && eq(4, "providers")
            && eq(5, "Microsoft.Web")
            && eq(6, "sites"))
        {
            return Err(bad());
        }
        let app = AppRef::new(parts[1], parts[3], parts.get(7).copied().ok_or_else(bad)?)?;
        let slot = match (parts.get(8), parts.get(9)) {
            (Some(s), Some(n)) if s.eq_ignore_ascii_case("slots") => SlotName::new(n)?,
            (None, None) => SlotName::production(),
            _ => return Err(bad()),
        };
        Ok((app, slot))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A web app: subscription, resource group and site name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AppRef {
    /// Subscription id.
    pub subscription: String,
    /// Resource group.
    pub resource_group: String,
    /// Site name.
    pub name: String,
}

impl AppRef {
    /// Validate and build.
    pub fn new(subscription: &str, resource_group: &str, name: &str) -> Result<Self> {
        let ok = |s: &str| !s.is_empty() && !s.contains(['/', '?', '#']);
        if !ok(subscription) {
            return Err(AzureError::invalid(
                "subscription id",
                subscription,
                "must be a non-empty id",
            ));
        }
        if !ok(resource_group) {
            return Err(AzureError::invalid(
                "resource group",
                resource_group,
                "must be a non-empty name without '/'",
            ));
        }
        if name.is_empty()
            || name.len() > 60
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(AzureError::invalid(
                "app name",
                name,
                "use 1-60 letters, digits and hyphens",
            ));
        }
        Ok(Self {
            subscription: subscription.into(),
            resource_group: resource_group.into(),
            name: name.into(),
        })
    }

    /// The resource id of a slot of this app.
    pub fn resource_id(&self, slot: &SlotName) -> ResourceId {
        let mut s = format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Web/sites/{}",
            self.subscription, self.resource_group, self.name
        );
        if let Some(n) = slot.slot() {
            s.push_str("/slots/");
            s.push_str(n);
        }
        ResourceId(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_names() {
        assert!(SlotName::new("Production").expect("ok").is_production());
        assert_eq!(
            SlotName::new("Staging").expect("ok").slot(),
            Some("staging")
        );
        assert!(SlotName::new("a/b").is_err());
        assert_eq!(SlotName::production().to_string(), "production");
    }

    #[test]
    fn resource_ids_round_trip() {
        let app = AppRef::new("s", "rg", "web").expect("ok");
        let id = app.resource_id(&SlotName::new("staging").expect("ok"));
        let (a, s) = ResourceId::parse(id.as_str()).expect("parse");
        assert_eq!(a, app);
        assert_eq!(s.slot(), Some("staging"));
        let (_, p) =
            ResourceId::parse(app.resource_id(&SlotName::production()).as_str()).expect("parse");
        assert!(p.is_production());
        assert!(ResourceId::parse("/subscriptions/s/resourceGroups/rg").is_err());
    }
}
