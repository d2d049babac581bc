//! Smaller App Service calls that official clients make around a release: `config/metadata`
//! (azure-arm-rest reads and writes `CURRENT_STACK` there), `slotsdiffs` (what a swap would
//! change, as the portal's swap preview shows) and `publishxml` (the publish profile, which
//! `az webapp show` and azure-arm-rest's `getPublishingProfileWithSecrets` read).

use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::arm::{config_resource, host_names, not_found, resource_id};
use crate::server::{error_json, json};
use crate::state::{SWAPPABLE_CONFIG, now_rfc3339};
use crate::{Shared, lock};

/// `POST config/metadata/list` answers the slot's metadata; `PUT config/metadata` replaces it, as
/// `PUT config/appsettings` replaces the settings.
pub(crate) fn metadata(
    shared: &Shared,
    method: &Method,
    body: &serde_json::Value,
    name: &str,
    slot: &str,
) -> Response {
    let mut state = lock(&shared.state);
    let Some(app) = state.apps.get_mut(name) else {
        return not_found("Microsoft.Web/sites", name, "");
    };
    let Some(s) = app.slot_mut(slot) else {
        return not_found("Microsoft.Web/sites/slots", slot, "");
    };
    if *method == Method::PUT {
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
    let app = &state.apps[name];
    json(
        StatusCode::OK,
        &config_resource(app, slot, "metadata", props),
    )
}

fn text(v: Option<&serde_json::Value>) -> Option<String> {
    v.map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
}

/// `POST [slots/{slot}/]slotsdiffs` with `{"targetSlot"}`: one `SlotDifference` per non-sticky
/// setting and swappable stack setting whose value differs, i.e. what the swap would move.
pub(crate) fn slots_diffs(
    shared: &Shared,
    body: &serde_json::Value,
    name: &str,
    slot: &str,
    rg: &str,
) -> Response {
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
    let state = lock(&shared.state);
    let Some(app) = state.apps.get(name) else {
        return not_found("Microsoft.Web/sites", name, rg);
    };
    let (Some(src), Some(tgt)) = (app.slot(slot), app.slot(&target)) else {
        return not_found("Microsoft.Web/sites/slots", &format!("{name}/{target}"), rg);
    };
    let mut diffs: Vec<(&str, String, Option<String>, Option<String>)> = Vec::new();
    let names: std::collections::BTreeSet<&String> = src
        .app_settings
        .keys()
        .chain(tgt.app_settings.keys())
        .collect();
    for key in names {
        let sticky = app.is_sticky(key, &src.app_settings) || app.is_sticky(key, &tgt.app_settings);
        let (a, b) = (src.app_settings.get(key), tgt.app_settings.get(key));
        if !sticky && a != b {
            diffs.push(("AppSetting", key.clone(), a.cloned(), b.cloned()));
        }
    }
    for key in SWAPPABLE_CONFIG {
        let (a, b) = (
            text(src.site_config.get(*key)),
            text(tgt.site_config.get(*key)),
        );
        if a != b {
            diffs.push(("General", (*key).to_owned(), a, b));
        }
    }
    let base = resource_id(app, slot);
    let value: Vec<serde_json::Value> = diffs
        .into_iter()
        .enumerate()
        .map(|(i, (kind, setting, current, other))| {
            serde_json::json!({
                "id": format!("{base}/slotsdiffs/{i}"),
                "name": setting,
                "type": "Microsoft.Web/sites/slotsdiffs",
                "properties": {
                    "level": "Information",
                    "settingType": kind,
                    "diffRule": "SettingsWillBeSwapped",
                    "settingName": setting,
                    "valueInCurrentSlot": current.unwrap_or_default(),
                    "valueInTargetSlot": other.unwrap_or_default(),
                    "description": format!("The setting '{setting}' will be swapped."),
                }
            })
        })
        .collect();
    json(
        StatusCode::OK,
        &serde_json::json!({"value": value, "nextLink": null}),
    )
}

fn xml_attr(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// `POST publishxml`: the slot's publish profile (Web Deploy, FTP and Zip Deploy entries, as App
/// Service lists them), with the publishing credentials.
pub(crate) fn publish_xml(shared: &Shared, name: &str, slot: &str) -> Response {
    let state = lock(&shared.state);
    let Some(app) = state.apps.get(name) else {
        return not_found("Microsoft.Web/sites", name, "");
    };
    let (host, scm) = host_names(shared, app, slot);
    let user = xml_attr(&app.publishing_user(slot));
    let password = xml_attr(app.publishing_password.expose());
    let site = xml_attr(&app.name);
    let label = if slot == crate::state::PRODUCTION {
        site.clone()
    } else {
        format!("{site}__{}", xml_attr(slot))
    };
    let profile = |title: &str, method: &str, url: &str, extra: &str| {
        format!(
            "<publishProfile profileName=\"{label} - {title}\" publishMethod=\"{method}\" publishUrl=\"{url}\"{extra} userName=\"{user}\" userPWD=\"{password}\" destinationAppUrl=\"https://{host}\" SQLServerDBConnectionString=\"\" mySQLDBConnectionString=\"\" hostingProviderForumLink=\"\" controlPanelLink=\"\" webSystem=\"WebSites\"><databases /></publishProfile>"
        )
    };
    let body = format!(
        "<publishData>{}{}{}</publishData>",
        profile(
            "Web Deploy",
            "MSDeploy",
            &scm,
            &format!(" msdeploySite=\"{label}\"")
        ),
        profile(
            "FTP",
            "FTP",
            &format!("ftps://{scm}/site/wwwroot"),
            " ftpPassiveMode=\"True\""
        ),
        profile("Zip Deploy", "ZipDeploy", &scm, ""),
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/xml")],
        body,
    )
        .into_response()
}
