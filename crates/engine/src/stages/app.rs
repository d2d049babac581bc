//! App commands outside a release: start, stop or restart a slot's app, and delete a slot.
//!
//! Each takes the release lock exactly as a stage does (a running release refuses them, and they refuse a
//! release while they run), checks the fencing token before its one change, records itself in the
//! journal (`slotrelease.command`: who, when, what, how it ended) and gives the lock back under the settle
//! token. A restart or a start waits, bounded by the health gate's deadline, until the slot answers its
//! health path, so "restarted" means serving again. Deleting a slot is refused for production, for the
//! slot that holds the release in flight, and for the slot a rollback would swap back from.

use std::time::Instant;

use serde::Serialize;

use super::{Exec, Failure, LockOptions, RunResult, StageOptions, chain, port_err};
use crate::error::Error;
use crate::health::{self, Gate, GateReport};
use crate::journal::{CommandEntry, JournalTags, Phase};
use crate::plan::Stage;
use crate::port::SlotControl;
use crate::spec::ReleaseSpec;
use crate::state::SlotName;

/// What an app command does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum AppAction {
    /// Start, stop or restart the slot's app.
    Control(SlotControl),
    /// Delete the slot.
    DeleteSlot,
}

impl AppAction {
    /// The command's name, as the journal records it.
    pub fn as_str(self) -> &'static str {
        match self {
            AppAction::Control(c) => c.as_str(),
            AppAction::DeleteSlot => "delete",
        }
    }
}

/// How an app command runs.
#[derive(Debug, Clone)]
pub struct AppCommandOptions {
    /// What to do.
    pub action: AppAction,
    /// To which slot.
    pub slot: SlotName,
    /// The run's identity (the pipeline run's, else a local timestamp): the lock's claim names it.
    pub run_id: String,
    /// Its display name.
    pub run_name: String,
    /// The release lock, as a stage takes it.
    pub lock: LockOptions,
    /// Where the run may write (unused by the commands themselves; the executor needs one).
    pub work_dir: std::path::PathBuf,
}

/// How an app command ended.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppCommandRecord {
    /// The app.
    pub app: String,
    /// `start`, `stop`, `restart` or `delete`.
    pub command: String,
    /// The slot.
    pub slot: SlotName,
    /// How it ended.
    pub result: RunResult,
    /// Why it failed, outermost cause first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error: Vec<String>,
    /// The wait for the slot to answer its health path (start, restart).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<GateReport>,
    /// How long it took.
    pub duration_ms: u64,
}

impl AppCommandRecord {
    /// Whether the command did what was asked.
    pub fn succeeded(&self) -> bool {
        self.result == RunResult::Succeeded
    }
}

/// Runs one app command; never fails as a whole: the record says how it ended.
pub async fn run_app_command(
    ctx: &super::Context,
    spec: &ReleaseSpec,
    opts: &AppCommandOptions,
) -> AppCommandRecord {
    let started = Instant::now();
    let (settle, _settle_timer) = ctx.stopping.settle_token(&ctx.cancel);
    let stage_opts = StageOptions {
        command: super::Command::Production,
        environment: None,
        release_id: opts.run_id.clone(),
        release_name: opts.run_name.clone(),
        package: None,
        package_sha256: None,
        artifact: None,
        target_spec: None,
        build_run: slot_release_pipelines::BuildRun::default(),
        work_dir: opts.work_dir.clone(),
        hook_dir: opts.work_dir.clone(),
        unfinished: super::Unfinished::Refuse,
        lock: opts.lock.clone(),
        rollback_to: None,
    };
    // The executor's stage is only its label here: the claim names the command instead.
    let mut exec = Exec::new(ctx, spec, &stage_opts, Stage::Production, settle);
    exec.claim_stage = Some(format!("{} {}", opts.action.as_str(), opts.slot));
    let mut health = None;
    let outcome = exec.app_command(opts, &mut health).await;
    if let Err(err) = exec.release_lock().await {
        ctx.log.warning(&format!(
            "Could not give the release lock back (it goes stale on its own): {}",
            chain(&err).join(": ")
        ));
    }
    let (result, error) = match outcome {
        Ok(()) => (RunResult::Succeeded, Vec::new()),
        Err(Failure { result, error }) => {
            let error = chain(&error);
            ctx.log.error(&format!(
                "{} of slot {}: {}",
                opts.action.as_str(),
                opts.slot,
                error.join(": ")
            ));
            (result, error)
        }
    };
    AppCommandRecord {
        app: spec.app.name.clone(),
        command: opts.action.as_str().to_owned(),
        slot: opts.slot.clone(),
        result,
        error,
        health,
        duration_ms: started.elapsed().as_millis() as u64,
    }
}

/// Why deleting `slot` would break a release or its rollback, and what to do instead; `None` when it
/// breaks neither.
pub(crate) fn delete_refusal(journal: &JournalTags, slot: &SlotName) -> Option<(String, String)> {
    if slot.is_production() {
        return Some((
            "production is the site itself, not a deployment slot".to_owned(),
            "To remove the whole app, delete the site in the portal or with `az webapp delete`."
                .to_owned(),
        ));
    }
    let held = journal.slot_release(slot)?;
    let in_flight = journal.release.as_deref() == Some(held)
        && journal
            .phase
            .is_some_and(|p| !matches!(p, Phase::Released | Phase::Failed | Phase::RolledBack));
    if in_flight {
        let phase = journal.phase.map_or("unknown", Phase::as_str);
        return Some((
            format!("it holds release {held}, which is in flight (phase {phase})"),
            "Finish that release with the production stage, or end it with `slot-release rollback`, then delete the slot.".to_owned(),
        ));
    }
    // After a swap the source slot holds what production ran before: the release a rollback swaps
    // back in seconds (`restore: swapBack`), with no artifact to download again.
    // A release that failed in the slot, or that a rollback took out of production, is no rollback's
    // target: its slot may go.
    let production = journal.production_release();
    let failed_here =
        journal.release.as_deref() == Some(held) && journal.phase == Some(Phase::Failed);
    let rolled_back = journal
        .history
        .iter()
        .any(|e| e.id == held && e.outcome == crate::history::Outcome::RolledBack);
    if production != Some(held) && !failed_here && !rolled_back {
        return Some((
            format!(
                "it holds release {held}, the one a rollback would swap back into production (production runs {})",
                production.unwrap_or("no recorded release")
            ),
            "Keep it: the next staging deploys over it. Once a release is staged there and released, the slot holds the release before it again.".to_owned(),
        ));
    }
    None
}

impl Exec<'_> {
    async fn app_command(
        &mut self,
        opts: &AppCommandOptions,
        health: &mut Option<GateReport>,
    ) -> Result<(), Failure> {
        let (command, slot) = (opts.action.as_str(), &opts.slot);
        let port = self.ctx.port.clone();
        let tags = port
            .tags(&self.ctx.cancel)
            .await
            .map_err(port_err("read the journal"))?;
        // Refused early, having written nothing, when a release (or another command) runs.
        self.refuse_if_locked(&tags).await?;
        self.refuse_delete(
            opts,
            &JournalTags::from_tags(&tags).map_err(Failure::failed)?,
        )?;
        self.acquire_lock().await?;
        // Read again under the lock: a release may have ended (or moved the slot) in between.
        let tags = port
            .tags(&self.ctx.cancel)
            .await
            .map_err(port_err("read the journal"))?;
        self.journal = JournalTags::from_tags(&tags).map_err(Failure::failed)?;
        self.refuse_delete(opts, &self.journal.clone())?;
        let step = format!("{command} slot {slot}");
        self.fence(&step).await?;
        self.log().info(&format!(
            "{} slot {slot} of {}",
            capitalised(command),
            self.spec.app.name
        ));
        let at_unix = port.now_unix();
        let done = match opts.action {
            AppAction::Control(control) => port.control_slot(slot, control, &self.ctx.cancel).await,
            AppAction::DeleteSlot => port.delete_slot(slot, &self.ctx.cancel).await,
        }
        .map_err(port_err(&step));
        let done = match (done, opts.action) {
            (Ok(()), AppAction::Control(SlotControl::Start | SlotControl::Restart)) => {
                self.wait_until_serving(slot, health).await
            }
            (done, _) => done,
        };
        // The journal says what was done to the slot, also when it failed half-way or was cancelled.
        let outcome = match &done {
            Ok(()) => "succeeded",
            Err(f) if f.result == RunResult::Cancelled => "cancelled",
            Err(_) => "failed",
        };
        let journaled = self.journal_command(opts, at_unix, outcome).await;
        done?;
        journaled.map_err(port_err("write the journal"))?;
        self.log()
            .info(&format!("{} of slot {slot}: done", capitalised(command)));
        Ok(())
    }

    fn refuse_delete(
        &self,
        opts: &AppCommandOptions,
        journal: &JournalTags,
    ) -> Result<(), Failure> {
        if opts.action != AppAction::DeleteSlot {
            return Ok(());
        }
        match delete_refusal(journal, &opts.slot) {
            None => Ok(()),
            Some((reason, advice)) => Err(Failure::failed(Error::AppCommandRefused {
                command: opts.action.as_str().to_owned(),
                app: self.spec.app.name.clone(),
                slot: opts.slot.clone(),
                reason,
                advice,
            })),
        }
    }

    /// The gate a started or restarted slot must pass: the config's staging gate (else production's
    /// watch check, else `/`), asking for one healthy answer within its deadline.
    fn serving_gate(&self) -> Gate {
        let base = self
            .spec
            .staging
            .as_ref()
            .and_then(|s| s.health.clone())
            .or_else(|| self.spec.production.as_ref().and_then(|p| p.health.clone()))
            .unwrap_or_else(|| Gate::new("/"));
        Gate {
            successes_needed: 1,
            ..base
        }
    }

    async fn wait_until_serving(
        &self,
        slot: &SlotName,
        report: &mut Option<GateReport>,
    ) -> Result<(), Failure> {
        let target = self.target(slot).await?;
        let port = self.ctx.port.clone();
        let crash = crate::port::SlotCrashCheck {
            port: port.clone(),
            slot: slot.clone(),
            cancel: self.ctx.cancel.clone(),
        };
        let outcome = health::gate_with(
            port.prober().as_ref(),
            &target,
            &self.serving_gate(),
            Some(&crash),
            &self.ctx.cancel,
            self.log(),
        )
        .await;
        *report = match &outcome {
            Ok(r) => Some(r.clone()),
            Err(err) => err.gate_report().cloned(),
        };
        outcome.map(drop).map_err(super::execute::health_failure)
    }

    /// Records the command in the journal under the settle token (a cancelled command still says what
    /// it did); a deleted slot no longer holds a release nor owns names.
    async fn journal_command(
        &mut self,
        opts: &AppCommandOptions,
        at_unix: i64,
        outcome: &str,
    ) -> Result<(), Error> {
        let live = self.ctx.port.tags(&self.settle).await?;
        let mut journal = JournalTags::from_tags(&live)?;
        if opts.action == AppAction::DeleteSlot && outcome == "succeeded" {
            journal.slots.remove(&opts.slot);
            if let Some(owned) = journal.owned.as_mut() {
                owned.remove(&opts.slot);
            }
        }
        journal.command = Some(Box::new(CommandEntry {
            command: opts.action.as_str().to_owned(),
            slot: opts.slot.clone(),
            at_unix,
            run: opts.run_id.clone(),
            who: who(&self.opts.lock),
            outcome: outcome.to_owned(),
        }));
        self.journal = journal;
        self.write_tags().await
    }
}

/// Who ran the command, as the lock's holder describes it (empty outside a pipeline).
fn who(lock: &LockOptions) -> String {
    ["pipeline", "run", "stage", "job", "agent"]
        .into_iter()
        .filter_map(|k| lock.holder.get(k).map(|v| format!("{k} {v}")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn capitalised(command: &str) -> String {
    let mut chars = command.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(release: &str, phase: Phase, slots: &[(&str, &str)]) -> JournalTags {
        JournalTags {
            release: Some(release.to_owned()),
            phase: Some(phase),
            slots: slots
                .iter()
                .map(|(s, r)| (SlotName::new(*s).unwrap(), (*r).to_owned()))
                .collect(),
            ..JournalTags::default()
        }
    }

    fn refused(journal: &JournalTags, slot: &str) -> Option<String> {
        delete_refusal(journal, &SlotName::new(slot).unwrap()).map(|(reason, _)| reason)
    }

    #[test]
    fn a_delete_spares_what_a_release_or_its_rollback_needs_and_nothing_else() {
        let released = journal(
            "r2",
            Phase::Released,
            &[("production", "r2"), ("staging", "r1")],
        );
        assert!(
            refused(&released, "production")
                .unwrap()
                .contains("site itself")
        );
        assert!(refused(&released, "staging").unwrap().contains("swap back"));
        assert_eq!(
            refused(&released, "preview"),
            None,
            "a slot the journal never used"
        );
        for phase in [
            Phase::Staging,
            Phase::Deployed,
            Phase::Staged,
            Phase::Swapping,
        ] {
            let flying = journal("r3", phase, &[("production", "r2"), ("staging", "r3")]);
            assert!(
                refused(&flying, "staging").unwrap().contains("in flight"),
                "{phase}"
            );
        }
        let failed = journal(
            "r3",
            Phase::Failed,
            &[("production", "r2"), ("staging", "r3")],
        );
        assert_eq!(
            refused(&failed, "staging"),
            None,
            "a failed release is no target"
        );
        let mut rolled_back = journal(
            "r2",
            Phase::RolledBack,
            &[("production", "r1"), ("staging", "r2")],
        );
        rolled_back.history = vec![crate::history::Entry {
            id: "r2".to_owned(),
            name: String::new(),
            released_unix: 0,
            image: None,
            run: None,
            package_sha256: None,
            artifact: None,
            outcome: crate::history::Outcome::RolledBack,
        }];
        assert_eq!(refused(&rolled_back, "staging"), None);
        let same = journal(
            "r2",
            Phase::Released,
            &[("production", "r2"), ("staging", "r2")],
        );
        assert_eq!(
            refused(&same, "staging"),
            None,
            "production runs the same release"
        );
    }
}
