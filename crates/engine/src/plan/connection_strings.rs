//! Connection strings per environment: the ones that differ from the slot's, as one
//! `SetConnectionStrings` step, sticky or travelling by the rule settings follow
//! ([`ReleaseSpec::travelling_connection_strings`]).
//!
//! A connection string's value is a secret for printing purposes, wherever it comes from: the plan names
//! it, its type and where its value comes from (release.yml, or a Key Vault secret), never the value. The
//! step carries what it writes in a field the plan's JSON and `Debug` leave out, so what runs is still
//! exactly what the plan holds.

use super::*;
use crate::spec::ConnectionValue;
use steps::Written;

/// A value a step writes but never shows: left out of the plan's JSON and of `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Concealed(String);

impl Concealed {
    /// The value, for the one call that writes it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Concealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<concealed>")
    }
}

/// One connection string a step sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionStringChange {
    /// Its name.
    pub name: String,
    /// Its type after the step, as ARM spells it.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its type now, when the slot has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_before: Option<String>,
    /// Its value now, when the slot has it: only that there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Shown>,
    /// Where its value comes from after the step (a Key Vault reference is shown, as it holds no
    /// secret; any other value only by its origin).
    pub after: Shown,
    /// Whether the step also marks it sticky (it was not before).
    pub becomes_sticky: bool,
    /// Whether the step makes it travel with the content in swaps (it was sticky before).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub becomes_travelling: bool,
    /// The text written: the value from release.yml, or the Key Vault reference. `None` for a secret
    /// delivered by value, which the step takes from the secrets its stage pulled.
    #[serde(skip)]
    pub write: Option<Concealed>,
}

/// The key a pulled secret is kept under for a connection string, apart from settings' (whose names
/// cannot hold a `/`).
pub fn connection_string_secret_key(name: &str) -> String {
    format!("{CONNECTION_STRING_KEY}{name}")
}

const CONNECTION_STRING_KEY: &str = "connectionStrings/";

/// Whether a key of the pulled secrets is a connection string's ([`connection_string_secret_key`]).
pub fn is_connection_string_key(key: &str) -> bool {
    key.starts_with(CONNECTION_STRING_KEY)
}

/// The Key Vault secrets an environment's connection strings take, as pulls.
pub(super) fn connection_string_pulls(env: &EnvironmentSpec) -> Vec<SecretPull> {
    env.connection_strings
        .iter()
        .filter_map(|(name, cs)| match &cs.value {
            ConnectionValue::Secret(secret) => Some(SecretPull {
                setting: name.clone(),
                secret: secret.secret.clone(),
                delivery: secret.delivery,
                selected: false,
                connection_string: true,
            }),
            ConnectionValue::Text(_) => None,
        })
        .collect()
}

/// The step that makes `slot`'s connection strings what `env` declares (only those `written` includes,
/// only those that differ or change stickiness), if any.
pub(super) fn connection_string_changes(
    env: &EnvironmentSpec,
    state: &LiveState,
    slot: &SlotName,
    written: Written<'_>,
) -> Option<Step> {
    let live = state.slot(slot);
    let vault = env.vault.as_deref().unwrap_or("vault");
    let mut changes = Vec::new();
    for (name, cs) in &env.connection_strings {
        let (after, write) = match &cs.value {
            ConnectionValue::Text(text) => (
                Shown::Secret("value from release.yml".into()),
                Some(Concealed(text.clone())),
            ),
            ConnectionValue::Secret(secret) => match secret.delivery {
                SecretDelivery::Value => {
                    (Shown::Secret(format!("{vault}/{}", secret.secret)), None)
                }
                // The config refuses a pipeline variable here; a reference is what reaches the app.
                SecretDelivery::KeyVaultReference | SecretDelivery::PipelineVariable => {
                    let reference = key_vault_reference(vault, &secret.secret);
                    (Shown::Plain(reference.clone()), Some(Concealed(reference)))
                }
            },
        };
        if !written.includes(name, write.is_none()) {
            continue;
        }
        let now = live.and_then(|s| s.connection_strings.get(name));
        // A secret delivered as a value cannot be compared without reading it, so it is always written.
        let same = now.is_some_and(|now| {
            now.kind == cs.kind && write.as_ref().is_some_and(|w| w.expose() == now.value)
        });
        let sticky_now = state.sticky_connection_strings.contains(name);
        let travels = written.travelling().contains(name);
        let becomes_sticky = !travels && !sticky_now;
        let becomes_travelling = travels && sticky_now;
        if same && !becomes_sticky && !becomes_travelling {
            continue;
        }
        changes.push(ConnectionStringChange {
            name: name.clone(),
            kind: cs.kind.clone(),
            type_before: now.map(|n| n.kind.clone()),
            before: now.map(|_| Shown::Secret("current value".into())),
            after,
            becomes_sticky,
            becomes_travelling,
            write,
        });
    }
    (!changes.is_empty()).then(|| {
        step(
            Action::SetConnectionStrings {
                slot: slot.to_owned(),
                changes,
            },
            match written {
                Written::All(t) if !t.is_empty() => "only what differs; names declared alike in production travel with the swap, the others are sticky so a swap never carries one slot's connection string into another",
                Written::TravellingOnly(_) => "these are declared alike in production and reach it with the swap itself",
                _ if slot.is_production() => "only what differs, written as sticky so a swap never carries them away; App Service restarts production when its connection strings change",
                _ => "connection strings written as sticky so a swap never carries one slot's into another; only what differs",
            },
        )
    })
}

/// Refuses a `sticky: false` the rule cannot honour, in the stages that write connection strings.
pub(super) fn sticky_preflight(spec: &ReleaseSpec, plan: &mut Plan) {
    let conflicts = spec.connection_string_sticky_conflicts();
    if !conflicts.is_empty() {
        plan.preflight.push(check(
            "connection-string-sticky",
            false,
            conflicts.join("; "),
        ));
    }
}
