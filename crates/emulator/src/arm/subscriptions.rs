//! ARM above the resource group: the cloud's metadata document (served without a token, as ARM
//! serves it, so `az cloud register --endpoint-resource-manager` can read it), the subscriptions the
//! caller can see, and the subscription-wide site list.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use crate::seed::SeedSubscription;
use crate::server::{error_json, json};
use crate::state::PRODUCTION;
use crate::{ARM_AUDIENCE, DOMAIN, Shared, VAULT_AUDIENCE, lock};

/// `GET /metadata/endpoints?api-version=…`, in the shape each api-version has on ARM: `1.0` and
/// `2015-01-01` the object Azure Stack documents (`galleryEndpoint`, `authentication`, …); the 2019
/// versions a list of clouds (as `ARM_CLOUD_METADATA_URL` readers expect); 2020 and later the one
/// cloud object (`name`, `authentication`, `suffixes`, `resourceManager`, …), which
/// `az cloud register --endpoint-resource-manager` reads with 2022-09-01. Every endpoint is the
/// emulator's.
pub(crate) fn metadata_endpoints(shared: &Shared, api_version: Option<&str>) -> Response {
    let arm = format!("{}/", shared.url("management"));
    let login = format!("{}/", shared.url("login"));
    let graph = format!("{}/", shared.url("graph"));
    let portal = shared.url("portal");
    let vault_suffix = shared.host_with_port(&format!("vault.{DOMAIN}"));
    let year = api_version
        .and_then(|v| v.get(..4))
        .and_then(|y| y.parse::<u32>().ok())
        .unwrap_or(0);
    if year < 2019 {
        return json(
            StatusCode::OK,
            &serde_json::json!({
                "galleryEndpoint": format!("{portal}/gallery/"),
                "graphEndpoint": graph,
                "portalEndpoint": format!("{portal}/"),
                "authentication": {"loginEndpoint": login, "audiences": [ARM_AUDIENCE]},
            }),
        );
    }
    let cloud = serde_json::json!({
            "portal": portal,
            "authentication": {
                "loginEndpoint": login,
                "audiences": [ARM_AUDIENCE],
                "tenant": "common",
                "identityProvider": "AAD",
            },
            "media": format!("{portal}/media/"),
            "graphAudience": graph,
            "graph": graph,
            "name": "SlotReleaseEmulator",
            "suffixes": {
                "keyVaultDns": vault_suffix,
                "storage": format!("storage.{DOMAIN}"),
                "acrLoginServer": format!("acr.{DOMAIN}"),
                "sqlServerHostname": format!("sql.{DOMAIN}"),
                "azureDataLakeStoreFileSystem": format!("datalake.{DOMAIN}"),
                "azureDataLakeAnalyticsCatalogAndJob": format!("datalakeanalytics.{DOMAIN}"),
                "mhsmDns": format!("managedhsm.{DOMAIN}"),
            },
            "batch": format!("{portal}/batch/"),
            "resourceManager": arm,
            "vmImageAliasDoc": format!("{arm}vm-image-aliases"),
            "activeDirectoryDataLake": format!("{portal}/datalake/"),
            "sqlManagement": format!("{portal}/sql/"),
            "microsoftGraphResourceId": graph,
            "keyVaultResourceId": VAULT_AUDIENCE,
    });
    let body = if year == 2019 {
        serde_json::Value::Array(vec![cloud])
    } else {
        cloud
    };
    json(StatusCode::OK, &body)
}

fn subscription_json(shared: &Shared, s: &SeedSubscription) -> serde_json::Value {
    serde_json::json!({
        "id": format!("/subscriptions/{}", s.id),
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionId": s.id,
        "tenantId": shared.seed.tenant_id,
        "displayName": s.name,
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
    })
}

/// `GET /subscriptions`: every seeded subscription (every caller sees them all: no RBAC).
fn list(shared: &Shared) -> Response {
    let value: Vec<serde_json::Value> = shared
        .seed
        .subscriptions
        .iter()
        .map(|s| subscription_json(shared, s))
        .collect();
    let count = value.len();
    json(
        StatusCode::OK,
        &serde_json::json!({"value": value, "count": {"type": "Total", "value": count}}),
    )
}

fn find<'a>(shared: &'a Shared, id: &str) -> Result<&'a SeedSubscription, Box<Response>> {
    shared
        .seed
        .subscriptions
        .iter()
        .find(|s| s.id.eq_ignore_ascii_case(id))
        .ok_or_else(|| {
            Box::new(error_json(
                StatusCode::NOT_FOUND,
                "SubscriptionNotFound",
                &format!("The subscription '{id}' could not be found."),
            ))
        })
}

/// `GET /subscriptions/{id}`.
fn get(shared: &Shared, id: &str) -> Response {
    match find(shared, id) {
        Ok(s) => json(StatusCode::OK, &subscription_json(shared, s)),
        Err(r) => *r,
    }
}

/// `GET /subscriptions/{id}/providers/Microsoft.Web/sites`: every app of the subscription, in any
/// resource group (production sites only, as ARM lists them).
fn sites(shared: &Shared, id: &str) -> Response {
    if let Err(r) = find(shared, id) {
        return *r;
    }
    let state = lock(&shared.state);
    let value: Vec<serde_json::Value> = state
        .apps
        .values()
        .filter(|a| a.subscription_id.eq_ignore_ascii_case(id))
        .filter_map(|a| {
            a.slot(PRODUCTION)
                .map(|s| crate::arm::site_json(shared, a, s))
        })
        .collect();
    json(
        StatusCode::OK,
        &serde_json::json!({"value": value, "nextLink": null}),
    )
}

/// Route: `GET /subscriptions`.
pub(super) async fn list_route(State(shared): State<Arc<Shared>>) -> Response {
    list(&shared)
}

/// Route: `GET /subscriptions/{sub}`.
pub(super) async fn get_route(
    State(shared): State<Arc<Shared>>,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    get(&shared, params.get("sub").map_or("", String::as_str))
}

/// Route: `GET /subscriptions/{sub}/providers/Microsoft.Web/sites`.
pub(super) async fn sites_route(
    State(shared): State<Arc<Shared>>,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    sites(&shared, params.get("sub").map_or("", String::as_str))
}
