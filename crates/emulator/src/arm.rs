//! ARM App Service control plane: sites and slots, app settings, sticky names, site config,
//! publishing credentials, the SCM basic-auth policy, deployments, and the long-running operations
//! (swap, swap with preview, restart, start, stop) with Azure's swap semantics.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::entra::{AuthFailure, check_bearer, fmt_unix, tenant_authority};
use crate::fault::Fault;
use crate::server::{error_json, json, query_param, read_json};
use crate::state::{
    App, OpStatus, Operation, PRODUCTION, Preview, SWAPPABLE_CONFIG, Slot, new_content_dir, new_id,
    now_rfc3339,
};
use crate::{ARM_AUDIENCE, Shared, lock};

/// A failed long-running operation: the status and error its poll answers with.
#[derive(Debug, Clone)]
pub(crate) struct OpError {
    status: u16,
    code: String,
    message: String,
}

impl OpError {
    fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

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

fn not_found(kind: &str, name: &str, rg: &str) -> Response {
    error_json(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        &format!(
            "The Resource '{kind}/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        ),
    )
}

pub(crate) async fn handle(shared: Arc<Shared>, req: Request<Body>) -> Response {
    if let Err(f) = check_bearer(&shared, req.headers(), ARM_AUDIENCE) {
        return challenge(&shared, &f);
    }
    let segs: Vec<String> = req
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let low: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let low: Vec<&str> = low.iter().map(String::as_str).collect();
    let api_version = query_param(req.uri().query(), "api-version");
    if api_version.is_none() {
        return error_json(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
    }
    let method = req.method().clone();
    match low.as_slice() {
        [
            "subscriptions",
            _,
            "providers",
            "microsoft.web",
            "sites",
            name,
            kind @ ("operationresults" | "asyncoperations"),
            id,
        ] => operation_status(
            &shared,
            name,
            id,
            *kind == "operationresults",
            req.uri().query(),
        ),
        [
            "subscriptions",
            _,
            "resourcegroups",
            _,
            "providers",
            "microsoft.web",
            "sites",
        ] if method == Method::GET => {
            let (sub, rg) = (&segs[1], &segs[3]);
            if let Err(r) = check_scope(&shared, sub, rg) {
                return *r;
            }
            let state = lock(&shared.state);
            let value: Vec<serde_json::Value> = state
                .apps
                .values()
                .filter(|a| {
                    a.subscription_id.eq_ignore_ascii_case(sub)
                        && a.resource_group.eq_ignore_ascii_case(rg)
                })
                .filter_map(|a| a.slot(PRODUCTION).map(|s| site_json(&shared, a, s)))
                .collect();
            json(
                StatusCode::OK,
                &serde_json::json!({"value": value, "nextLink": null}),
            )
        }
        [
            "subscriptions",
            _,
            "resourcegroups",
            _,
            "providers",
            "microsoft.web",
            "sites",
            _,
            rest @ ..,
        ] => {
            let (sub, rg, name) = (segs[1].clone(), segs[3].clone(), low[7].to_owned());
            if let Err(r) = check_scope(&shared, &sub, &rg) {
                return *r;
            }
            {
                let state = lock(&shared.state);
                let ok = state.apps.get(&name).is_some_and(|a| {
                    a.subscription_id.eq_ignore_ascii_case(&sub)
                        && a.resource_group.eq_ignore_ascii_case(&rg)
                });
                if !ok {
                    return not_found("Microsoft.Web/sites", &segs[7], &rg);
                }
            }
            let rest: Vec<String> = rest.iter().map(|s| (*s).to_owned()).collect();
            let (slot, ops): (String, Vec<String>) = match rest.first().map(String::as_str) {
                Some("slots") if rest.len() == 1 => {
                    if method != Method::GET {
                        return method_not_allowed();
                    }
                    return list_slots(&shared, &name);
                }
                Some("slots") => (rest[1].clone(), rest[2..].to_vec()),
                _ => (PRODUCTION.to_owned(), rest.clone()),
            };
            site_op(
                shared,
                req,
                api_version.unwrap_or_default(),
                name,
                rg,
                slot,
                ops,
            )
            .await
        }
        _ => error_json(
            StatusCode::NOT_FOUND,
            "NotFound",
            "No HTTP resource was found that matches the request URI (not emulated).",
        ),
    }
}

fn method_not_allowed() -> Response {
    error_json(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "The requested method is not allowed on this resource.",
    )
}

fn check_scope(shared: &Shared, sub: &str, rg: &str) -> Result<(), Box<Response>> {
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

fn host_names(shared: &Shared, app: &App, slot: &str) -> (String, String) {
    let hosts = app.hosts(slot);
    (
        shared.host_with_port(&hosts.app),
        shared.host_with_port(&hosts.scm),
    )
}

/// The `Site` resource, with the fields of the official GetWebApp/GetWebAppSlot examples. Host
/// names carry the emulator's port so that `https://<hostName>` reaches it.
fn site_json(shared: &Shared, app: &App, slot: &Slot) -> serde_json::Value {
    let (host, scm) = host_names(shared, app, &slot.name);
    let is_prod = slot.name == PRODUCTION;
    let kind = match app.kind {
        crate::seed::AppKind::Code => "app,linux",
        crate::seed::AppKind::Container => "app,linux,container",
    };
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
            "serverFarmId": format!("/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Web/serverfarms/{}-plan", app.subscription_id, app.resource_group, app.name),
            "reserved": true,
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
            "sku": "Standard"
        }
    });
    // Added separately: one more field in the literal above exceeds `json!`'s recursion limit.
    site["properties"]["resourceConfig"] = serde_json::json!({"cpu": 1.0, "memory": "2.0Gi"});
    site["properties"]["workloadProfileName"] = serde_json::Value::Null;
    site
}

fn list_slots(shared: &Shared, name: &str) -> Response {
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

fn config_resource(
    app: &App,
    slot: &str,
    name: &str,
    properties: serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({
        "id": format!("{}/config/{name}", resource_id(app, slot)),
        "name": name,
        "type": if slot == PRODUCTION { "Microsoft.Web/sites/config" } else { "Microsoft.Web/sites/slots/config" },
        "kind": "app",
        "location": app.location,
        "properties": properties,
    })
}

fn merge(
    target: &mut serde_json::Map<String, serde_json::Value>,
    patch: &serde_json::Map<String, serde_json::Value>,
) {
    for (k, v) in patch {
        target.insert(k.clone(), v.clone());
    }
}

#[allow(clippy::too_many_lines)]
async fn site_op(
    shared: Arc<Shared>,
    req: Request<Body>,
    api_version: String,
    name: String,
    rg: String,
    slot: String,
    ops: Vec<String>,
) -> Response {
    let slot = slot.to_ascii_lowercase();
    let method = req.method().clone();
    let query = req.uri().query().map(str::to_owned);
    let ops_low: Vec<String> = ops.iter().map(|s| s.to_ascii_lowercase()).collect();
    let ops_ref: Vec<&str> = ops_low.iter().map(String::as_str).collect();
    let slot_exists = lock(&shared.state)
        .apps
        .get(&name)
        .is_some_and(|a| a.slot(&slot).is_some());
    let creating = method == Method::PUT && ops_ref.is_empty() && slot != PRODUCTION;
    if !slot_exists && !creating {
        return not_found("Microsoft.Web/sites/slots", &format!("{name}/{slot}"), &rg);
    }
    let body = match read_json(req.into_body()).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match (method.clone(), ops_ref.as_slice()) {
        (_, ["providers", "microsoft.resources", "tags", "default"]) => {
            crate::tags::handle(&shared, &method, &body, &name, &slot)
        }
        (Method::GET, []) => {
            let state = lock(&shared.state);
            match state
                .apps
                .get(&name)
                .and_then(|a| a.slot(&slot).map(|s| site_json(&shared, a, s)))
            {
                Some(v) => json(StatusCode::OK, &v),
                None => not_found("Microsoft.Web/sites", &name, &rg),
            }
        }
        (Method::PUT, []) if slot != PRODUCTION => {
            create_slot(&shared, &api_version, &name, &slot, &body)
        }
        (Method::PATCH | Method::PUT, []) => {
            // Checked before the lock is taken and anything is written, so a refused request
            // leaves tags and siteConfig as they were (ARM validates the whole body first).
            let new_tags = match body_tags(&body, |v| {
                v.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string())
            }) {
                Ok(t) => t,
                Err(refusal) => return refusal.response(),
            };
            let v = {
                let mut state = lock(&shared.state);
                let Some(app) = state.apps.get_mut(&name) else {
                    return not_found("Microsoft.Web/sites", &name, &rg);
                };
                let Some(s) = app.slot_mut(&slot) else {
                    return not_found("Microsoft.Web/sites/slots", &slot, &rg);
                };
                if let Some(tags) = new_tags {
                    s.tags = tags;
                }
                if let Some(cfg) = body
                    .pointer("/properties/siteConfig")
                    .and_then(|c| c.as_object())
                {
                    merge(&mut s.site_config, cfg);
                }
                s.last_modified = now_rfc3339();
                let app = &state.apps[&name];
                app.slot(&slot)
                    .map(|s| site_json(&shared, app, s))
                    .unwrap_or_default()
            };
            json(StatusCode::OK, &v)
        }
        (Method::DELETE, []) if slot != PRODUCTION => {
            let removed = lock(&shared.state)
                .apps
                .get_mut(&name)
                .and_then(|a| a.slots.remove(&slot));
            if let Some(s) = removed
                && let Some(i) = &s.instance
            {
                i.stop();
            }
            StatusCode::OK.into_response()
        }
        (Method::POST, ["config", "appsettings", "list"]) => {
            let state = lock(&shared.state);
            let app = &state.apps[&name];
            let settings = app
                .slot(&slot)
                .map(|s| s.app_settings.clone())
                .unwrap_or_default();
            json(
                StatusCode::OK,
                &config_resource(
                    app,
                    &slot,
                    "appsettings",
                    serde_json::to_value(settings).unwrap_or_default(),
                ),
            )
        }
        (Method::PUT, ["config", "appsettings"]) => {
            let Some(props) = body.get("properties").and_then(|p| p.as_object()) else {
                return error_json(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "The request body must contain 'properties' with the settings.",
                );
            };
            let settings: BTreeMap<String, String> = props
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect();
            let resp = {
                let mut state = lock(&shared.state);
                let Some(app) = state.apps.get_mut(&name) else {
                    return not_found("Microsoft.Web/sites", &name, &rg);
                };
                if let Some(s) = app.slot_mut(&slot) {
                    s.app_settings = settings.clone();
                    s.last_modified = now_rfc3339();
                }
                config_resource(
                    app,
                    &slot,
                    "appsettings",
                    serde_json::to_value(&settings).unwrap_or_default(),
                )
            };
            // App Service restarts the app when its settings change.
            crate::runtime::restart(&shared, &name, &slot);
            json(StatusCode::OK, &resp)
        }
        (Method::GET | Method::PUT, ["config", "slotconfignames"]) => {
            let mut state = lock(&shared.state);
            let Some(app) = state.apps.get_mut(&name) else {
                return not_found("Microsoft.Web/sites", &name, &rg);
            };
            if method == Method::PUT {
                let props = body.get("properties").cloned().unwrap_or_default();
                match serde_json::from_value(props) {
                    Ok(names) => app.slot_config_names = names,
                    Err(e) => {
                        return error_json(
                            StatusCode::BAD_REQUEST,
                            "BadRequest",
                            &format!("Invalid slotConfigNames: {e}"),
                        );
                    }
                }
            }
            let props = serde_json::to_value(&app.slot_config_names).unwrap_or_default();
            json(
                StatusCode::OK,
                &serde_json::json!({
                    "id": format!("{}/config/slotConfigNames", resource_id(app, PRODUCTION)),
                    "name": "slotConfigNames",
                    "type": "Microsoft.Web/sites/config",
                    "location": app.location,
                    "properties": props,
                }),
            )
        }
        (Method::GET | Method::PUT | Method::PATCH, ["config", "web"]) => {
            let mut restart = false;
            let resp = {
                let mut state = lock(&shared.state);
                let Some(app) = state.apps.get_mut(&name) else {
                    return not_found("Microsoft.Web/sites", &name, &rg);
                };
                let Some(s) = app.slot_mut(&slot) else {
                    return not_found("Microsoft.Web/sites/slots", &slot, &rg);
                };
                if method != Method::GET {
                    let Some(props) = body.get("properties").and_then(|p| p.as_object()) else {
                        return error_json(
                            StatusCode::BAD_REQUEST,
                            "BadRequest",
                            "The request body must contain 'properties' with the site config.",
                        );
                    };
                    let before: Vec<Option<serde_json::Value>> =
                        ["linuxFxVersion", "appCommandLine"]
                            .iter()
                            .map(|k| s.site_config.get(*k).cloned())
                            .collect();
                    // PUT and PATCH both merge: properties absent from the body keep their value,
                    // which is what App Service does for config/web.
                    merge(&mut s.site_config, props);
                    s.last_modified = now_rfc3339();
                    let after: Vec<Option<serde_json::Value>> =
                        ["linuxFxVersion", "appCommandLine"]
                            .iter()
                            .map(|k| s.site_config.get(*k).cloned())
                            .collect();
                    restart = before != after;
                }
                let cfg = serde_json::Value::Object(s.site_config.clone());
                let app = &state.apps[&name];
                config_resource(app, &slot, "web", cfg)
            };
            if restart {
                crate::runtime::restart(&shared, &name, &slot);
            }
            json(StatusCode::OK, &resp)
        }
        (Method::POST, ["config", "publishingcredentials", "list"]) => {
            let state = lock(&shared.state);
            let app = &state.apps[&name];
            let user = app.publishing_user(&slot);
            let (_, scm) = host_names(&shared, app, &slot);
            json(
                StatusCode::OK,
                &serde_json::json!({
                    "id": format!("{}/publishingcredentials/$", resource_id(app, &slot)),
                    "name": app.name,
                    "type": "Microsoft.Web/sites/publishingcredentials",
                    "kind": "app",
                    "properties": {
                        "name": null,
                        "publishingUserName": user,
                        "publishingPassword": app.publishing_password.expose(),
                        "scmUri": format!("https://{}:{}@{}", user, app.publishing_password.expose(), scm),
                    }
                }),
            )
        }
        (
            Method::GET | Method::PUT,
            [
                "basicpublishingcredentialspolicies",
                which @ ("scm" | "ftp"),
            ],
        ) => {
            let mut state = lock(&shared.state);
            let Some(app) = state.apps.get_mut(&name) else {
                return not_found("Microsoft.Web/sites", &name, &rg);
            };
            if method == Method::PUT && *which == "scm" {
                match body
                    .pointer("/properties/allow")
                    .and_then(serde_json::Value::as_bool)
                {
                    Some(allow) => app.basic_auth = allow,
                    None => {
                        return error_json(
                            StatusCode::BAD_REQUEST,
                            "BadRequest",
                            "properties.allow is required.",
                        );
                    }
                }
            }
            json(
                StatusCode::OK,
                &serde_json::json!({
                    "id": format!("{}/basicPublishingCredentialsPolicies/{which}", resource_id(app, &slot)),
                    "name": which,
                    "type": "Microsoft.Web/sites/basicPublishingCredentialsPolicies",
                    "properties": {"allow": app.basic_auth},
                }),
            )
        }
        (Method::POST, [op @ ("slotsswap" | "applyslotconfig")]) => {
            let Some(target) = body
                .get("targetSlot")
                .and_then(|t| t.as_str())
                .map(str::to_ascii_lowercase)
            else {
                return error_json(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "The parameter targetSlot has an invalid value.",
                );
            };
            if target == slot {
                return error_json(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!("Cannot swap slot '{slot}' with itself."),
                );
            }
            let target_exists = lock(&shared.state)
                .apps
                .get(&name)
                .is_some_and(|a| a.slot(&target).is_some());
            if !target_exists {
                return not_found(
                    "Microsoft.Web/sites/slots",
                    &format!("{name}/{target}"),
                    &rg,
                );
            }
            let apply_only = *op == "applyslotconfig";
            let op_name = if apply_only {
                "ApplySlotConfig"
            } else {
                "SwapSiteSlots"
            };
            let (s2, n2, src) = (shared.clone(), name.clone(), slot.clone());
            start_operation(&shared, &api_version, &name, op_name, async move {
                swap(s2, n2, src, target, apply_only).await
            })
        }
        (Method::POST, ["resetslotconfig"]) => {
            let (s2, n2) = (shared.clone(), name.clone());
            start_operation(
                &shared,
                &api_version,
                &name,
                "ResetSlotConfig",
                async move {
                    reset_preview(&s2, &n2);
                    Ok(())
                },
            )
        }
        (Method::POST, [op @ ("restart" | "start" | "stop")]) => {
            let stopped = match *op {
                "start" => Some(false),
                "stop" => Some(true),
                _ => None,
            };
            let synchronous = *op == "restart"
                && query_param(query.as_deref(), "synchronous")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"));
            let (s2, n2, sl2) = (shared.clone(), name.clone(), slot.clone());
            let work = async move {
                if let Some(stopped) = stopped
                    && let Some(s) = lock(&s2.state)
                        .apps
                        .get_mut(&n2)
                        .and_then(|a| a.slot_mut(&sl2))
                {
                    s.stopped = stopped;
                }
                crate::runtime::restart(&s2, &n2, &sl2);
                Ok(())
            };
            if synchronous {
                let _ = work.await;
                return StatusCode::OK.into_response();
            }
            let op_name = match *op {
                "start" => "StartSite",
                "stop" => "StopSite",
                _ => "RestartSite",
            };
            start_operation(&shared, &api_version, &name, op_name, work)
        }
        (Method::GET, ["deployments"]) => {
            let state = lock(&shared.state);
            deployment_list(&state.apps[&name], &slot, arm_deployment)
        }
        (Method::GET | Method::PUT, ["deployments", _]) => {
            let id = ops[1].clone();
            let mut state = lock(&shared.state);
            let Some(app) = state.apps.get_mut(&name) else {
                return not_found("Microsoft.Web/sites", &name, &rg);
            };
            if method == Method::PUT {
                let props = body.get("properties").cloned().unwrap_or_default();
                let site = app.name.clone();
                if let Some(s) = app.slot_mut(&slot) {
                    crate::kudu::put_record(s, &site, &id, &props, None);
                }
            }
            let app = &state.apps[&name];
            match app
                .slot(&slot)
                .and_then(|s| s.deployments.iter().find(|d| d.id == id))
            {
                Some(d) => json(StatusCode::OK, &arm_deployment(app, &slot, d)),
                None => not_found("Microsoft.Web/sites/deployments", &id, &rg),
            }
        }
        (Method::GET, ["deploymentstatus"]) => {
            let state = lock(&shared.state);
            deployment_list(&state.apps[&name], &slot, deployment_status)
        }
        (Method::GET, ["deploymentstatus", _]) => {
            let state = lock(&shared.state);
            let app = &state.apps[&name];
            match app.slot(&slot).and_then(|s| {
                s.deployments
                    .iter()
                    .find(|d| d.id.eq_ignore_ascii_case(&ops[1]))
            }) {
                Some(d) => json(
                    if d.complete {
                        StatusCode::OK
                    } else {
                        StatusCode::ACCEPTED
                    },
                    &deployment_status(app, &slot, d),
                ),
                None => not_found("Microsoft.Web/sites/deploymentStatus", &ops[1], &rg),
            }
        }
        (Method::GET, ["deployments", _, "log"]) => {
            let state = lock(&shared.state);
            let app = &state.apps[&name];
            match app
                .slot(&slot)
                .and_then(|s| s.deployments.iter().find(|d| d.id == ops[1]))
            {
                Some(d) => {
                    let value: Vec<serde_json::Value> = d.log.iter().enumerate().map(|(i, m)| serde_json::json!({
                        "id": format!("{}/deployments/{}/log/{i}", resource_id(app, &slot), d.id),
                        "name": i.to_string(),
                        "properties": {"message": m, "log_time": d.end_time, "type": 0}
                    })).collect();
                    json(
                        StatusCode::OK,
                        &serde_json::json!({"value": value, "nextLink": null}),
                    )
                }
                None => not_found("Microsoft.Web/sites/deployments", &ops[1], &rg),
            }
        }
        _ => error_json(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("The operation {method} {} is not emulated.", ops.join("/")),
        ),
    }
}

fn arm_deployment(app: &App, slot: &str, d: &crate::state::DeploymentRecord) -> serde_json::Value {
    serde_json::json!({
        "id": format!("{}/deployments/{}", resource_id(app, slot), d.id),
        "name": format!("{}/{}", app.name, d.id),
        "type": "Microsoft.Web/sites/deployments",
        "properties": {
            "status": d.status,
            "message": d.message,
            "author": d.author,
            "deployer": d.deployer,
            "author_email": d.author_email,
            "start_time": d.start_time,
            "end_time": d.end_time,
            "active": d.active,
            "details": d.details,
        }
    })
}

/// OneDeploy's `CsmDeploymentStatus` view of a Kudu deployment record.
fn deployment_status(
    app: &App,
    slot: &str,
    d: &crate::state::DeploymentRecord,
) -> serde_json::Value {
    let (status, in_progress, ok, failed) = match d.status {
        4 => ("RuntimeSuccessful", 0, 1, 0),
        3 => ("BuildFailed", 0, 0, 1),
        2 => ("RuntimeStarting", 1, 0, 0),
        1 => ("BuildInProgress", 1, 0, 0),
        _ => ("BuildRequestReceived", 1, 0, 0),
    };
    serde_json::json!({
        "id": format!("{}/deploymentStatus/{}", resource_id(app, slot), d.id),
        "name": d.id,
        "type": "Microsoft.Web/sites/deploymentStatus",
        "properties": {
            "deploymentId": d.id,
            "status": status,
            "numberOfInstancesInProgress": in_progress,
            "numberOfInstancesSuccessful": ok,
            "numberOfInstancesFailed": failed,
            "failedInstancesLogs": [],
            "errors": if d.status == 3 { serde_json::json!([{"extendedCode": "BuildFailed", "message": d.status_text}]) } else { serde_json::Value::Null },
        }
    })
}

// Azure Resource Manager's limits on a resource's tags. Lengths are counted as ARM (.NET) counts
// them, in UTF-16 code units, so a character outside the BMP costs two.
/// Most tags one resource may carry.
const MAX_TAGS: usize = 50;
/// Longest tag name.
const MAX_TAG_NAME_LEN: usize = 512;
/// Longest tag value.
const MAX_TAG_VALUE_LEN: usize = 256;

/// The tag set a site/slot PUT or PATCH body asks for (`None` when it has no `tags`), refused with
/// ARM's 400 errors when it breaks a tag limit. The body's `tags` replace the resource's tags, so the
/// set checked is exactly the set the resource would be left with.
fn body_tags(
    body: &serde_json::Value,
    value_text: impl Fn(&serde_json::Value) -> String,
) -> Result<Option<BTreeMap<String, String>>, TagRefusal> {
    let Some(tags) = body.get("tags").and_then(|t| t.as_object()) else {
        return Ok(None);
    };
    let tags: BTreeMap<String, String> = tags
        .iter()
        .map(|(k, v)| (k.clone(), value_text(v)))
        .collect();
    check_tag_limits(&tags)?;
    Ok(Some(tags))
}

/// A tag write ARM refuses: its error code and message (always a 400).
#[derive(Debug)]
pub(crate) struct TagRefusal {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl TagRefusal {
    fn response(&self) -> Response {
        error_json(StatusCode::BAD_REQUEST, self.code, &self.message)
    }
}

/// ARM's own codes and wording for each broken limit, so clients see what real Azure would say.
pub(crate) fn check_tag_limits(tags: &BTreeMap<String, String>) -> Result<(), TagRefusal> {
    if tags.len() > MAX_TAGS {
        return Err(TagRefusal {
            code: "InvalidTags",
            message: format!(
                "Too many tags specified. Requested tag count - '{}'. Maximum number of tags allowed - '{MAX_TAGS}'.",
                tags.len()
            ),
        });
    }
    let utf16_len = |s: &str| s.encode_utf16().count();
    if let Some(name) = tags.keys().find(|k| utf16_len(k) > MAX_TAG_NAME_LEN) {
        return Err(TagRefusal {
            code: "InvalidTagNameLength",
            message: format!(
                "Tag name too large.  Following tag name '{name}' exceeded the maximum length. Maximum allowed length for tag name - '{MAX_TAG_NAME_LEN}' characters."
            ),
        });
    }
    if let Some(value) = tags.values().find(|v| utf16_len(v) > MAX_TAG_VALUE_LEN) {
        return Err(TagRefusal {
            code: "InvalidTagValueLength",
            message: format!(
                "Tag value too large.  Following tag value '{value}' exceeded the maximum length. Maximum allowed length for tag value - '{MAX_TAG_VALUE_LEN}' characters."
            ),
        });
    }
    Ok(())
}

fn create_slot(
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
    // Refused before the slot exists, so a bad tag set creates nothing.
    let new_tags = match body_tags(body, |v| v.as_str().unwrap_or_default().to_owned()) {
        Ok(t) => t,
        Err(refusal) => return refusal.response(),
    };
    let (resp_body, created) = {
        let mut state = lock(&shared.state);
        let Some(app) = state.apps.get_mut(name) else {
            return not_found("Microsoft.Web/sites", name, "");
        };
        let created = app.slot(slot).is_none();
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
            let mut config = crate::state::default_site_config(app.kind);
            if let Some(cfg) = body
                .pointer("/properties/siteConfig")
                .and_then(|c| c.as_object())
            {
                merge(&mut config, cfg);
            }
            app.slots.insert(
                slot.to_owned(),
                Slot {
                    name: slot.to_owned(),
                    stopped: false,
                    app_settings: BTreeMap::new(),
                    site_config: config,
                    tags: BTreeMap::new(),
                    content_dir: content,
                    deployments: Vec::new(),
                    deploying: false,
                    instance: None,
                    requests_served: 0,
                    forced_unhealthy: false,
                    last_modified: now_rfc3339(),
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
        let id = new_id();
        lock(&shared.state).operations.insert(
            id.clone(),
            Operation {
                app: name.to_owned(),
                name: "CreateSlot".into(),
                status: OpStatus::Succeeded,
                started: now_rfc3339(),
            },
        );
        add_lro_headers(shared, &mut resp, name, &id, api_version);
        resp
    } else {
        json(StatusCode::OK, &resp_body)
    }
}

fn op_urls(shared: &Shared, app: &str, id: &str, api_version: &str) -> (String, String) {
    let sub = lock(&shared.state)
        .apps
        .get(app)
        .map(|a| a.subscription_id.clone())
        .unwrap_or_default();
    let base = format!(
        "{}/subscriptions/{sub}/providers/Microsoft.Web/sites/{app}",
        shared.url("management")
    );
    (
        format!("{base}/operationresults/{id}?api-version={api_version}"),
        format!("{base}/asyncoperations/{id}?api-version={api_version}"),
    )
}

fn retry_after_secs(shared: &Shared) -> String {
    let d = shared.lro_retry_after;
    // Retry-After carries whole seconds; round up so a sub-second setting still means "soon".
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.to_string()
}

fn add_lro_headers(shared: &Shared, resp: &mut Response, app: &str, id: &str, api_version: &str) {
    let (location, async_op) = op_urls(shared, app, id, api_version);
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&async_op) {
        h.insert("azure-asyncoperation", v);
    }
    if let Ok(v) = HeaderValue::from_str(&retry_after_secs(shared)) {
        h.insert(header::RETRY_AFTER, v);
    }
}

/// Starts a long-running operation holding the app: 409 if one already runs, else 202 with
/// `Location`, `Azure-AsyncOperation` and `Retry-After`.
fn start_operation<F>(
    shared: &Arc<Shared>,
    api_version: &str,
    app: &str,
    op_name: &str,
    work: F,
) -> Response
where
    F: Future<Output = Result<(), OpError>> + Send + 'static,
{
    let id = new_id();
    {
        let mut state = lock(&shared.state);
        let Some(a) = state.apps.get_mut(app) else {
            return not_found("Microsoft.Web/sites", app, "");
        };
        if let Some((busy_id, busy_name)) = &a.busy {
            return error_json(
                StatusCode::CONFLICT,
                "Conflict",
                &format!(
                    "Cannot modify this site because another operation is in progress. Details: Id: {busy_id}, OperationName: {busy_name}, CreatedTime: {}, WorkerName: emulator",
                    now_rfc3339()
                ),
            );
        }
        a.busy = Some((id.clone(), op_name.to_owned()));
        state.operations.insert(
            id.clone(),
            Operation {
                app: app.to_owned(),
                name: op_name.to_owned(),
                status: OpStatus::InProgress,
                started: now_rfc3339(),
            },
        );
    }
    let (s2, app2, id2) = (shared.clone(), app.to_owned(), id.clone());
    tokio::spawn(async move {
        let result = work.await;
        let mut state = lock(&s2.state);
        if let Some(op) = state.operations.get_mut(&id2) {
            op.status = match result {
                Ok(()) => OpStatus::Succeeded,
                Err(e) => OpStatus::Failed {
                    status: e.status,
                    code: e.code,
                    message: e.message,
                },
            };
        }
        if let Some(a) = state.apps.get_mut(&app2)
            && a.busy.as_ref().is_some_and(|(b, _)| *b == id2)
        {
            a.busy = None;
        }
    });
    let mut resp = StatusCode::ACCEPTED.into_response();
    add_lro_headers(shared, &mut resp, app, &id, api_version);
    resp
}

fn operation_status(
    shared: &Shared,
    app: &str,
    id: &str,
    location_style: bool,
    query: Option<&str>,
) -> Response {
    let op = lock(&shared.state).operations.get(id).cloned();
    let Some(op) = op.filter(|o| o.app.eq_ignore_ascii_case(app)) else {
        return error_json(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("Operation {id} was not found."),
        );
    };
    let api_version = query_param(query, "api-version").unwrap_or_default();
    if location_style {
        match op.status {
            OpStatus::InProgress => {
                let mut resp = StatusCode::ACCEPTED.into_response();
                add_lro_headers(shared, &mut resp, app, id, &api_version);
                resp
            }
            OpStatus::Succeeded => json(StatusCode::OK, &serde_json::json!({})),
            OpStatus::Failed {
                status,
                code,
                message,
            } => error_json(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                &code,
                &message,
            ),
        }
    } else {
        let (status, error) = match &op.status {
            OpStatus::InProgress => ("InProgress", None),
            OpStatus::Succeeded => ("Succeeded", None),
            OpStatus::Failed { code, message, .. } => (
                "Failed",
                Some(serde_json::json!({"code": code, "message": message})),
            ),
        };
        let mut body = serde_json::json!({"id": id, "name": id, "status": status, "startTime": op.started, "operationName": op.name});
        if let Some(e) = error {
            body["error"] = e;
        }
        let mut resp = json(StatusCode::OK, &body);
        if matches!(op.status, OpStatus::InProgress)
            && let Ok(v) = HeaderValue::from_str(&retry_after_secs(shared))
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

/// Non-sticky settings of `from` plus sticky settings of `sticky_from`.
fn combine(
    app: &App,
    from: &BTreeMap<String, String>,
    sticky_from: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = from
        .iter()
        .filter(|(k, _)| !app.is_sticky(k, from))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in sticky_from {
        if app.is_sticky(k, sticky_from) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

fn swap_failed(app: &str, slot: &str, detail: &str) -> OpError {
    OpError::new(
        400,
        "BadRequest",
        format!(
            "Cannot swap slots for site '{app}' because the application initialization in '{slot}' slot either took too long or failed. Please check application initialization configuration and consider using 'WEBSITE_SWAP_WARMUP_PING_PATH' and 'WEBSITE_SWAP_WARMUP_PING_STATUSES' application settings. Details: {detail}"
        ),
    )
}

/// Restores the source slot's settings after a failed phase 1 and restarts it.
fn revert_source(
    shared: &Arc<Shared>,
    app: &str,
    source: &str,
    original: BTreeMap<String, String>,
) {
    if let Some(s) = lock(&shared.state)
        .apps
        .get_mut(app)
        .and_then(|a| a.slot_mut(source))
    {
        s.app_settings = original;
    }
    crate::runtime::restart(shared, app, source);
}

/// The swap: phase 1 (target's sticky settings applied to the source, source restarted and warmed
/// up; aborted with both slots unchanged on failure), then, unless only applying, phase 2 (content,
/// non-sticky settings and stack exchanged; sticky settings stay; the warmed process now serves
/// the target; the source restarts with the old target's content).
async fn swap(
    shared: Arc<Shared>,
    app_name: String,
    source: String,
    target: String,
    apply_only: bool,
) -> Result<(), OpError> {
    let (original, applied) = {
        let mut state = lock(&shared.state);
        let app = state
            .apps
            .get_mut(&app_name)
            .ok_or_else(|| OpError::new(404, "ResourceNotFound", "The app no longer exists."))?;
        let preview = app
            .preview
            .clone()
            .filter(|p| p.source == source && p.target == target);
        match preview {
            Some(p) => (p.original_settings, true),
            None => {
                let src = app
                    .slot(&source)
                    .map(|s| s.app_settings.clone())
                    .unwrap_or_default();
                let tgt = app
                    .slot(&target)
                    .map(|s| s.app_settings.clone())
                    .unwrap_or_default();
                let combined = combine(app, &src, &tgt);
                if let Some(s) = app.slot_mut(&source) {
                    s.app_settings = combined;
                }
                (src, false)
            }
        }
    };
    if !applied {
        crate::runtime::restart(&shared, &app_name, &source);
        let timeout = lock(&shared.faults).take(
            |f| matches!(f, Fault::SwapTimesOut { app, .. } if app.eq_ignore_ascii_case(&app_name)),
        );
        if let Some(Fault::SwapTimesOut { millis, .. }) = timeout {
            tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
            revert_source(&shared, &app_name, &source, original);
            return Err(OpError::new(
                500,
                "SwapTimedOut",
                format!(
                    "The swap of '{source}' into '{target}' timed out while warming up '{source}'; it was aborted and both slots are unchanged."
                ),
            ));
        }
        let injected = lock(&shared.faults).take(
            |f| matches!(f, Fault::SwapWarmupFails { app } if app.eq_ignore_ascii_case(&app_name)),
        );
        let (instance, settings, stopped) = {
            let state = lock(&shared.state);
            let s = state.apps.get(&app_name).and_then(|a| a.slot(&source));
            (
                s.and_then(|s| s.instance.clone()),
                s.map(|s| s.app_settings.clone()).unwrap_or_default(),
                s.is_some_and(|s| s.stopped),
            )
        };
        let warm = if injected.is_some() {
            Err("the warm-up request failed (injected fault)".to_owned())
        } else {
            match (&instance, stopped) {
                (_, true) => Err(format!("slot '{source}' is stopped")),
                (Some(i), false) => crate::runtime::warm_up(&shared, i, &settings).await,
                (None, false) => Err("the app is not running".to_owned()),
            }
        };
        if let Err(detail) = warm {
            revert_source(&shared, &app_name, &source, original);
            return Err(swap_failed(&app_name, &source, &detail));
        }
    }
    if apply_only {
        if let Some(app) = lock(&shared.state).apps.get_mut(&app_name) {
            app.preview = Some(Preview {
                source,
                target,
                original_settings: original,
            });
        }
        return Ok(());
    }
    {
        let unhealthy = lock(&shared.faults).take(|f| matches!(f, Fault::AppUnhealthyAfterSwap { app } if app.eq_ignore_ascii_case(&app_name)));
        let mut state = lock(&shared.state);
        let app = state
            .apps
            .get_mut(&app_name)
            .ok_or_else(|| OpError::new(404, "ResourceNotFound", "The app no longer exists."))?;
        let (Some(mut src), Some(mut tgt)) = (app.slots.remove(&source), app.slots.remove(&target))
        else {
            return Err(OpError::new(
                404,
                "ResourceNotFound",
                "A slot of the swap no longer exists.",
            ));
        };
        let new_source_settings = combine(app, &tgt.app_settings, &original);
        // The source now runs with non-sticky(source) + sticky(target): exactly the target's future.
        let new_target_settings = std::mem::take(&mut src.app_settings);
        std::mem::swap(&mut src.content_dir, &mut tgt.content_dir);
        std::mem::swap(&mut src.deployments, &mut tgt.deployments);
        std::mem::swap(&mut src.instance, &mut tgt.instance);
        std::mem::swap(&mut src.forced_unhealthy, &mut tgt.forced_unhealthy);
        for key in SWAPPABLE_CONFIG {
            let a = src.site_config.remove(*key);
            let b = tgt.site_config.remove(*key);
            if let Some(b) = b {
                src.site_config.insert((*key).to_owned(), b);
            }
            if let Some(a) = a {
                tgt.site_config.insert((*key).to_owned(), a);
            }
        }
        tgt.app_settings = new_target_settings;
        src.app_settings = new_source_settings;
        src.requests_served = 0;
        tgt.requests_served = 0;
        if unhealthy.is_some() {
            tgt.forced_unhealthy = true;
        }
        let now = now_rfc3339();
        src.last_modified.clone_from(&now);
        tgt.last_modified = now;
        app.slots.insert(source.clone(), src);
        app.slots.insert(target.clone(), tgt);
        app.preview = None;
    }
    crate::runtime::restart(&shared, &app_name, &source);
    Ok(())
}

fn reset_preview(shared: &Arc<Shared>, app_name: &str) {
    let preview = lock(&shared.state)
        .apps
        .get_mut(app_name)
        .and_then(|a| a.preview.take());
    if let Some(p) = preview {
        revert_source(shared, app_name, &p.source, p.original_settings);
    }
}

/// A slot's deployments, newest first, as an ARM list (`{value, nextLink}`) in the shape `render` gives.
fn deployment_list(
    app: &App,
    slot: &str,
    render: fn(&App, &str, &crate::state::DeploymentRecord) -> serde_json::Value,
) -> Response {
    let value: Vec<serde_json::Value> = app
        .slot(slot)
        .map(|s| {
            s.deployments
                .iter()
                .rev()
                .map(|d| render(app, slot, d))
                .collect()
        })
        .unwrap_or_default();
    json(
        StatusCode::OK,
        &serde_json::json!({"value": value, "nextLink": null}),
    )
}
