//! Names the config owns: a setting or connection string the last release of this config set on a slot
//! and this one no longer declares is removed, so it cannot come back into production with a swap; names
//! it never owned (one added by hand in the portal) are left alone.
//!
//! A swap exchanges the travelling names of the two slots, so what one slot's release owned may sit in the
//! other slot afterwards: each slot's candidates include the other's owned names that are not sticky, and
//! a name taken out stays owned (retired) while any slot still holds it, so the next release cleans it up.

use super::*;
use crate::journal::Owned;

/// A setting or connection string a step removes, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingRemoval {
    /// Its name. Its value is not shown: the config no longer says whether it was a secret.
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

/// The two kinds of names a release owns on a slot; each is removed and kept sticky the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Settings,
    ConnectionStrings,
}

impl Kind {
    fn owned(self, own: &Owned) -> &BTreeSet<String> {
        match self {
            Kind::Settings => &own.settings,
            Kind::ConnectionStrings => &own.connection_strings,
        }
    }

    fn sticky(self, state: &LiveState) -> &BTreeSet<String> {
        match self {
            Kind::Settings => &state.sticky_settings,
            Kind::ConnectionStrings => &state.sticky_connection_strings,
        }
    }

    fn held(self, slot: &crate::state::SlotState, name: &str) -> bool {
        match self {
            Kind::Settings => slot.settings.contains_key(name),
            Kind::ConnectionStrings => slot.connection_strings.contains_key(name),
        }
    }

    fn ownership(self, ownership: &mut Ownership) -> &mut BTreeSet<String> {
        match self {
            Kind::Settings => &mut ownership.settings,
            Kind::ConnectionStrings => &mut ownership.connection_strings,
        }
    }
}

/// The removal steps of `slot` (settings first, then connection strings): which of the names owned on
/// `slot` (and, not sticky, on the swap `partner`) go from `slot`, and the ownership the stage records.
/// `sticky_only`: only sticky names are removed (production before its swap: a travelling one leaves with
/// the swap and is removed from the other slot by the next release).
#[allow(clippy::too_many_arguments)]
pub(super) fn owned_removals(
    env_name: &str,
    env: &EnvironmentSpec,
    state: &LiveState,
    journal: &JournalTags,
    slot: &SlotName,
    partner: Option<&SlotName>,
    sticky_only: bool,
    plan: &mut Plan,
) -> Vec<Step> {
    let Some(declared) = declared_settings(env) else {
        plan.preflight.push(check(
            "owned-settings",
            true,
            "secrets.select was not listed from the vault, so the declared names are unknown: no setting is removed",
        ));
        return Vec::new();
    };
    let mut ownership = Ownership {
        slot: slot.clone(),
        settings: declared,
        connection_strings: env.connection_strings.keys().cloned().collect(),
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
        return Vec::new();
    };
    let mut steps = Vec::new();
    for kind in [Kind::Settings, Kind::ConnectionStrings] {
        let removals = removals(
            kind,
            env_name,
            state,
            owned,
            slot,
            partner,
            sticky_only,
            &mut ownership,
        );
        if removals.is_empty() {
            continue;
        }
        let slot = slot.clone();
        let action = match kind {
            Kind::Settings => Action::RemoveSettings { slot, removals },
            Kind::ConnectionStrings => Action::RemoveConnectionStrings { slot, removals },
        };
        steps.push(step(
            action,
            if sticky_only {
                "sticky names the config no longer declares stay in production unless removed"
            } else {
                "names the config no longer declares are removed before the deploy, so the swap cannot carry them into production"
            },
        ));
    }
    plan.owns = Some(ownership);
    steps
}

/// The names of one kind that go from `slot`; a name taken out stays in `ownership` while a slot holds it.
#[allow(clippy::too_many_arguments)]
fn removals(
    kind: Kind,
    env_name: &str,
    state: &LiveState,
    owned: &BTreeMap<SlotName, Owned>,
    slot: &SlotName,
    partner: Option<&SlotName>,
    sticky_only: bool,
    ownership: &mut Ownership,
) -> Vec<SettingRemoval> {
    let sticky_names = kind.sticky(state);
    let mut candidates: BTreeMap<&str, &str> = BTreeMap::new();
    if let Some(own) = owned.get(slot) {
        candidates.extend(
            kind.owned(own)
                .iter()
                .map(|n| (n.as_str(), own.release.as_str())),
        );
    }
    if let Some(own) = partner.and_then(|p| owned.get(p)) {
        for name in kind
            .owned(own)
            .iter()
            .filter(|n| !sticky_names.contains(*n))
        {
            candidates.entry(name).or_insert(own.release.as_str());
        }
    }
    let live = state.slot(slot);
    let mut removals = Vec::new();
    for (name, release) in candidates {
        if kind.ownership(ownership).contains(name) {
            continue;
        }
        let held_elsewhere = state
            .slots
            .iter()
            .any(|(s, st)| s != slot && kind.held(st, name));
        let here = live.is_some_and(|s| kind.held(s, name));
        let sticky = sticky_names.contains(name);
        let removed = here && (!sticky_only || sticky);
        if held_elsewhere || (here && !removed) {
            kind.ownership(ownership).insert(name.to_owned());
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
    removals
}
