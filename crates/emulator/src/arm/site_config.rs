//! Site config as ARM validates and swaps it: the enums and types `config/web` (and a site's
//! `properties.siteConfig`) must respect, and which keys follow the content on a swap and which
//! stay with the slot (the "what gets swapped" lists of the deployment slots docs).

use axum::http::StatusCode;
use axum::response::Response;

use crate::server::error_json;

/// `SupportedTlsVersions`, the enum of `minTlsVersion` and `scmMinTlsVersion`.
const TLS_VERSIONS: &[&str] = &["1.0", "1.1", "1.2", "1.3"];
/// `FtpsState`.
const FTPS_STATES: &[&str] = &["AllAllowed", "FtpsOnly", "Disabled"];

/// Keys the spec types as booleans.
const BOOLEANS: &[&str] = &[
    "alwaysOn",
    "http20Enabled",
    "acrUseManagedIdentityCreds",
    "webSocketsEnabled",
    "use32BitWorkerProcess",
    "requestTracingEnabled",
    "remoteDebuggingEnabled",
    "httpLoggingEnabled",
    "detailedErrorLoggingEnabled",
    "autoHealEnabled",
    "vnetRouteAllEnabled",
    "localMySqlEnabled",
    "functionsRuntimeScaleMonitoringEnabled",
];

/// Keys the spec types as strings.
const STRINGS: &[&str] = &[
    "linuxFxVersion",
    "windowsFxVersion",
    "netFrameworkVersion",
    "pythonVersion",
    "nodeVersion",
    "phpVersion",
    "powerShellVersion",
    "javaVersion",
    "javaContainer",
    "javaContainerVersion",
    "appCommandLine",
    "healthCheckPath",
    "acrUserManagedIdentityID",
    "autoSwapSlotName",
];

/// Site config keys that move with a swap: the stack and its version, 32/64-bit, web sockets,
/// handler and path mappings. Everything else stays with the slot.
pub(crate) const SWAPPABLE: &[&str] = &[
    "linuxFxVersion",
    "windowsFxVersion",
    "appCommandLine",
    "netFrameworkVersion",
    "phpVersion",
    "pythonVersion",
    "nodeVersion",
    "powerShellVersion",
    "javaVersion",
    "javaContainer",
    "javaContainerVersion",
    "use32BitWorkerProcess",
    "webSocketsEnabled",
    "handlerMappings",
    "virtualApplications",
];

/// Slot-specific keys the docs mark as swappable again when every slot of the app has
/// `WEBSITE_OVERRIDE_PRESERVE_DEFAULT_STICKY_SLOT_SETTINGS` at `0` or `false`: TLS version, IP
/// restrictions, Always On, diagnostic logs and CORS.
pub(crate) const SWAPPABLE_WITH_OVERRIDE: &[&str] = &[
    "minTlsVersion",
    "scmMinTlsVersion",
    "ipSecurityRestrictions",
    "scmIpSecurityRestrictions",
    "alwaysOn",
    "httpLoggingEnabled",
    "detailedErrorLoggingEnabled",
    "requestTracingEnabled",
    "logsDirectorySizeLimit",
    "cors",
];

/// ARM's parameter names are the properties' C# names (`MinTlsVersion`).
fn pascal(key: &str) -> String {
    let mut chars = key.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

fn invalid(key: &str) -> Box<Response> {
    Box::new(error_json(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        &format!("The parameter {} has an invalid value.", pascal(key)),
    ))
}

/// Checks a site config patch as ARM does before it writes anything: enum values, then the
/// types of the known keys (`null` is accepted for every key).
pub(crate) fn validate(
    props: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), Box<Response>> {
    for (key, value) in props {
        if value.is_null() {
            continue;
        }
        let allowed = match key.as_str() {
            "minTlsVersion" | "scmMinTlsVersion" => Some(TLS_VERSIONS),
            "ftpsState" => Some(FTPS_STATES),
            _ => None,
        };
        if let Some(allowed) = allowed {
            // ARM reads enums case-insensitively.
            let ok = value
                .as_str()
                .is_some_and(|v| allowed.iter().any(|a| a.eq_ignore_ascii_case(v)));
            if !ok {
                return Err(invalid(key));
            }
        }
        if BOOLEANS.contains(&key.as_str()) && !value.is_boolean() {
            return Err(invalid(key));
        }
        if STRINGS.contains(&key.as_str()) && !value.is_string() {
            return Err(invalid(key));
        }
    }
    Ok(())
}

/// The patch with enum values in the spelling ARM answers with, whatever case they were sent in.
pub(crate) fn normalise(
    props: &serde_json::Map<String, serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    props
        .iter()
        .map(|(k, v)| {
            let canon = match (k.as_str(), v.as_str()) {
                ("ftpsState", Some(s)) => FTPS_STATES.iter().find(|a| a.eq_ignore_ascii_case(s)),
                _ => None,
            };
            let canon = canon.map(|a| serde_json::Value::from(*a));
            (k.clone(), canon.unwrap_or_else(|| v.clone()))
        })
        .collect()
}

/// A site's `properties.siteConfig`, if present, validated and normalised.
pub(crate) fn checked(
    config: Option<&serde_json::Value>,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, Box<Response>> {
    match config.and_then(|c| c.as_object()) {
        Some(cfg) => {
            validate(cfg)?;
            Ok(Some(normalise(cfg)))
        }
        None => Ok(None),
    }
}

/// Whether a slot's settings turn the default-sticky rules off
/// (`WEBSITE_OVERRIDE_PRESERVE_DEFAULT_STICKY_SLOT_SETTINGS` at `0` or `false`).
pub(crate) fn overrides_default_sticky(
    settings: &std::collections::BTreeMap<String, String>,
) -> bool {
    settings
        .get("WEBSITE_OVERRIDE_PRESERVE_DEFAULT_STICKY_SLOT_SETTINGS")
        .is_some_and(|v| v == "0" || v.eq_ignore_ascii_case("false"))
}

/// The site config keys a swap of two slots with these settings exchanges.
pub(crate) fn swapped_keys(
    a: &std::collections::BTreeMap<String, String>,
    b: &std::collections::BTreeMap<String, String>,
) -> Vec<&'static str> {
    let mut keys = SWAPPABLE.to_vec();
    if overrides_default_sticky(a) && overrides_default_sticky(b) {
        keys.extend_from_slice(SWAPPABLE_WITH_OVERRIDE);
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn enums_and_types_are_checked_and_nulls_pass() {
        assert!(validate(&map(serde_json::json!({"minTlsVersion": "1.3", "ftpsState": "ftpsonly", "alwaysOn": true, "healthCheckPath": null}))).is_ok());
        for bad in [
            serde_json::json!({"minTlsVersion": "1.4"}),
            serde_json::json!({"scmMinTlsVersion": 1.2}),
            serde_json::json!({"ftpsState": "Sometimes"}),
            serde_json::json!({"alwaysOn": "yes"}),
            serde_json::json!({"linuxFxVersion": 3}),
        ] {
            assert!(validate(&map(bad.clone())).is_err(), "{bad}");
        }
        let n = normalise(&map(
            serde_json::json!({"ftpsState": "ftpsonly", "healthCheckPath": null}),
        ));
        assert_eq!(
            serde_json::Value::Object(n),
            serde_json::json!({"ftpsState": "FtpsOnly", "healthCheckPath": null})
        );
    }
}
