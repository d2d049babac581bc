//! ARM App Service control plane: authentication, the site and slot resources (their JSON, creation
//! and the scope checks every route shares), and the route table (`route`) that sends each operation
//! to its module: `sites` (sites and slots, restart/start/stop, tags), `config` (app settings,
//! connection strings, sticky names, site config, metadata), `site_config` (its validation and swap
//! rules), `functions` (sitecontainers, Functions host keys), `plans` (App Service plans), `swap` (swap, swap with preview, slot differences), `publishing`
//! (credentials, publish profile, deployments), `lro` (long-running operations) and `subscriptions`
//! (subscriptions, the cloud's metadata).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::response::Response;

use crate::entra::{AuthFailure, check_bearer, fmt_unix, tenant_authority};
mod config;
mod functions;
mod lro;
pub(crate) mod metrics;
mod plans;
mod publishing;
mod route;
mod site_config;
mod sites;
mod subscriptions;
mod swap;

use crate::seed::{AppKind, AppOs};
use crate::server::{error_json, json, query_param};
use crate::state::{App, PRODUCTION, Slot, new_content_dir, now_rfc3339};
use crate::{ARM_AUDIENCE, Shared, lock};
use lro::add_lro_headers;
pub(crate) use site_config::overrides_default_sticky;

fn challenge(shared: &Shared, failure: &AuthFailure) -> Response {
    let now = now_rfc3339();
    let (code, message, desc) = match failure {
        AuthFailure::Missing => (
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.".to_owned(),
            "The authentication failed because of missing 'Authorization' header.",
        ),
        AuthFailure::Invalid => (
            "InvalidAuthenticationToken",
            "The access token is invalid.".to_owned(),
            "The access token is invalid.",
        ),
        AuthFailure::Expired { exp } => (
            "ExpiredAuthenticationToken",
            format!(
                "The access token expiry UTC time '{}' is earlier than current UTC time '{now}'.",
                fmt_unix(*exp)
            ),
            "The access token has expired.",
        ),
        AuthFailure::WrongAudience { aud } => (
            "InvalidAuthenticationTokenAudience",
            format!(
                "The access token has been obtained for wrong audience or resource '{aud}'. It should exactly match with one of the allowed audiences '{ARM_AUDIENCE}'."
            ),
            "The access token has an invalid audience.",
        ),
    };
    let mut resp = error_json(StatusCode::UNAUTHORIZED, code, &message);
    let value = format!(
        "Bearer authorization_uri=\"{}\", error=\"invalid_token\", error_description=\"{desc}\"",
        tenant_authority(shared)
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

pub(crate) fn not_found(kind: &str, name: &str, rg: &str) -> Response {
    error_json(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        &format!(
            "The Resource '{kind}/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        ),
    )
}

pub(crate) async fn handle(shared: Arc<Shared>, req: Request<Body>) -> Response {
    // Compared by segment: `az cloud register` asks for `<arm>//metadata/endpoints` when the endpoint
    // it was given ends with a slash, and ARM answers that too.
    let path_segments: Vec<String> = req
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    // ARM serves the cloud's metadata to anyone: clients read it before they can sign in.
    if req.method() == Method::GET && path_segments == ["metadata", "endpoints"] {
        let api_version = query_param(req.uri().query(), "api-version");
        return subscriptions::metadata_endpoints(&shared, api_version.as_deref());
    }
    if let Err(f) = check_bearer(&shared, req.headers(), ARM_AUDIENCE) {
        return challenge(&shared, &f);
    }
    if query_param(req.uri().query(), "api-version").is_none() {
        return error_json(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
    }
    route::dispatch(shared, req).await
}

pub(crate) fn check_scope(shared: &Shared, sub: &str, rg: &str) -> Result<(), Box<Response>> {
    let Some(s) = shared
        .seed
        .subscriptions
        .iter()
        .find(|s| s.id.eq_ignore_ascii_case(sub))
    else {
        return Err(Box::new(error_json(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            &format!("The subscription '{sub}' could not be found."),
        )));
    };
    if !s
        .resource_groups
        .iter()
        .any(|r| r.name.eq_ignore_ascii_case(rg))
    {
        return Err(Box::new(error_json(
            StatusCode::NOT_FOUND,
            "ResourceGroupNotFound",
            &format!("Resource group '{rg}' could not be found."),
        )));
    }
    Ok(())
}

pub(crate) fn resource_id(app: &App, slot: &str) -> String {
    let base = format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Web/sites/{}",
        app.subscription_id, app.resource_group, app.name
    );
    if slot == PRODUCTION {
        base
    } else {
        format!("{base}/slots/{slot}")
    }
}

pub(crate) fn host_names(shared: &Shared, app: &App, slot: &str) -> (String, String) {
    let hosts = app.hosts(slot);
    (
        shared.host_with_port(&hosts.app),
        shared.host_with_port(&hosts.scm),
    )
}

/// `kind` of a site as ARM spells it: `app`, `app,linux`, `app,linux,container`,
/// `functionapp,linux`, … (a comma-separated token list).
fn site_kind(app: &App) -> String {
    let mut tokens = vec![if app.function_app {
        "functionapp"
    } else {
        "app"
    }];
    let container = app.kind == AppKind::Container;
    if app.os == AppOs::Linux {
        tokens.push("linux");
    }
    if container {
        tokens.push("container");
        if app.os == AppOs::Windows {
            tokens.push("windows");
        }
    }
    tokens.join(",")
}

/// `properties.serverFarmId` of an app.
pub(crate) fn plan_id(app: &App) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Web/serverfarms/{}",
        app.subscription_id, app.resource_group, app.plan.0
    )
}

/// The `Site` resource, with the fields of the official GetWebApp/GetWebAppSlot examples. Host
/// names carry the emulator's port so that `https://<hostName>` reaches it.
pub(crate) fn site_json(shared: &Shared, app: &App, slot: &Slot) -> serde_json::Value {
    let (host, scm) = host_names(shared, app, &slot.name);
    let is_prod = slot.name == PRODUCTION;
    let kind = site_kind(app);
    let swap_status = app.preview.as_ref().map(|p| serde_json::json!({
        "timestampUtc": now_rfc3339(), "sourceSlotName": p.source, "destinationSlotName": p.target
    }));
    let mut site = serde_json::json!({
        "id": resource_id(app, &slot.name),
        "name": if is_prod { app.name.clone() } else { format!("{}/{}", app.name, slot.name) },
        "type": if is_prod { "Microsoft.Web/sites" } else { "Microsoft.Web/sites/slots" },
        "kind": kind,
        "location": app.location,
        "tags": slot.tags,
        "properties": {
            "state": if slot.stopped { "Stopped" } else { "Running" },
            "hostNames": [host],
            "repositorySiteName": app.name,
            "usageState": "Normal",
            "enabled": true,
            "enabledHostNames": [host, scm],
            "availabilityState": "Normal",
            "hostNameSslStates": [
                {"name": host, "sslState": "Disabled", "hostType": "Standard"},
                {"name": scm, "sslState": "Disabled", "hostType": "Repository"}
            ],
            "serverFarmId": plan_id(app),
            "reserved": app.os == AppOs::Linux,
            "isXenon": false,
            "hyperV": false,
            "lastModifiedTimeUtc": slot.last_modified,
            "outboundVnetRouting": {
                "allTraffic": false, "applicationTraffic": false, "contentShareTraffic": false,
                "imagePullTraffic": false, "backupRestoreTraffic": false
            },
            "siteConfig": slot.site_config,
            "scmSiteAlsoStopped": false,
            "clientAffinityEnabled": true,
            "clientCertEnabled": false,
            "clientCertMode": "Required",
            "hostNamesDisabled": false,
            "customDomainVerificationId": "0000000000000000000000000000000000000000000000000000000000000000",
            "outboundIpAddresses": "127.0.0.1",
            "possibleOutboundIpAddresses": "127.0.0.1",
            "containerSize": 0,
            "dailyMemoryTimeQuota": 0,
            "resourceGroup": app.resource_group,
            "defaultHostName": host,
            "slotSwapStatus": swap_status,
            "httpsOnly": true,
            "redundancyMode": "None",
            "storageAccountRequired": false,
            "keyVaultReferenceIdentity": "SystemAssigned",
            "sku": app.plan.1.tier
        }
    });
    // Added separately: one more field in the literal above exceeds `json!`'s recursion limit.
    site["properties"]["resourceConfig"] = serde_json::json!({"cpu": 1.0, "memory": "2.0Gi"});
    site["properties"]["workloadProfileName"] = serde_json::Value::Null;
    if let Some(cfg) = &app.function_app_config {
        site["properties"]["functionAppConfig"] = cfg.clone();
    }
    site
}

pub(crate) fn slot_list(shared: &Shared, name: &str) -> Response {
    let state = lock(&shared.state);
    let Some(app) = state.apps.get(name) else {
        return not_found("Microsoft.Web/sites", name, "");
    };
    let value: Vec<serde_json::Value> = app
        .slots
        .values()
        .filter(|s| s.name != PRODUCTION)
        .map(|s| site_json(shared, app, s))
        .collect();
    json(
        StatusCode::OK,
        &serde_json::json!({"value": value, "nextLink": null}),
    )
}

pub(crate) fn create_slot_resource(
    shared: &Arc<Shared>,
    api_version: &str,
    name: &str,
    slot: &str,
    body: &serde_json::Value,
) -> Response {
    if !crate::seed::valid_host_label(slot) {
        return error_json(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("The slot name '{slot}' is invalid."),
        );
    }
    // Refused before the slot exists, so a bad tag set or site config creates nothing.
    let new_config = match site_config::checked(body.pointer("/properties/siteConfig")) {
        Ok(c) => c,
        Err(refusal) => return *refusal,
    };
    let new_tags =
        match crate::tags::site_body_tags(body, |v| v.as_str().unwrap_or_default().to_owned()) {
            Ok(t) => t,
            Err(refusal) => return refusal.response(),
        };
    let (resp_body, created) = {
        let mut state = lock(&shared.state);
        let Some(app) = state.apps.get_mut(name) else {
            return not_found("Microsoft.Web/sites", name, "");
        };
        let created = app.slot(slot).is_none();
        // The plan's SKU bounds the slots (none but production on Free, Basic, Flex Consumption…).
        if created && app.slots.len() >= app.plan.1.slot_limit(app.os == AppOs::Linux) {
            return error_json(
                StatusCode::CONFLICT,
                "Conflict",
                &format!(
                    "Cannot complete the operation because the site will exceed the number of slots allowed for the '{}' SKU.",
                    app.plan.1.tier
                ),
            );
        }
        if created {
            let content = match new_content_dir(&app.root_dir) {
                Ok(c) => c,
                Err(e) => {
                    return error_json(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "InternalServerError",
                        &e.to_string(),
                    );
                }
            };
            let mut config = app.default_config();
            if let Some(cfg) = &new_config {
                config::merge(&mut config, cfg);
            }
            app.slots.insert(
                slot.to_owned(),
                Slot {
                    name: slot.to_owned(),
                    stopped: false,
                    app_settings: BTreeMap::new(),
                    connection_strings: BTreeMap::new(),
                    site_config: config,
                    tags: BTreeMap::new(),
                    content_dir: content,
                    deployments: Vec::new(),
                    deploying: false,
                    instance: None,
                    requests_served: 0,
                    forced_unhealthy: false,
                    last_modified: now_rfc3339(),
                    metadata: BTreeMap::new(),
                    site_containers: BTreeMap::new(),
                    host_keys: app.new_host_keys(),
                    mounted_package: None,
                },
            );
        }
        if let Some(s) = app.slot_mut(slot)
            && let Some(tags) = new_tags
        {
            s.tags = tags;
        }
        let app = &state.apps[name];
        (
            app.slot(slot)
                .map(|s| site_json(shared, app, s))
                .unwrap_or_default(),
            created,
        )
    };
    if created {
        crate::runtime::restart(shared, name, slot);
        let mut resp = json(StatusCode::ACCEPTED, &resp_body);
        let id = lro::record_done(shared, name, "CreateSlot");
        add_lro_headers(shared, &mut resp, (name, slot), &id, api_version);
        resp
    } else {
        json(StatusCode::OK, &resp_body)
    }
}
