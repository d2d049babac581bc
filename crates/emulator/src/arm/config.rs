//! Configuration routes of a site or slot: app settings, connection strings, sticky setting names,
//! site config and metadata.

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use axum::response::Response;

use super::route::Ctx;
use super::{not_found, resource_id};
use crate::lock;
use crate::platform::{ConnectionString, ConnectionStringType};
use crate::server::{error_json, json};
use crate::state::{App, PRODUCTION, now_rfc3339};

pub(crate) fn config_resource(
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

pub(crate) fn merge(
    target: &mut serde_json::Map<String, serde_json::Value>,
    patch: &serde_json::Map<String, serde_json::Value>,
) {
    for (k, v) in patch {
        target.insert(k.clone(), v.clone());
    }
}

/// `POST config/appsettings/list`.
pub(super) async fn list_app_settings(ctx: Ctx) -> Response {
    let Ctx {
        shared, name, slot, ..
    } = ctx;

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

/// `PUT config/appsettings`: replaces every setting and restarts the app.
pub(super) async fn put_app_settings(ctx: Ctx) -> Response {
    let Ctx {
        shared,
        name,
        rg,
        slot,
        body,
        ..
    } = ctx;

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
    let properties = serde_json::to_value(&settings).unwrap_or_default();
    replace_slot_config((shared, name, rg, slot), "appsettings", properties, |s| {
        s.app_settings = settings
    })
}

/// The parts of a request a whole-map config PUT needs: the emulator, the app, its resource group, the slot.
type Parts = (std::sync::Arc<crate::Shared>, String, String, String);

/// A PUT that replaces one of a slot's config maps (app settings, connection strings): stores it, answers
/// with the config resource, and restarts the app, as App Service does when that map changes.
fn replace_slot_config(
    (shared, name, rg, slot): Parts,
    kind: &str,
    properties: serde_json::Value,
    store: impl FnOnce(&mut crate::state::Slot),
) -> Response {
    let resp = {
        let mut state = lock(&shared.state);
        let Some(app) = state.apps.get_mut(&name) else {
            return not_found("Microsoft.Web/sites", &name, &rg);
        };
        if let Some(s) = app.slot_mut(&slot) {
            store(s);
            s.last_modified = now_rfc3339();
        }
        config_resource(app, &slot, kind, properties)
    };
    crate::runtime::restart(&shared, &name, &slot);
    json(StatusCode::OK, &resp)
}

/// `GET`/`PUT config/slotConfigNames`: one set for the whole app.
pub(super) async fn slot_config_names(ctx: Ctx) -> Response {
    let Ctx {
        shared,
        method,
        name,
        rg,
        body,
        ..
    } = ctx;

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

/// The site config keys whose change restarts the app (its stack and startup command, and how its
/// image is pulled, which App Service applies by pulling again).
const STARTUP_KEYS: &[&str] = &[
    "acrUseManagedIdentityCreds",
    "acrUserManagedIdentityID",
    "linuxFxVersion",
    "windowsFxVersion",
    "appCommandLine",
    "netFrameworkVersion",
    "pythonVersion",
    "nodeVersion",
    "phpVersion",
    "javaVersion",
    "javaContainer",
    "javaContainerVersion",
];

/// `GET`/`PUT`/`PATCH config/web` (PUT and PATCH both merge; a stack change restarts the app;
/// values are validated as ARM validates them, and a refused body changes nothing).
pub(super) async fn config_web(ctx: Ctx) -> Response {
    let Ctx {
        shared,
        method,
        name,
        rg,
        slot,
        body,
        ..
    } = ctx;

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
            if let Err(refusal) = super::site_config::validate(props) {
                return *refusal;
            }
            let props = &super::site_config::normalise(props);
            let before: Vec<Option<serde_json::Value>> = STARTUP_KEYS
                .iter()
                .map(|k| s.site_config.get(*k).cloned())
                .collect();
            // PUT and PATCH both merge: properties absent from the body keep their value,
            // which is what App Service does for config/web.
            merge(&mut s.site_config, props);
            s.last_modified = now_rfc3339();
            let after: Vec<Option<serde_json::Value>> = STARTUP_KEYS
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

/// `POST config/metadata/list` answers the slot's metadata; `PUT config/metadata` replaces it, as
/// `PUT config/appsettings` replaces the settings.
pub(super) async fn metadata(ctx: Ctx) -> Response {
    let Ctx {
        shared,
        method,
        body,
        name,
        slot,
        ..
    } = ctx;
    let mut state = lock(&shared.state);
    let Some(app) = state.apps.get_mut(&name) else {
        return not_found("Microsoft.Web/sites", &name, "");
    };
    let Some(s) = app.slot_mut(&slot) else {
        return not_found("Microsoft.Web/sites/slots", &slot, "");
    };
    if method == Method::PUT {
        let Some(props) = body.get("properties").and_then(|p| p.as_object()) else {
            return error_json(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "The request body must contain 'properties' with the metadata.",
            );
        };
        s.metadata = props
            .iter()
            .map(|(k, v)| {
                let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                (k.clone(), text)
            })
            .collect();
        s.last_modified = now_rfc3339();
    }
    let props = serde_json::to_value(&s.metadata).unwrap_or_default();
    let app = &state.apps[&name];
    json(
        StatusCode::OK,
        &config_resource(app, &slot, "metadata", props),
    )
}

fn connection_strings_json(cs: &BTreeMap<String, ConnectionString>) -> serde_json::Value {
    serde_json::to_value(cs).unwrap_or_default()
}

/// Reads a `ConnectionStringDictionary` body: every entry needs a `value` and a `type` of the spec's
/// enum (as App Service reads enums: any case, or the ordinal).
fn read_connection_strings(
    body: &serde_json::Value,
) -> Result<BTreeMap<String, ConnectionString>, String> {
    let Some(props) = body.get("properties").and_then(|p| p.as_object()) else {
        return Err(
            "The request body must contain 'properties' with the connection strings.".into(),
        );
    };
    let mut out = BTreeMap::new();
    for (name, entry) in props {
        let value = match entry.get("value") {
            Some(serde_json::Value::String(v)) => v.clone(),
            Some(serde_json::Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        let kind = entry
            .get("type")
            .and_then(ConnectionStringType::parse)
            .ok_or_else(|| format!("The parameter properties.{name}.type has an invalid value."))?;
        out.insert(name.clone(), ConnectionString { value, kind });
    }
    Ok(out)
}

/// `POST config/connectionstrings/list`.
pub(super) async fn list_connection_strings(ctx: Ctx) -> Response {
    let state = lock(&ctx.shared.state);
    let app = &state.apps[&ctx.name];
    let cs = app
        .slot(&ctx.slot)
        .map(|s| connection_strings_json(&s.connection_strings))
        .unwrap_or_default();
    json(
        StatusCode::OK,
        &config_resource(app, &ctx.slot, "connectionstrings", cs),
    )
}

/// `PUT config/connectionstrings`: replaces every connection string and restarts the app, as
/// `PUT config/appsettings` does.
pub(super) async fn put_connection_strings(ctx: Ctx) -> Response {
    let Ctx {
        shared,
        name,
        rg,
        slot,
        body,
        ..
    } = ctx;
    let cs = match read_connection_strings(&body) {
        Ok(cs) => cs,
        Err(message) => return error_json(StatusCode::BAD_REQUEST, "BadRequest", &message),
    };
    let properties = connection_strings_json(&cs);
    replace_slot_config(
        (shared, name, rg, slot),
        "connectionstrings",
        properties,
        |s| s.connection_strings = cs,
    )
}
