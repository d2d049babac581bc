//! The production prober: samples production's `/health` and page while a test runs, the way a user of
//! the app would meet it, so a test can say production stayed healthy throughout. End-to-end stories ask
//! [`Prober::assert_always_healthy`]; the fault matrix judges every [`Sample`] itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::world::World;

/// How often production is sampled by [`World::watch_production`]: often enough that an outage of a
/// fraction of a second is seen, rarely enough not to load a two-core machine.
pub const PROBE_EVERY: Duration = Duration::from_millis(150);

/// One sample of production.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Since the prober started.
    pub at: Duration,
    /// Status of `/health` (0: no answer).
    pub health_status: u16,
    /// Whether `/health` answered 200 with `ok`.
    pub health_ok: bool,
    /// The release `/` names, if it answered with the example's page.
    pub release: Option<String>,
    /// Whether a run was in progress when the sample was taken ([`Prober::set_during_run`]).
    pub during_run: bool,
}

/// Production sampled until [`Prober::stop`].
#[derive(Debug)]
pub struct Prober {
    stop: Arc<AtomicBool>,
    during_run: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    /// Taken by [`Prober::stop`]; a prober dropped without it stops at its next sample.
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl World {
    /// Probes production (the host ARM names for the world's app) every [`PROBE_EVERY`] until stopped.
    pub fn watch_production(&self) -> Prober {
        Prober::start(self, PROBE_EVERY).unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Prober {
    /// Starts sampling the world's production every `every`.
    pub fn start(world: &World, every: Duration) -> Result<Prober, String> {
        let client = world
            .emulator
            .client_builder()
            .map_err(|e| e.to_string())?
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        let base = world.emulator.app_url(&world.app, "production");
        let stop = Arc::new(AtomicBool::new(false));
        let during_run = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (s, r, out) = (stop.clone(), during_run.clone(), samples.clone());
        let started = Instant::now();
        let task = tokio::spawn(async move {
            while !s.load(Ordering::SeqCst) {
                let during_run = r.load(Ordering::SeqCst);
                let at = started.elapsed();
                let (health_status, health_ok) =
                    match client.get(format!("{base}/health")).send().await {
                        Ok(rsp) => {
                            let status = rsp.status().as_u16();
                            let body = rsp.text().await.unwrap_or_default();
                            if !rsp_ok(status) {
                                eprintln!("production probe: {status} {}", body.trim());
                            }
                            (status, status == 200 && body.contains("ok"))
                        }
                        Err(e) => {
                            eprintln!("production probe (no answer): {e}");
                            (0, false)
                        }
                    };
                let release = match client.get(format!("{base}/")).send().await {
                    Ok(rsp) if rsp.status().is_success() => {
                        release_in_page(&rsp.text().await.unwrap_or_default())
                    }
                    _ => None,
                };
                if let Ok(mut samples) = out.lock() {
                    samples.push(Sample {
                        at,
                        health_status,
                        health_ok,
                        release,
                        during_run,
                    });
                }
                // The sampling rate itself: there is nothing to wait for between two samples.
                tokio::time::sleep(every).await;
            }
        });
        Ok(Prober {
            stop,
            during_run,
            samples,
            task: Some(task),
        })
    }

    /// Marks the samples from now on as taken while a run is (or is not) in progress.
    pub fn set_during_run(&self, running: bool) {
        self.during_run.store(running, Ordering::SeqCst);
    }

    /// The samples so far.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits until `more` samples have been taken after this call; fails after `deadline`.
    pub async fn await_samples(&self, more: usize, deadline: Duration) -> Result<(), String> {
        let target = self.samples().len() + more;
        let started = Instant::now();
        while self.samples().len() < target {
            if started.elapsed() > deadline {
                return Err(format!(
                    "production was not sampled {more} times in {deadline:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Stops sampling and returns every sample.
    pub async fn stop(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.samples()
    }

    /// Stops sampling and asserts production answered healthy every time ([`always_healthy`]).
    pub async fn assert_always_healthy(self) {
        let samples = self.stop().await;
        if let Err(e) = always_healthy(&samples) {
            panic!("{e}");
        }
    }
}

/// Whether production answered `/health` with a success in every sample. A sample without an answer
/// is tolerated a few times: the emulator restarts both slots' processes during a swap, so a request in
/// that instant can find no listener, where App Service swaps without that gap. Production that stops
/// answering altogether is as down as one answering 500.
pub fn always_healthy(samples: &[Sample]) -> Result<(), String> {
    let total = samples.len();
    if total == 0 {
        return Err("production was never probed".into());
    }
    let bad: Vec<String> = samples
        .iter()
        .filter(|s| s.health_status != 0 && !rsp_ok(s.health_status))
        .map(|s| format!("{:.1}s: {}", s.at.as_secs_f64(), s.health_status))
        .collect();
    if !bad.is_empty() {
        let shown: Vec<&str> = bad.iter().take(8).map(String::as_str).collect();
        return Err(format!(
            "production was unhealthy in {} of {total} probes: {}",
            bad.len(),
            shown.join(", ")
        ));
    }
    // A swap's instant without a listener, at most once or twice per swap; never production gone.
    let unanswered = samples.iter().filter(|s| s.health_status == 0).count();
    if unanswered > (total / 5).max(3) {
        return Err(format!(
            "production did not answer {unanswered} of {total} probes"
        ));
    }
    Ok(())
}

fn rsp_ok(status: u16) -> bool {
    (200..300).contains(&status)
}

/// The release the example app's page names (`<b id=release>…</b>`).
pub fn release_in_page(page: &str) -> Option<String> {
    let start = page.find("<b id=release>")? + "<b id=release>".len();
    let end = page[start..].find('<')? + start;
    Some(page[start..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(health_status: u16) -> Sample {
        Sample {
            at: Duration::ZERO,
            health_status,
            health_ok: health_status == 200,
            release: None,
            during_run: true,
        }
    }

    #[test]
    fn one_unhealthy_answer_fails_and_a_few_unanswered_probes_do_not() {
        let mut samples = vec![sample(200); 20];
        assert_eq!(always_healthy(&samples), Ok(()));
        samples[3] = sample(0);
        samples[9] = sample(0);
        assert_eq!(always_healthy(&samples), Ok(()), "a swap's instant");
        samples[12] = sample(503);
        assert!(always_healthy(&samples).is_err(), "one 503 is an outage");
        let gone = vec![sample(0); 20];
        assert!(
            always_healthy(&gone).is_err(),
            "no answer at all is an outage"
        );
        assert!(always_healthy(&[]).is_err(), "never probed");
    }

    #[test]
    fn the_release_is_read_from_the_page() {
        let page =
            "<p>Release <b id=release>20261122-2</b> in <b id=environment>production</b>.</p>";
        assert_eq!(release_in_page(page).as_deref(), Some("20261122-2"));
        assert_eq!(release_in_page("<p>default page</p>"), None);
    }
}
