//! The one place the binary hears signals: SIGINT and SIGTERM (Ctrl-C elsewhere), listened for from
//! start-up to exit and turned into the run's cancellation.

use slot_release_pipelines::Log;
use tokio_util::sync::CancellationToken;

/// SIGINT and SIGTERM (Ctrl-C elsewhere), listened for from start-up to exit: the one place the
/// binary hears signals.
pub(crate) struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    pub(crate) fn register() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    /// The next signal, by name.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => "SIGINT",
                _ = self.terminate.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = &mut self;
            if tokio::signal::ctrl_c().await.is_err() {
                // Nothing to listen to: no signal ever comes.
                std::future::pending::<()>().await;
            }
            "Ctrl-C"
        }
    }
}

/// Runs `work` to its end, which is how every run ends, cancelled or not. The first SIGINT or SIGTERM
/// cancels `cancel`: no further step starts, the call in flight stops, and the stop's own writes (the
/// journal, production's settings, the lock given back) finish within the engine's settle grace
/// (`stages::SETTLE_GRACE`, 7 s); then `work` returns and the result is reported through `main` as usual.
///
/// A second signal changes nothing but the log. The agent sends SIGINT, then SIGTERM 7.5 s later and a
/// kill 2.5 s after that: by its SIGTERM the stop has ended or is finishing a bounded journal write,
/// which matters more than exiting a moment earlier. No deadline of our own is needed: every wait of a
/// stopping run is bounded by the run's token or the settle grace, and background work cannot hold the
/// exit (`main` gives the runtime 0.5 s to shut down).
pub(crate) async fn stop_on_signals<T>(
    work: impl std::future::Future<Output = T>,
    signals: &mut Signals,
    cancel: &CancellationToken,
    log: &Log,
) -> T {
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => return out,
            name = signals.next() => {
                if cancel.is_cancelled() {
                    log.warning(&format!(
                        "{name} again: still stopping safely (the journal, the lock); this ends within seconds"
                    ));
                } else {
                    log.warning(&format!(
                        "Cancellation requested ({name}): finishing the current step safely"
                    ));
                    cancel.cancel();
                }
            }
        }
    }
}
