//! Checks on an environment's `connectionStrings:`: one name once (App Service compares names without
//! case), a value or a secret but not both, a secret only where the environment names a vault, and a
//! delivery that reaches the app.

use std::collections::BTreeMap;

use super::Checker;
use crate::model::{Delivery, Environment, ReleaseConfig};
use crate::source::join_key;

/// Checks every environment's connection strings.
pub(crate) fn check_connection_strings(config: &ReleaseConfig, c: &mut Checker<'_>) {
    for (env_name, environment) in &config.environments {
        let base = join_key(
            &join_key("environments", env_name.as_str()),
            "connectionStrings",
        );
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        for (name, cs) in &environment.connection_strings {
            let path = join_key(&base, name.as_str());
            if let Some(first) = seen.insert(name.as_str().to_ascii_lowercase(), name.as_str()) {
                c.error_key(
                    &path,
                    "connection-string-twice",
                    format!(
                        "connection string `{name}` is declared twice: App Service compares names \
                         without case, so `{first}` and `{name}` are one connection string"
                    ),
                    format!("keep one of `{first}` and `{name}`"),
                );
            }
            match (&cs.value, &cs.secret) {
                (Some(_), Some(_)) => c.error_key(
                    &format!("{path}.secret"),
                    "connection-string-value-and-secret",
                    format!("connection string `{name}` has both `value` and `secret`"),
                    "keep `value` for text written in release.yml, or `secret` for a Key Vault \
                     secret, not both"
                        .into(),
                ),
                (None, None) => c.error_key(
                    &path,
                    "connection-string-without-value",
                    format!("connection string `{name}` has neither `value` nor `secret`"),
                    "add `value: ...`, or `secret: <secret-name>` for a secret of the \
                     environment's Key Vault"
                        .into(),
                ),
                _ => {}
            }
            if let Some(secret) = &cs.secret
                && environment.secrets.is_none()
            {
                c.error(
                    &format!("{path}.secret"),
                    "connection-string-secret-without-vault",
                    format!(
                        "connection string `{name}` takes secret `{secret}`, but environment \
                         `{env_name}` names no Key Vault"
                    ),
                    format!(
                        "add `secrets: {{vault: <vault-name>}}` to environment `{env_name}`, \
                         naming the vault that holds `{}`",
                        secret.name()
                    ),
                );
            }
            check_delivery(environment, &path, name.as_str(), cs, c);
        }
    }
}

/// A connection string's secret is written to the slot, so its delivery must be one that does.
fn check_delivery(
    environment: &Environment,
    path: &str,
    name: &str,
    cs: &crate::connection_strings::ConnectionString,
    c: &mut Checker<'_>,
) {
    let delivery_path = format!("{path}.delivery");
    if cs.delivery.is_some() && cs.secret.is_none() {
        c.error_key(
            &delivery_path,
            "delivery-without-secret",
            format!("connection string `{name}` has a `delivery` but no `secret`"),
            "`delivery` says how a Key Vault secret reaches the app; remove it, or give `secret:`"
                .into(),
        );
        return;
    }
    if cs.secret.is_none() {
        return;
    }
    let default = environment
        .secrets
        .as_ref()
        .map_or(Delivery::default(), |s| s.delivery);
    if cs.delivery.unwrap_or(default) != Delivery::PipelineVariable {
        return;
    }
    let (at, why) = if cs.delivery.is_some() {
        (
            delivery_path,
            "its `delivery` is `pipelineVariable`".to_owned(),
        )
    } else {
        (
            format!("{path}.secret"),
            "it takes the environment's `secrets.delivery`, `pipelineVariable`".to_owned(),
        )
    };
    c.error(
        &at,
        "connection-string-pipeline-variable",
        format!(
            "connection string `{name}` would never reach the app: {why}, which sets a pipeline \
             variable only"
        ),
        "give the connection string `delivery: keyVaultReference` (the app reads the vault) or \
         `delivery: value` (the task writes the value)"
            .into(),
    );
}
