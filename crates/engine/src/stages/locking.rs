//! The executor's side of the release lock: taking it by the claim protocol of [`crate::lock`], renewing it
//! while the stage runs, checking the fencing token before every irreversible step, and giving it back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Exec, Failure, chain, port_err};
use crate::error::Error;
use crate::lock::{self, Claim, Decision, FenceBreach, Verdict};
use crate::port::Port;

/// How many times a run retries when another run takes the lock at the same moment.
const CONTENTION_ATTEMPTS: u32 = 6;

fn cancelled() -> Failure {
    Failure::cancelled(Error::Cancelled {
        step: Some("take the release lock".into()),
        during: None,
    })
}

/// The lock as this run holds it.
#[derive(Debug)]
pub(super) struct HeldLock {
    /// This run's claim (its token is the fencing token).
    pub(super) claim: Claim,
    /// Stops the renewal task.
    stop: CancellationToken,
    /// Set by the renewal task when the claim was found gone: the run stops at its next step.
    lost: Arc<Mutex<Option<String>>>,
    /// The renewal task: the lock is given back only once it has ended, so no renewal written after
    /// the claim was deleted can bring it back.
    renewal: tokio::task::JoinHandle<()>,
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Exec<'_> {
    pub(super) fn lock_held(&self) -> bool {
        self.held.is_some()
    }

    pub(super) fn my_claim(&self, now: i64, held: bool) -> Claim {
        let lock = &self.opts.lock;
        let token = self
            .held
            .as_ref()
            .map_or_else(lock::new_token, |h| h.claim.token.clone());
        Claim {
            token,
            release: self.opts.release_id.clone(),
            release_name: self.opts.release_name.clone(),
            stage: self
                .claim_stage
                .clone()
                .unwrap_or_else(|| self.stage.stage.to_string()),
            holder: lock.holder.clone(),
            attempt: lock.attempt,
            since_unix: now,
            expires_unix: now + lock.ttl.as_secs().max(1) as i64,
            held,
        }
    }

    fn locked(&self, holder: &Claim, now: i64) -> Failure {
        let expiry = if holder.is_stale(now) {
            format!("went stale at {}", lock::human_time(holder.expires_unix))
        } else {
            format!(
                "expires at {} unless its run renews it",
                lock::human_time(holder.expires_unix)
            )
        };
        let advice = if holder.is_stale(now) {
            format!(
                "If that run is gone, take the lock over: run this stage again with `--take-over-lock {}` (task input takeOverLock: {})",
                holder.token, holder.token
            )
        } else {
            format!(
                "Wait for that run to finish; if it was killed, its lock goes stale at {} and can then be taken over with `--take-over-lock {}`",
                lock::human_time(holder.expires_unix),
                holder.token
            )
        };
        Failure::failed(Error::Locked {
            app: self.spec.app.name.clone(),
            holder: holder.describe(),
            since: lock::human_time(holder.since_unix),
            expiry,
            advice,
        })
    }

    /// Refuses early, before anything is read into a plan or written, when another run holds the lock: a
    /// run that meets a live release must say so, not take it for a release that stopped half-way.
    ///
    /// A live claim of this very release (another job of the same pipeline run, e.g. a production job
    /// killed before the rollback stage started) is waited for until it ends or goes stale, bounded by
    /// twice the lock's lifetime. Returns whether it waited (the caller reads the live state again).
    pub(super) async fn refuse_if_locked(
        &self,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<bool, Failure> {
        let port = self.ctx.port.clone();
        let request = self.lock_request();
        let ttl = self.opts.lock.ttl.as_secs().max(1) as i64;
        let wait_until = port.now_unix() + 2 * ttl;
        let mut tags = tags.clone();
        let mut waited = false;
        loop {
            let now = port.now_unix();
            match lock::decide(&lock::claims(&tags), &request, now) {
                Decision::Refuse { holder }
                    if holder.release == request.release
                        && !holder.is_stale(now)
                        && now < wait_until =>
                {
                    if !waited {
                        self.log().info(&format!(
                            "The release lock is held by another job of this release ({}); waiting for it to end or go stale at {}",
                            holder.describe(),
                            lock::human_time(holder.expires_unix)
                        ));
                    }
                    waited = true;
                    let pause = (holder.expires_unix - now).clamp(1, ttl / 3 + 1) as u64;
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(pause)) => {}
                        () = self.ctx.cancel.cancelled() => return Err(cancelled()),
                    }
                    tags = port
                        .tags(&self.ctx.cancel)
                        .await
                        .map_err(port_err("read the lock"))?;
                }
                // A stale claim of this release is taken over when the lock is taken.
                Decision::Refuse { holder }
                    if holder.release == request.release && holder.is_stale(now) =>
                {
                    return Ok(waited);
                }
                Decision::Refuse { holder } => return Err(self.locked(&holder, now)),
                _ => return Ok(waited),
            }
        }
    }

    fn lock_request(&self) -> lock::Request {
        lock::Request {
            release: self.opts.release_id.clone(),
            attempt: self.opts.lock.attempt,
            take_over: self.opts.lock.take_over.clone(),
        }
    }

    /// Takes the lock: read, claim, read again; refuses having written nothing when another run holds it.
    pub(super) async fn acquire_lock(&mut self) -> Result<(), Failure> {
        let mut written = None;
        let result = self.claim_lock(&mut written).await;
        if result.is_err()
            && !self.lock_held()
            && let Some(token) = written
        {
            // A claim this run wrote (or may have: a write cancelled in flight can still land) and did
            // not win is withdrawn, so it does not hold other runs back until it goes stale.
            self.withdraw_claim(&token).await;
        }
        result
    }

    /// Deletes this run's claim `token` if it is there, under the settle token (a cancelled run still
    /// withdraws it).
    async fn withdraw_claim(&self, token: &str) {
        let port = &self.ctx.port;
        if let Ok(tags) = port.tags(&self.settle).await {
            let mine = lock::claim_tags(&tags, token);
            if !mine.is_empty() {
                let _ = port.delete_tags(&mine, &self.settle).await;
            }
        }
    }

    /// The claim protocol; `written` is the token of the claim this run last wrote.
    async fn claim_lock(&mut self, written: &mut Option<String>) -> Result<(), Failure> {
        let port = self.ctx.port.clone();
        let cancel = self.ctx.cancel.clone();
        let request = self.lock_request();
        let mut last_other = None;
        for attempt in 1..=CONTENTION_ATTEMPTS {
            let tags = port
                .tags(&cancel)
                .await
                .map_err(port_err("read the lock"))?;
            let now = port.now_unix();
            let remove = match lock::decide(&lock::claims(&tags), &request, now) {
                Decision::Refuse { holder }
                    if holder.release == request.release && holder.is_stale(now) =>
                {
                    // Stale and this pipeline run's own: the next job of the same run takes it over.
                    vec![holder]
                }
                Decision::Refuse { holder } => return Err(self.locked(&holder, now)),
                Decision::Wait { other } => {
                    last_other = Some(other);
                    self.contention_pause(attempt).await?;
                    continue;
                }
                Decision::Claim { remove } => remove,
            };
            for stale in &remove {
                self.log().warning(&format!(
                    "Taking over the release lock of {} (since {}): {}",
                    stale.describe(),
                    lock::human_time(stale.since_unix),
                    if stale.release == request.release {
                        "an earlier job of this release's pipeline run, which ended"
                    } else {
                        "stale, and taken over as asked"
                    }
                ));
                port.delete_tags(&lock::claim_tags(&tags, &stale.token), &cancel)
                    .await
                    .map_err(port_err("remove a stale lock"))?;
            }
            let mine = self.my_claim(now, false);
            *written = Some(mine.token.clone());
            port.merge_tags(&mine.to_tags(), &cancel)
                .await
                .map_err(port_err("take the release lock"))?;
            let after = port
                .tags(&cancel)
                .await
                .map_err(port_err("read the lock"))?;
            let ignore: Vec<String> = remove.iter().map(|c| c.token.clone()).collect();
            match lock::verify(&lock::claims(&after), &mine.token, &ignore, port.now_unix()) {
                Verdict::Won => {
                    let mut held = mine;
                    held.held = true;
                    port.merge_tags(&held.to_tags(), &cancel)
                        .await
                        .map_err(port_err("take the release lock"))?;
                    self.start_holding(held);
                    return Ok(());
                }
                Verdict::Contended { other } => {
                    // Withdrawn before anything else: a run that does not get the lock leaves no trace.
                    let _ = port
                        .delete_tags(&lock::claim_tags(&after, &mine.token), &self.settle)
                        .await;
                    if other.held {
                        return Err(self.locked(&other, port.now_unix()));
                    }
                    last_other = Some(other);
                    self.contention_pause(attempt).await?;
                }
                Verdict::Lost => {
                    let _ = port.delete_tags(&mine.to_tags(), &self.settle).await;
                    self.contention_pause(attempt).await?;
                }
            }
        }
        Err(Failure::failed(Error::LockContended {
            app: self.spec.app.name.clone(),
            other: last_other.map_or_else(|| "unknown".to_owned(), |c| c.describe()),
            attempts: CONTENTION_ATTEMPTS,
        }))
    }

    /// A pause of random length, so two runs that collided do not collide again.
    async fn contention_pause(&self, attempt: u32) -> Result<(), Failure> {
        let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) * 4;
        let pause = Duration::from_millis(250 * u64::from(attempt) + jitter);
        tokio::select! {
            () = tokio::time::sleep(pause) => Ok(()),
            () = self.ctx.cancel.cancelled() => Err(cancelled()),
        }
    }

    /// Records the lock as held and renews it every third of its lifetime until it is given back.
    fn start_holding(&mut self, claim: Claim) {
        let stop = CancellationToken::new();
        let lost = Arc::new(Mutex::new(None));
        let port: Arc<dyn Port> = self.ctx.port.clone();
        let ttl = self.opts.lock.ttl.max(Duration::from_secs(1));
        let (renew_stop, renew_lost, mut renewed) = (stop.clone(), lost.clone(), claim.clone());
        // A renewal under way finishes (bounded by the stop's deadline) rather than being cut: giving the
        // lock back waits for it, and a renewal cut in flight could still land after the claim's removal.
        let settle = self.settle.clone();
        let log = self.log().clone();
        let renewal = tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(ttl / 3) => {}
                    () = renew_stop.cancelled() => return,
                }
                let Ok(tags) = port.tags(&settle).await else {
                    continue;
                };
                if renew_stop.is_cancelled() {
                    return;
                }
                if !lock::claims(&tags).iter().any(|c| c.token == renewed.token) {
                    if let Ok(mut l) = renew_lost.lock() {
                        *l = Some("its claim was removed: another run took the lock over".into());
                    }
                    return;
                }
                renewed.expires_unix = port.now_unix() + ttl.as_secs() as i64;
                if let Err(err) = port.merge_tags(&renewed.to_tags(), &settle).await {
                    log.warning(&format!(
                        "Could not renew the release lock (it is tried again): {}",
                        chain(&err).join(": ")
                    ));
                }
            }
        });
        self.held = Some(HeldLock {
            claim,
            stop,
            lost,
            renewal,
        });
    }

    /// The fencing check before an irreversible step: the claim is still this run's, held and unexpired.
    pub(super) async fn fence(&self, step: &str) -> Result<(), Failure> {
        let Some(held) = &self.held else {
            return Err(Failure::failed(Error::LockLost {
                app: self.spec.app.name.clone(),
                reason: "the stage does not hold it".into(),
                step: step.to_owned(),
            }));
        };
        let lost = |reason: String| {
            Failure::failed(Error::LockLost {
                app: self.spec.app.name.clone(),
                reason,
                step: step.to_owned(),
            })
        };
        if let Some(reason) = held.lost.lock().ok().and_then(|l| l.clone()) {
            return Err(lost(reason));
        }
        let tags = self
            .ctx
            .port
            .tags(&self.ctx.cancel)
            .await
            .map_err(port_err("check the release lock"))?;
        match lock::check_fence(
            &lock::claims(&tags),
            &held.claim.token,
            self.ctx.port.now_unix(),
        ) {
            Ok(()) => Ok(()),
            Err(FenceBreach::Gone) => Err(lost(
                "its claim is gone: another run took the lock over".into(),
            )),
            Err(FenceBreach::Expired) => {
                Err(lost("its claim expired before it could be renewed".into()))
            }
            Err(FenceBreach::Other(other)) => Err(lost(format!(
                "another run holds it too: {}",
                other.describe()
            ))),
        }
    }

    /// Gives the lock back (deletes this run's claim, only while it is still this run's), under the
    /// settle token: a cancelled run still gives it back.
    pub(super) async fn release_lock(&mut self) -> Result<(), Error> {
        let settle = self.settle.clone();
        let Some(held) = self.held.as_mut() else {
            return Ok(());
        };
        held.stop.cancel();
        // Polled only until it ends: a retry of this call must not poll a finished task again.
        if !held.renewal.is_finished() {
            tokio::select! {
                _ = &mut held.renewal => {}
                () = settle.cancelled() => {}
            }
        }
        let token = held.claim.token.clone();
        let tags = self.ctx.port.tags(&settle).await?;
        let mine = lock::claim_tags(&tags, &token);
        if !mine.is_empty() {
            self.ctx.port.delete_tags(&mine, &settle).await?;
        }
        self.held = None;
        Ok(())
    }
}
