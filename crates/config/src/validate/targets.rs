//! A fan-out's targets: names a pipeline matrix can carry, one entry per app, and waves that run in
//! order without a gap (a missing wave would leave the rings after it waiting on nothing).

use std::collections::{BTreeMap, BTreeSet};

use super::Checker;
use super::names::{app_name_problem, resource_group_problem};
use crate::model::ReleaseConfig;
use crate::source::join_index;

/// Azure Pipelines names a matrix job after its key and accepts only these characters there.
const MAX_TARGET_NAME: usize = 50;
/// More than this many concurrent writes from one job runs into ARM's per-subscription limits.
const MAX_PARALLEL: u32 = 20;

/// What is wrong with a target's name, or `None`.
fn target_name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > MAX_TARGET_NAME {
        return Some(format!(
            "target names are 1 to {MAX_TARGET_NAME} characters long"
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Some("target names start with a letter".into());
    }
    name.chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
        .map(|bad| {
            format!(
                "target names use only letters, digits and `_` (Azure Pipelines names a matrix job \
                 after them), not {}",
                if bad.is_control() {
                    format!("the control character U+{:04X}", u32::from(bad))
                } else {
                    format!("`{bad}`")
                }
            )
        })
}

pub(crate) fn check_targets(config: &ReleaseConfig, c: &mut Checker<'_>) {
    if config.targets.is_empty() {
        if config.fan_out.is_some() {
            c.error_key(
                "fanOut",
                "fan-out-without-targets",
                "`fanOut` says how several targets are released, but the config names no `targets`"
                    .into(),
                "add `targets:` (each with `name`, `app`, `resourceGroup` and `wave`), or remove \
                 `fanOut:`"
                    .into(),
            );
        }
    } else if let Some(fan_out) = &config.fan_out
        && !(1..=MAX_PARALLEL).contains(&fan_out.max_parallel)
    {
        c.error(
            "fanOut.maxParallel",
            "max-parallel-range",
            format!(
                "`maxParallel` is {}; it must be 1 to {MAX_PARALLEL}",
                fan_out.max_parallel
            ),
            "ARM limits the writes of one subscription; 4 (the default) suits most fan-outs".into(),
        );
    }
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    let mut apps: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for (index, target) in config.targets.iter().enumerate() {
        let base = join_index("targets", index);
        if let Some(problem) = target_name_problem(&target.name) {
            c.error(
                &format!("{base}.name"),
                "invalid-target-name",
                problem,
                "rename the target, e.g. `westeurope` or `tenant_contoso`".into(),
            );
        }
        if let Some(first) = names.insert(target.name.as_str(), index) {
            c.error(
                &format!("{base}.name"),
                "duplicate-target",
                format!(
                    "target `{}` is named twice (also targets[{first}])",
                    target.name
                ),
                "give each target its own name: `--target` and the pipeline matrix select by it"
                    .into(),
            );
        }
        let help = "Azure refuses such a name, and names are printed in the pipeline log: fix \
                    the name in release.yml (or the variable it uses)";
        if let Some(problem) = app_name_problem(&target.app) {
            c.error(
                &format!("{base}.app"),
                "invalid-app-name",
                problem,
                help.into(),
            );
        }
        if let Some(problem) = resource_group_problem(&target.resource_group) {
            c.error(
                &format!("{base}.resourceGroup"),
                "invalid-resource-group",
                problem,
                help.into(),
            );
        }
        if let Some(region) = &target.region
            && (region.is_empty() || !region.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            c.error(
                &format!("{base}.region"),
                "invalid-region",
                "region names use only letters and digits, e.g. `westeurope`".into(),
                "write the region as `az account list-locations -o table` names it".into(),
            );
        }
        // The same app twice would release it twice at once: its lock would refuse one of them.
        let subscription = target
            .subscription
            .clone()
            .or_else(|| config.app.subscription.clone())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let key = (
            subscription,
            target.resource_group.to_ascii_lowercase(),
            target.app.to_ascii_lowercase(),
        );
        if let Some(first) = apps.insert(key, index) {
            c.error(
                &format!("{base}.app"),
                "duplicate-target-app",
                format!(
                    "targets[{first}] and this target release the same app `{}` in `{}`",
                    target.app, target.resource_group
                ),
                "each target is a different app; remove one of them".into(),
            );
        }
    }
    check_waves(config, c);
}

/// Waves are numbered 0, 1, 2, … with every number used.
fn check_waves(config: &ReleaseConfig, c: &mut Checker<'_>) {
    let used: BTreeSet<u32> = config.targets.iter().map(|t| t.wave).collect();
    for (index, target) in config.targets.iter().enumerate() {
        let missing = (0..target.wave).find(|w| !used.contains(w));
        if let Some(missing) = missing {
            c.error(
                &format!("{}.wave", join_index("targets", index)),
                "wave-gap",
                format!(
                    "target `{}` is in wave {}, but no target is in wave {missing}: waves run in \
                     order from 0 and this one would wait on an empty wave",
                    target.name, target.wave
                ),
                format!(
                    "number the waves from 0 without gaps (move this target to wave {missing}, or \
                     another target there)"
                ),
            );
            // One report per gap is enough; the first target past it shows where.
            break;
        }
    }
}
