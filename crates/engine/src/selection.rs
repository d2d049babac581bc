//! Secrets taken in bulk (`secrets.select`): the vault's names are listed once per run, read-only and
//! before any stage plans, and turned into ordinary secrets of their environment, so the planner, the
//! travelling-settings rule, masking and delivery treat them like the ones `secrets.map` names.
//!
//! What the listing left out (disabled, expired) and any clash of names stays with the environment: the
//! plan shows the first, and the stage's preflight fails on the second, naming both secrets.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use slot_release_pipelines::Log;
use tokio_util::sync::CancellationToken;

use crate::port::Port;
use crate::spec::{ReleaseSpec, SecretDelivery, SecretSpec};

/// How an environment takes secrets in bulk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSelection {
    /// Only names starting with this (compared without case, as Key Vault does); `None` takes all.
    pub prefix: Option<String>,
    /// Cut the prefix off before `names` applies.
    pub strip_prefix: bool,
    /// Setting names in upper snake case (`db-password` → `DB_PASSWORD`) instead of as they are.
    pub upper_snake: bool,
    /// How each selected secret is delivered.
    pub delivery: SecretDelivery,
}

impl SecretSelection {
    /// The setting a listed secret feeds, or `None` when the secret is not selected (or its name is
    /// nothing but the stripped prefix).
    pub fn setting_for(&self, secret: &str) -> Option<String> {
        let rest = match &self.prefix {
            None => secret,
            Some(prefix) => {
                let head = secret.get(..prefix.len())?;
                if !head.eq_ignore_ascii_case(prefix) {
                    return None;
                }
                if self.strip_prefix {
                    &secret[prefix.len()..]
                } else {
                    secret
                }
            }
        };
        if rest.is_empty() {
            return None;
        }
        Some(if self.upper_snake {
            rest.to_ascii_uppercase().replace('-', "_")
        } else {
            rest.to_owned()
        })
    }
}

/// A secret the listing left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SkippedSecret {
    /// The secret's name.
    pub name: String,
    /// `disabled` or `expired`.
    pub reason: String,
}

/// A vault's secret names, without values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VaultListing {
    /// Enabled, unexpired secrets.
    pub names: Vec<String>,
    /// The others.
    pub skipped: Vec<SkippedSecret>,
}

/// What a selection took from its vault's listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selected {
    /// Setting → secret, for the secrets the selection added (`secrets.map` wins a setting).
    pub secrets: BTreeMap<String, String>,
    /// Matching secrets the listing left out.
    pub skipped: Vec<SkippedSecret>,
    /// Why the selection cannot be used (the vault could not be listed, two secrets or a secret and a
    /// plain setting want one setting): each fails the preflight of a stage that applies it.
    pub problems: Vec<String>,
}

/// Applies a listing to one environment's selection: the selected secrets join `env.secrets`.
pub fn apply(env: &mut crate::spec::EnvironmentSpec, listing: Result<&VaultListing, String>) {
    let Some(selection) = env.select.clone() else {
        return;
    };
    let vault = env.vault.clone().unwrap_or_default();
    let mut selected = Selected::default();
    let listing = match listing {
        Ok(listing) => listing,
        Err(err) => {
            selected.problems.push(format!(
                "the secrets `select` takes could not be listed from vault {vault}: {err}"
            ));
            env.selected = Some(selected);
            return;
        }
    };
    let mapped: Vec<String> = env
        .secrets
        .values()
        .map(|s| s.secret.to_ascii_lowercase())
        .collect();
    // Setting name (case-folded, as App Service compares them) → the secret that claimed it.
    let mut claimed: BTreeMap<String, String> = BTreeMap::new();
    for secret in &listing.names {
        let Some(setting) = selection.setting_for(secret) else {
            continue;
        };
        // A secret `secrets.map` names is delivered as the map says, and a setting it names is its own.
        if mapped.contains(&secret.to_ascii_lowercase()) || env.secrets.contains_key(&setting) {
            continue;
        }
        if let Some(other) = claimed.insert(setting.to_ascii_lowercase(), secret.clone()) {
            selected.problems.push(format!(
                "secrets {other} and {secret} of vault {vault} both become setting {setting}; rename one, or map one of them under `secrets.map`"
            ));
            continue;
        }
        if let Some(plain) = env
            .settings
            .keys()
            .find(|k| k.eq_ignore_ascii_case(&setting))
        {
            selected.problems.push(format!(
                "secret {secret} of vault {vault} becomes setting {setting}, which `settings` sets too ({plain}); rename the secret, narrow `select`, or remove the plain setting"
            ));
            continue;
        }
        selected.secrets.insert(setting, secret.clone());
    }
    selected.skipped = listing
        .skipped
        .iter()
        .filter(|s| selection.setting_for(&s.name).is_some())
        .cloned()
        .collect();
    for (setting, secret) in &selected.secrets {
        env.secrets.insert(
            setting.clone(),
            SecretSpec {
                secret: secret.clone(),
                delivery: selection.delivery,
            },
        );
    }
    env.selected = Some(selected);
}

/// Lists each vault an environment selects from (once per vault, names only) and applies the listings
/// to every environment, warning about each selected secret that was left out. A vault that cannot be
/// listed becomes a problem of the environments that select from it, not a failure here: only a stage
/// that applies one of them needs it.
pub async fn select_secrets(
    port: &dyn Port,
    spec: &ReleaseSpec,
    log: &Log,
    cancel: &CancellationToken,
) -> ReleaseSpec {
    let mut specs = select_secrets_in(port, &[spec], log, cancel).await;
    specs.remove(0)
}

/// [`select_secrets`] for several renderings of the config (a rollback's own and its target
/// release's): they share the listings, so a vault is listed once per run however many select from
/// it, and a skipped secret is warned about once per environment.
pub async fn select_secrets_in(
    port: &dyn Port,
    specs: &[&ReleaseSpec],
    log: &Log,
    cancel: &CancellationToken,
) -> Vec<ReleaseSpec> {
    let mut listings: BTreeMap<String, Result<VaultListing, String>> = BTreeMap::new();
    for env in specs.iter().flat_map(|s| s.environments.values()) {
        let (Some(_), Some(vault)) = (&env.select, &env.vault) else {
            continue;
        };
        if !listings.contains_key(vault) {
            let listing = port
                .list_secret_names(vault, cancel)
                .await
                .map_err(|err| crate::error::chain(&err).join(": "));
            listings.insert(vault.clone(), listing);
        }
    }
    let mut warned = std::collections::BTreeSet::new();
    let mut selected = Vec::with_capacity(specs.len());
    for spec in specs {
        let mut spec = (*spec).clone();
        for (name, env) in &mut spec.environments {
            let Some(vault) = env.vault.clone() else {
                continue;
            };
            let Some(listing) = listings.get(&vault) else {
                continue;
            };
            apply(env, listing.as_ref().map_err(String::clone));
            for skipped in env.selected.iter().flat_map(|s| &s.skipped) {
                if warned.insert((name.clone(), skipped.name.clone())) {
                    log.warning(&format!(
                        "Environment {name}: secret {} of vault {vault} is {} and is not delivered",
                        skipped.name, skipped.reason
                    ));
                }
            }
        }
        selected.push(spec);
    }
    selected
}
