//! App Service plans (`Microsoft.Web/serverfarms`): read-only, derived from the apps that name
//! them, so a client can read the SKU behind a site's `serverFarmId`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::{not_found, plan_id};
use crate::seed::AppOs;
use crate::server::json;
use crate::{Shared, lock};

/// `GET …/providers/Microsoft.Web/serverfarms/{name}`: the `AppServicePlan`.
pub(super) async fn get_plan(
    State(shared): State<Arc<Shared>>,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let param = |k: &str| params.get(k).cloned().unwrap_or_default();
    let (sub, rg, name) = (param("sub"), param("rg"), param("plan"));
    if let Err(r) = super::check_scope(&shared, &sub, &rg) {
        return *r;
    }
    let state = lock(&shared.state);
    let apps: Vec<_> = state
        .apps
        .values()
        .filter(|a| {
            a.subscription_id.eq_ignore_ascii_case(&sub)
                && a.resource_group.eq_ignore_ascii_case(&rg)
                && a.plan.0.eq_ignore_ascii_case(&name)
        })
        .collect();
    let Some(first) = apps.first() else {
        return not_found("Microsoft.Web/serverFarms", &name, &rg);
    };
    let sku = &first.plan.1;
    let linux = first.os == AppOs::Linux;
    let kind = match sku.tier {
        "ElasticPremium" => "elastic",
        "Dynamic" | "FlexConsumption" => "functionapp",
        _ if linux => "linux",
        _ => "app",
    };
    let elastic = sku.tier == "ElasticPremium";
    json(
        StatusCode::OK,
        &serde_json::json!({
            "id": plan_id(first),
            "name": first.plan.0,
            "type": "Microsoft.Web/serverfarms",
            "kind": kind,
            "location": first.location,
            "sku": {
                "name": sku.name,
                "tier": sku.tier,
                "size": sku.name,
                "family": sku.family,
                "capacity": 1
            },
            "properties": {
                "status": "Ready",
                "maximumNumberOfWorkers": 30,
                "geoRegion": first.location,
                "numberOfSites": apps.len(),
                "perSiteScaling": false,
                "elasticScaleEnabled": elastic,
                "maximumElasticWorkerCount": if elastic { 20 } else { 1 },
                "isSpot": false,
                "reserved": linux,
                "isXenon": false,
                "hyperV": false,
                "targetWorkerCount": 0,
                "targetWorkerSizeId": 0,
                "provisioningState": "Succeeded",
                "zoneRedundant": false,
                "resourceGroup": first.resource_group,
                "subscription": first.subscription_id,
                "kind": kind
            }
        }),
    )
}
