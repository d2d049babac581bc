//! The one place the binary hears signals: SIGINT and SIGTERM (Windows: Ctrl-C and Ctrl-Break, the
//! agent's same two steps), listened for from start-up to exit, turned into the run's cancellation and the
//! deadline of its stop.

use slot_release_engine::stages::Stopping;
use slot_release_pipelines::Log;
use slot_release_pipelines::agent::CancelSignal;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The signals heard, in order, with the name the platform gives each.
pub(crate) struct Signals {
    heard: mpsc::UnboundedReceiver<(CancelSignal, &'static str)>,
}

impl Signals {
    /// Listens from now on: a signal that arrives while the config loads, or right after the emulator
    /// prints its endpoints, is heard (without a listener, SIGINT and SIGTERM would kill the process).
    pub(crate) fn register() -> std::io::Result<Signals> {
        let (tx, heard) = mpsc::unbounded_channel();
        listen(tx)?;
        Ok(Signals { heard })
    }

    /// The next signal; none ever comes once the listener is gone.
    async fn next(&mut self) -> (CancelSignal, &'static str) {
        match self.heard.recv().await {
            Some(signal) => signal,
            None => std::future::pending().await,
        }
    }
}

/// SIGINT and SIGTERM, as the agent sends them on Linux and macOS.
#[cfg(unix)]
fn listen(tx: mpsc::UnboundedSender<(CancelSignal, &'static str)>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        loop {
            let heard = tokio::select! {
                Some(()) = interrupt.recv() => (CancelSignal::Interrupt, "SIGINT"),
                Some(()) = terminate.recv() => (CancelSignal::Terminate, "SIGTERM"),
                else => return,
            };
            if tx.send(heard).is_err() {
                return;
            }
        }
    });
    Ok(())
}

/// Ctrl-C and Ctrl-Break, as the agent sends them on Windows (where they reach the binary directly).
/// The only Windows-only code of the signal path: the Linux machines this project is tested on cannot
/// run it, so it is kept to this one function, the twin of the Unix one above.
#[cfg(windows)]
fn listen(tx: mpsc::UnboundedSender<(CancelSignal, &'static str)>) -> std::io::Result<()> {
    use tokio::signal::windows::{ctrl_break, ctrl_c};
    let mut interrupt = ctrl_c()?;
    let mut terminate = ctrl_break()?;
    tokio::spawn(async move {
        loop {
            let heard = tokio::select! {
                Some(()) = interrupt.recv() => (CancelSignal::Interrupt, "Ctrl-C"),
                Some(()) = terminate.recv() => (CancelSignal::Terminate, "Ctrl-Break"),
                else => return,
            };
            if tx.send(heard).is_err() {
                return;
            }
        }
    });
    Ok(())
}

/// Runs `work` to its end, which is how every run ends, cancelled or not. The first signal cancels
/// `cancel`: no further step starts, the call in flight stops, and the stop's own writes (the journal,
/// production's settings, the lock given back) end within what the signal leaves before the agent's next
/// step (`stages::StopBudget`: 6 s after SIGINT, 1 s after SIGTERM); then `work` returns and the result
/// is reported through `main` as usual.
///
/// A later signal cancels nothing more, but brings the stop's end forward when it leaves less (the
/// agent's SIGTERM comes 7.5 s after its SIGINT and the kill 2.5 s after that). Nothing exits on a timer:
/// every wait of a stopping run is bounded by the run's token or the stop's deadline, and background work
/// cannot hold the exit (`main` gives the runtime `stages::RUNTIME_SHUTDOWN`).
pub(crate) async fn stop_on_signals<T>(
    work: impl std::future::Future<Output = T>,
    signals: &mut Signals,
    cancel: &CancellationToken,
    stopping: &Stopping,
    log: &Log,
) -> T {
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => return out,
            (signal, name) = signals.next() => {
                let left = stopping.heard(signal);
                if cancel.is_cancelled() {
                    log.warning(&format!(
                        "{name} again: still stopping safely (the journal, the lock); this ends within {:.1} s",
                        left.as_secs_f64()
                    ));
                } else {
                    log.warning(&format!(
                        "Cancellation requested ({name}): finishing the current step safely; the journal and the lock are written within {:.1} s",
                        left.as_secs_f64()
                    ));
                    cancel.cancel();
                }
            }
        }
    }
}

/// A child of `cancel` that is cancelled too once `minutes` pass, logging `said(minutes)` as an error. A
/// run's own deadline stops it like a cancellation but is a failure to finish, not a cancelled job: only the
/// child is cancelled, so the signal path's token (what decides `Canceled`) stays clear.
pub(crate) fn with_deadline(
    cancel: &CancellationToken,
    minutes: Option<u64>,
    log: &Log,
    said: fn(u64) -> String,
) -> CancellationToken {
    let child = cancel.child_token();
    if let Some(minutes) = minutes {
        let (cancel, log) = (child.clone(), log.clone());
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(minutes * 60)).await;
            log.error(&said(minutes));
            cancel.cancel();
        });
    }
    child
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use slot_release_engine::stages::StopBudget;
    use slot_release_pipelines::OutputMode;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn each_signal_sets_the_stops_deadline_by_what_it_leaves_and_only_the_first_cancels() {
        let (tx, heard) = mpsc::unbounded_channel();
        let mut signals = Signals { heard };
        let (cancel, stopping) = (
            CancellationToken::new(),
            Stopping::new(StopBudget::default()),
        );
        let log = Log::new(OutputMode::Plain, Box::new(std::io::sink()));
        let work = {
            let cancel = cancel.clone();
            async move {
                cancel.cancelled().await;
                // The stop's writes run on after the cancel; the agent's SIGTERM comes in the meantime.
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
        };
        tx.send((CancelSignal::Interrupt, "SIGINT")).unwrap();
        let agent = {
            let (tx, stopping) = (tx.clone(), stopping.clone());
            async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                assert_eq!(stopping.left(), Some(Duration::from_secs(5)));
                tx.send((CancelSignal::Terminate, "SIGTERM")).unwrap();
            }
        };
        let ((), ()) = tokio::join!(
            stop_on_signals(work, &mut signals, &cancel, &stopping, &log),
            agent
        );
        assert!(cancel.is_cancelled());
        // The SIGTERM at 1 s left 1 s: the stop ended at 2 s, not at the SIGINT's 6 s.
        assert_eq!(stopping.left(), Some(Duration::ZERO));
    }
}
