//! Before a stage plans: wait for work an interrupted run left running, correct the journal from the slots, and settle an unfinished release.

use super::*;

impl Exec<'_> {
    /// A run stopped during its upload leaves the deployment running in Kudu; it finishes on its own.
    /// The retry of that release waits for it (bounded, cancellable) rather than refuse at preflight.
    pub(super) async fn wait_for_running_deployment(
        &self,
        mut state: LiveState,
    ) -> Result<LiveState, Failure> {
        let journal = JournalTags::from_tags(&state.tags).map_err(Failure::failed)?;
        let stopped_here = journal.phase.is_some_and(|p| !p.is_settled())
            && journal.release.as_deref() == Some(self.opts.release_id.as_str());
        if !stopped_here || state.in_flight.is_empty() {
            return Ok(state);
        }
        self.log().info(&format!(
            "The interrupted run of this release left work running ({}); waiting for it to finish",
            state.in_flight.join(", ")
        ));
        let deadline = Instant::now() + SWAP_CONFLICT_WAIT;
        while !state.in_flight.is_empty() && Instant::now() < deadline {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
                () = self.ctx.cancel.cancelled() => break,
            }
            state = self.read_state().await?;
        }
        Ok(state)
    }

    /// A run stopped during a canary or a swap (or swap back) may have left that swap running in Azure: the live state
    /// means nothing until it ends. Resetting the source slot's config is refused (409) while an operation
    /// holds the app, and is a no-op otherwise (it also cancels a preview the stopped run left applied).
    /// Returns whether the state must be read again: whenever it checked, because the state read before
    /// the check is not a snapshot (the swap may have ended between reading production and the slot,
    /// which then both show the same release).
    pub(super) async fn wait_for_running_swap(&self, state: &LiveState) -> Result<bool, Failure> {
        let phase = JournalTags::from_tags(&state.tags)
            .map_err(Failure::failed)?
            .phase;
        if !matches!(
            phase,
            Some(Phase::Canary | Phase::Swapping | Phase::Swapped | Phase::RollingBack)
        ) {
            return Ok(false);
        }
        let Some(source) = self
            .spec
            .production
            .as_ref()
            .map(|p| p.source_slot.clone())
            .filter(|s| !s.is_production() && state.slot(s).is_some())
        else {
            return Ok(false);
        };
        let deadline = Instant::now() + SWAP_CONFLICT_WAIT;
        let mut announced = false;
        loop {
            match self
                .ctx
                .port
                .reset_slot_config(&source, &self.ctx.cancel)
                .await
            {
                Ok(()) => return Ok(true),
                // The run stops at its first step; the state read next says the rest.
                Err(err) if err.is_cancelled() => return Ok(true),
                Err(err) if err.is_conflict() && Instant::now() < deadline => {
                    if !announced {
                        self.log().info(
                            "An operation of the interrupted run is still running on the app; waiting for it to finish",
                        );
                    }
                    announced = true;
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(2)) => {}
                        () = self.ctx.cancel.cancelled() => return Ok(true),
                    }
                }
                Err(err) => {
                    self.log().warning(&format!(
                        "Could not tell whether an operation is still running on the app: {}",
                        chain(&err).join(": ")
                    ));
                    return Ok(true);
                }
            }
        }
    }

    /// A run stopped during a swap leaves the journal's slots stale: corrected from the slots' deployment
    /// records ([`machine::reconcile`]), with a warning for each.
    pub(super) fn reconcile(&self, state: &mut LiveState) -> Result<(), Failure> {
        let journal = JournalTags::from_tags(&state.tags).map_err(Failure::failed)?;
        let live: BTreeMap<SlotName, Option<String>> = state
            .slots
            .iter()
            .map(|(name, s)| (name.clone(), s.release.clone()))
            .collect();
        let source = self.spec.production.as_ref().map(|p| &p.source_slot);
        let (fixed, corrections) = machine::reconcile(&journal, &live, source);
        for c in &corrections {
            self.log().warning(&format!(
                "The journal says slot {} holds {}, but its deployment records say {}: the run that wrote it stopped during a swap; going by the slot",
                c.slot,
                c.journal.as_deref().unwrap_or("nothing"),
                c.live
            ));
        }
        if !corrections.is_empty() {
            fixed.apply_to(&mut state.tags);
        }
        Ok(())
    }

    /// Adjusts the journal of an unfinished release as [`machine::settle`] decides; returns whether a
    /// rollback must run first.
    pub(super) fn settle(&mut self, state: &mut LiveState) -> Result<bool, Failure> {
        let journal = JournalTags::from_tags(&state.tags).map_err(Failure::failed)?;
        match machine::settle(
            &journal,
            self.stage.stage,
            &self.opts.release_id,
            self.opts.unfinished,
        ) {
            machine::Settlement::Settled => Ok(false),
            machine::Settlement::RollBackFirst => Ok(true),
            machine::Settlement::Refuse { release, phase } => {
                Err(Failure::failed(Error::Unfinished { release, phase }))
            }
            machine::Settlement::Resume {
                journal,
                release,
                stopped_at,
                own,
            } => {
                if own {
                    self.log().info(&format!(
                        "Release {release} is this run's release and stopped at phase `{stopped_at}`: resuming it"
                    ));
                }
                let production_holds =
                    state.production().and_then(|s| s.release.as_deref()) == Some(release.as_str());
                self.log().info(&format!(
                    "Resuming release {release}, which stopped at phase `{stopped_at}`{}",
                    if production_holds {
                        "; production already serves it"
                    } else {
                        ""
                    }
                ));
                journal.apply_to(&mut state.tags);
                Ok(false)
            }
        }
    }
}
