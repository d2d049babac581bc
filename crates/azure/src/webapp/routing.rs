//! Testing in production: the traffic-routing rules of the production site (`experiments.rampUpRules`
//! of its `config/web`), read strictly and replaced whole.
//!
//! The rules route a share of the requests to production's host name to another slot's host and pin
//! each client there with the `x-ms-routing-name` cookie. They live on the production site only, so
//! both calls address it whatever slot the rules name.

use tokio_util::sync::CancellationToken;

use super::model::{RampUpRule, SiteConfigPatch};
use super::{SlotName, WebApp};
use crate::client::{Call, parse_json};
use crate::error::{AzureError, Result};
use azure_core::http::Method;

impl WebApp {
    /// Production's routing rules as ARM holds them. A list that does not read as rules is an error
    /// rather than none: a caller that restores "the rules as they were" must never restore nothing.
    pub async fn routing_rules(&self, cancel: &CancellationToken) -> Result<Vec<RampUpRule>> {
        let production = SlotName::production();
        let op = self.op("get routing rules", &production);
        let rsp = self
            .inner
            .send(
                Call::new(
                    &op,
                    Method::Get,
                    self.url(Some(&production), "/config/web")?,
                ),
                cancel,
            )
            .await?;
        let v: serde_json::Value = parse_json(&op, &rsp)?;
        rules_of(&op, &v["properties"])
    }

    /// Replaces production's routing rules with `rules` (none: all traffic to production) and returns
    /// them as ARM holds them afterwards.
    pub async fn set_routing_rules(
        &self,
        rules: &[RampUpRule],
        cancel: &CancellationToken,
    ) -> Result<Vec<RampUpRule>> {
        let patch = SiteConfigPatch {
            ramp_up_rules: Some(rules.to_vec()),
            ..SiteConfigPatch::default()
        };
        self.patch_site_config(&SlotName::production(), &patch, cancel)
            .await?;
        self.routing_rules(cancel).await
    }
}

/// The rules in a `config/web`'s properties; `experiments` or its list absent or null (as ARM gives a
/// site that never routed) is no rule.
fn rules_of(op: &str, properties: &serde_json::Value) -> Result<Vec<RampUpRule>> {
    match properties.pointer("/experiments/rampUpRules") {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(rules) => serde_json::from_value(rules.clone()).map_err(|e| {
            AzureError::protocol(
                op,
                format!("experiments.rampUpRules does not read as rules: {e}"),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_experiments_are_no_rules_and_ramp_up_fields_are_kept() {
        let op = "get routing rules";
        // ARM's GetSiteConfig example gives `experiments: null`.
        assert!(
            rules_of(op, &serde_json::json!({"experiments": null}))
                .unwrap()
                .is_empty()
        );
        assert!(rules_of(op, &serde_json::json!({})).unwrap().is_empty());
        let props = serde_json::json!({"experiments": {"rampUpRules": [{
            "actionHostName": "web-staging-abc.westus-01.azurewebsites.net",
            "reroutePercentage": 12.5, "name": "staging",
            "changeStep": 5.0, "changeIntervalInMinutes": 10, "maxReroutePercentage": 50.0}]}});
        let rules = rules_of(op, &props).unwrap();
        assert_eq!(rules[0].reroute_percentage, 12.5);
        assert_eq!(rules[0].other["changeStep"], 5.0);
        // Written back, the rule is the one read.
        assert_eq!(
            serde_json::to_value(&rules).unwrap(),
            props["experiments"]["rampUpRules"]
        );
    }

    #[test]
    fn rules_that_do_not_read_are_an_error_not_none() {
        let props =
            serde_json::json!({"experiments": {"rampUpRules": [{"reroutePercentage": "ten"}]}});
        assert!(rules_of("get routing rules", &props).is_err());
    }
}
