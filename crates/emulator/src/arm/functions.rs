//! Routes of the newer app kinds: the `sitecontainers` of a sitecontainers app (`linuxFxVersion:
//! SITECONTAINERS`) and the host keys of a function app (`host/default/listkeys`).

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::route::Ctx;
use super::{not_found, resource_id};
use crate::lock;
use crate::server::{error_json, json};
use crate::state::{PRODUCTION, now_rfc3339};

fn container_json(
    app: &crate::state::App,
    slot: &str,
    container: &crate::state::SiteContainer,
) -> serde_json::Value {
    serde_json::json!({
        "id": format!("{}/sitecontainers/{}", resource_id(app, slot), container.name),
        "name": container.name,
        "type": if slot == PRODUCTION { "Microsoft.Web/sites/sitecontainers" } else { "Microsoft.Web/sites/slots/sitecontainers" },
        "properties": container.properties,
    })
}

/// Reads a `SiteContainer` body: `image` and `isMain` are required by the spec; the properties are
/// kept as sent, with the times ARM stamps.
fn read_container(
    body: &serde_json::Value,
    created: Option<&serde_json::Value>,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let Some(props) = body.get("properties").and_then(|p| p.as_object()) else {
        return Err("The request body must contain 'properties' with the site container.".into());
    };
    if !props.get("image").is_some_and(serde_json::Value::is_string) {
        return Err("The parameter Image has an invalid value.".into());
    }
    if !props
        .get("isMain")
        .is_some_and(serde_json::Value::is_boolean)
    {
        return Err("The parameter IsMain has an invalid value.".into());
    }
    if props
        .get("targetPort")
        .is_some_and(|p| !p.is_null() && !p.is_string())
    {
        return Err("The parameter TargetPort has an invalid value.".into());
    }
    let mut out = props.clone();
    let now = serde_json::Value::from(now_rfc3339());
    out.insert(
        "createdTime".into(),
        created.cloned().unwrap_or_else(|| now.clone()),
    );
    out.insert("lastModifiedTime".into(), now);
    Ok(out)
}

/// `GET sitecontainers`: the slot's containers.
pub(super) async fn list_containers(ctx: Ctx) -> Response {
    let state = lock(&ctx.shared.state);
    let app = &state.apps[&ctx.name];
    let value: Vec<serde_json::Value> = app
        .slot(&ctx.slot)
        .map(|s| {
            s.site_containers
                .values()
                .map(|c| container_json(app, &ctx.slot, c))
                .collect()
        })
        .unwrap_or_default();
    json(
        StatusCode::OK,
        &serde_json::json!({"value": value, "nextLink": null}),
    )
}

/// `GET`, `PUT` (create or replace) and `DELETE sitecontainers/{containerName}`.
pub(super) async fn container(ctx: Ctx) -> Response {
    let name = ctx.param("container");
    let key = name.to_ascii_lowercase();
    {
        let mut state = lock(&ctx.shared.state);
        let Some(app) = state.apps.get_mut(&ctx.name) else {
            return not_found("Microsoft.Web/sites", &ctx.name, &ctx.rg);
        };
        let Some(s) = app.slot_mut(&ctx.slot) else {
            return not_found("Microsoft.Web/sites/slots", &ctx.slot, &ctx.rg);
        };
        let missing = || {
            not_found(
                "Microsoft.Web/sites/sitecontainers",
                &format!("{}/{name}", ctx.name),
                &ctx.rg,
            )
        };
        match ctx.method {
            Method::GET => {
                let Some(c) = s.site_containers.get(&key) else {
                    return missing();
                };
                let c = c.clone();
                let app = &state.apps[&ctx.name];
                return json(StatusCode::OK, &container_json(app, &ctx.slot, &c));
            }
            Method::DELETE => {
                if s.site_containers.remove(&key).is_none() {
                    // ARM answers a DELETE of what is not there with 204.
                    return StatusCode::NO_CONTENT.into_response();
                }
            }
            _ => {
                let existing = s.site_containers.get(&key);
                let created = existing.and_then(|c| c.properties.get("createdTime"));
                let props = match read_container(&ctx.body, created) {
                    Ok(p) => p,
                    Err(m) => return error_json(StatusCode::BAD_REQUEST, "BadRequest", &m),
                };
                let is_main = props.get("isMain") == Some(&serde_json::Value::Bool(true));
                let other_main = s.site_containers.iter().any(|(k, c)| {
                    *k != key && c.properties.get("isMain") == Some(&serde_json::Value::Bool(true))
                });
                if is_main && other_main {
                    return error_json(
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        "Only one main site container is allowed.",
                    );
                }
                let name = existing.map_or_else(|| name.clone(), |c| c.name.clone());
                s.site_containers.insert(
                    key.clone(),
                    crate::state::SiteContainer {
                        name,
                        properties: props,
                    },
                );
            }
        }
        s.last_modified = now_rfc3339();
    }
    // A container change is a config change: App Service restarts the slot.
    crate::runtime::restart(&ctx.shared, &ctx.name, &ctx.slot);
    let state = lock(&ctx.shared.state);
    let app = &state.apps[&ctx.name];
    match app
        .slot(&ctx.slot)
        .and_then(|s| s.site_containers.get(&key))
    {
        Some(c) => json(StatusCode::OK, &container_json(app, &ctx.slot, c)),
        None => StatusCode::OK.into_response(),
    }
}

/// `POST host/default/listkeys`: the Functions host's keys (function apps only). They are secrets:
/// answered here and nowhere else (not in snapshots, logs or `Debug`).
pub(super) async fn list_host_keys(ctx: Ctx) -> Response {
    let state = lock(&ctx.shared.state);
    let app = &state.apps[&ctx.name];
    let Some(keys) = app
        .slot(&ctx.slot)
        .and_then(|s| s.host_keys.as_ref())
        .filter(|_| app.function_app)
    else {
        return error_json(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("The site '{}' is not a function app.", app.name),
        );
    };
    json(
        StatusCode::OK,
        &serde_json::json!({
            "masterKey": keys.master.expose(),
            "functionKeys": {"default": keys.default.expose()},
            "systemKeys": {},
        }),
    )
}
