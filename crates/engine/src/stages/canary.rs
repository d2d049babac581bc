//! A canary's steps: a share of production's traffic routed to the source slot over the rules recorded
//! before the canary, held for a pause, and the rules put back exactly as they were.
//!
//! The journal's `canary` record is written before each change of the rules, so a run stopped at any
//! point leaves the next one the rules to put back; it is cleared only once they are back.

use super::*;
use crate::state::RoutingRule;

/// How many times the rules are written back before the run gives up and leaves them to the next run.
const RESTORE_ATTEMPTS: u32 = 3;

impl Exec<'_> {
    /// Routes `percent` of production's traffic to `source` at `host`, keeping the rules recorded before
    /// the canary for every other slot.
    pub(super) async fn route(
        &mut self,
        source: &SlotName,
        host: &str,
        percent: u8,
    ) -> Result<(), Failure> {
        let Some(record) = self.journal.canary.as_mut() else {
            return Err(Failure::failed(Error::NothingToRun {
                step: format!("route {percent} % of production traffic to {source}"),
                why: "the journal holds no routing rules from before the canary to route on top of"
                    .into(),
            }));
        };
        record.percent = percent;
        let rules: Vec<RoutingRule> = record
            .before
            .iter()
            .filter(|r| !r.routes_to(source, Some(host)))
            .cloned()
            .chain(std::iter::once(RoutingRule {
                name: source.as_str().to_owned(),
                host: host.to_owned(),
                percent: f64::from(percent),
                other: serde_json::Map::new(),
            }))
            .collect();
        // The share asked for is recorded before it is routed: a run stopped in between leaves the next
        // one a journal that covers either share.
        self.write_tags()
            .await
            .map_err(port_err("record the canary's share"))?;
        self.ctx
            .port
            .set_routing(&rules, &self.ctx.cancel)
            .await
            .map_err(port_err("route production traffic to the canary"))?;
        self.log().info(&format!(
            "Canary: {percent} % of production traffic now goes to slot {source} ({host}); the rest stays on production"
        ));
        Ok(())
    }

    /// Puts production's routing rules back as the journal recorded them before the canary, under the
    /// settle token (a stopped run still takes its share back), then forgets them. Nothing to do when no
    /// canary recorded any.
    pub(super) async fn restore_routing(&mut self) -> Result<(), Failure> {
        let Some(record) = self.journal.canary.clone() else {
            return Ok(());
        };
        // Tried again after a failure: a share left routed sends production's users to a release that
        // failed or was stopped, so one transient error must not leave it until the next run.
        let mut attempt = 1;
        loop {
            match self
                .ctx
                .port
                .set_routing(&record.before, &self.settle)
                .await
            {
                Ok(()) => break,
                Err(err) if attempt < RESTORE_ATTEMPTS && !err.is_cancelled() => {
                    self.log().warning(&format!(
                        "Putting production's traffic routing rules back failed (attempt {attempt} of {RESTORE_ATTEMPTS}), trying again: {}",
                        chain(&err).join(": ")
                    ));
                    attempt += 1;
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = self.settle.cancelled() => {}
                    }
                }
                Err(err) => {
                    return Err(port_err("put production's traffic routing rules back")(err));
                }
            }
        }
        self.journal.canary = None;
        self.write_tags()
            .await
            .map_err(port_err("record the routing rules as put back"))?;
        let rules = if record.before.is_empty() {
            "none: all of production's traffic stays on production".to_owned()
        } else {
            record
                .before
                .iter()
                .map(|r| format!("{} % to {} ({})", r.percent, r.name, r.host))
                .collect::<Vec<_>>()
                .join(", ")
        };
        self.log().info(&format!(
            "Canary: 0 % of production traffic goes to the canary now (it routed {} % last); production's routing rules are as before the release: {rules}",
            record.percent
        ));
        Ok(())
    }

    /// Holds the share routed for `seconds`, or until the run is cancelled.
    pub(super) async fn pause(&self, seconds: u64) -> Result<(), Failure> {
        let share = self.journal.canary.as_ref().map_or(0, |c| c.percent);
        self.log().info(&format!(
            "Canary: holding {share} % of production traffic on the new release for {}",
            humantime::format_duration(Duration::from_secs(seconds))
        ));
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(seconds)) => Ok(()),
            () = self.ctx.cancel.cancelled() => Err(Failure::cancelled(Error::Cancelled {
                step: None,
                during: Some(format!("the canary's pause at {share} %")),
            })),
        }
    }
}
