//! Names the config owns: a setting the last release of this config set on a slot and this one no longer
//! declares is removed, so it cannot come back into production with a swap; names it never owned (one
//! added by hand in the portal) are left alone.
//!
//! A swap exchanges the travelling names of the two slots, so what one slot's release owned may sit in the
//! other slot afterwards: each slot's candidates include the other's owned names that are not sticky, and
//! a name taken out stays owned (retired) while any slot still holds it, so the next release cleans it up.

use super::*;
use crate::journal::Owned;

/// A setting a step removes, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingRemoval {
    /// Setting name. Its value is not shown: the config no longer says whether it was a secret.
    pub name: String,
    /// Why it goes: which release owned it.
    pub why: String,
    /// Whether the name also leaves the sticky list (no other slot holds it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unsticks: bool,
}

/// The names a plan records as owned on its slot once its stage runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ownership {
    /// The slot.
    #[schemars(with = "String")]
    pub slot: SlotName,
    /// App setting names: the declared ones and those taken out that a slot still holds.
    pub settings: BTreeSet<String>,
    /// Connection string names, the same way.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub connection_strings: BTreeSet<String>,
}

impl Ownership {
    /// As the journal keeps it, recorded by `release`.
    pub fn to_owned_names(&self, release: &str) -> Owned {
        Owned {
            release: release.to_owned(),
            settings: self.settings.clone(),
            connection_strings: self.connection_strings.clone(),
        }
    }
}

/// The app setting names an environment declares (Key Vault ones included; a pipeline-variable secret is
/// not an app setting). `None` when the names are not known: a `secrets.select` not listed yet.
pub(super) fn declared_settings(env: &EnvironmentSpec) -> Option<BTreeSet<String>> {
    if env.select.is_some() && env.selected.is_none() {
        return None;
    }
    Some(
        env.settings
            .keys()
            .cloned()
            .chain(
                env.secrets
                    .iter()
                    .filter(|(_, s)| s.delivery != SecretDelivery::PipelineVariable)
                    .map(|(name, _)| name.clone()),
            )
            .collect(),
    )
}

/// Which of the names owned on `slot` (and, not sticky, on the swap `partner`) go from `slot`, and the
/// ownership the stage records. `sticky_only`: only sticky names are removed (production before its swap:
/// a travelling one leaves with the swap and is removed from the other slot by the next release).
#[allow(clippy::too_many_arguments)]
pub(super) fn setting_removals(
    env_name: &str,
    env: &EnvironmentSpec,
    state: &LiveState,
    journal: &JournalTags,
    slot: &SlotName,
    partner: Option<&SlotName>,
    sticky_only: bool,
    plan: &mut Plan,
) -> Option<Step> {
    let Some(declared) = declared_settings(env) else {
        plan.preflight.push(check(
            "owned-settings",
            true,
            "secrets.select was not listed from the vault, so the declared names are unknown: no setting is removed",
        ));
        return None;
    };
    let mut ownership = Ownership {
        slot: slot.clone(),
        settings: declared.clone(),
        connection_strings: BTreeSet::new(),
    };
    let Some(owned) = &journal.owned else {
        if journal.release.is_some() {
            // Said once, as a passing check: the release goes on, it only cannot clean up yet.
            plan.preflight.push(check(
                "owned-settings",
                true,
                "the journal comes from a version of Slot Release that did not record which settings a release owns: none is removed this time; this release records them",
            ));
        }
        plan.owns = Some(ownership);
        return None;
    };
    let mut candidates: BTreeMap<&str, &str> = BTreeMap::new();
    if let Some(own) = owned.get(slot) {
        candidates.extend(
            own.settings
                .iter()
                .map(|n| (n.as_str(), own.release.as_str())),
        );
    }
    if let Some(own) = partner.and_then(|p| owned.get(p)) {
        for name in own
            .settings
            .iter()
            .filter(|n| !state.sticky_settings.contains(*n))
        {
            candidates.entry(name).or_insert(own.release.as_str());
        }
    }
    let live = state.slot(slot);
    let mut removals = Vec::new();
    for (name, release) in candidates {
        if declared.contains(name) {
            continue;
        }
        let held_elsewhere = state
            .slots
            .iter()
            .any(|(s, st)| s != slot && st.settings.contains_key(name));
        let here = live.and_then(|s| s.settings.get(name));
        let sticky = state.sticky_settings.contains(name);
        let removed = here.is_some() && (!sticky_only || sticky);
        if held_elsewhere || (here.is_some() && !removed) {
            ownership.settings.insert(name.to_owned());
        }
        if !removed {
            continue;
        }
        removals.push(SettingRemoval {
            name: name.to_owned(),
            why: format!(
                "owned by release {release}, no longer in the config of environment {env_name}"
            ),
            unsticks: sticky && !held_elsewhere,
        });
    }
    plan.owns = Some(ownership);
    (!removals.is_empty()).then(|| {
        step(
            Action::RemoveSettings {
                slot: slot.clone(),
                removals,
            },
            if slot.is_production() {
                "sticky names the config no longer declares stay in production unless removed"
            } else {
                "names the config no longer declares are removed before the deploy, so the swap cannot carry them into production"
            },
        )
    })
}
