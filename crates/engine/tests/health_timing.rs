//! The health gate's and the watch's timing on a fake clock: a scripted app answers each probe at once and
//! tokio's paused time advances only through the gate's own waits, so every probe's moment and every
//! report's duration is exact. (health.rs covers what real HTTP adds: bodies, drops, hangs, refusals.)

use std::sync::Mutex;
use std::time::Duration;

use slot_release_engine::Error;
use slot_release_engine::health::{
    Gate, HealthCheck, ProbeOutcome, ProbeTarget, Prober, Watch, gate, watch,
};
use slot_release_pipelines::{Log, OutputMode};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// An app whose n-th answer (1-based) is healthy when `healthy(n)`, recording when each probe came.
struct Scripted {
    healthy: Box<dyn Fn(u32) -> bool + Send + Sync>,
    origin: Instant,
    probes: Mutex<Vec<Duration>>,
}

impl Scripted {
    fn new(healthy: impl Fn(u32) -> bool + Send + Sync + 'static) -> Scripted {
        Scripted {
            healthy: Box::new(healthy),
            origin: Instant::now(),
            probes: Mutex::new(Vec::new()),
        }
    }

    fn at_secs(&self) -> Vec<f64> {
        let probes = self.probes.lock().unwrap();
        probes.iter().map(Duration::as_secs_f64).collect()
    }
}

#[async_trait::async_trait]
impl Prober for Scripted {
    async fn probe(&self, _: &url::Url, _: &HealthCheck) -> ProbeOutcome {
        let n = {
            let mut probes = self.probes.lock().unwrap();
            probes.push(self.origin.elapsed());
            u32::try_from(probes.len()).unwrap()
        };
        if (self.healthy)(n) {
            ProbeOutcome::Healthy { status: 200 }
        } else {
            ProbeOutcome::UnexpectedStatus { status: 503 }
        }
    }
}

fn target() -> ProbeTarget {
    ProbeTarget {
        base_url: url::Url::parse("https://app-staging.example.test/").unwrap(),
        label: "staging".to_owned(),
    }
}

fn check(interval_ms: u64) -> HealthCheck {
    HealthCheck {
        interval: Duration::from_millis(interval_ms),
        ..HealthCheck::new("/health")
    }
}

fn log() -> Log {
    Log::new(OutputMode::Plain, Box::new(std::io::sink()))
}

#[tokio::test(start_paused = true)]
async fn a_watch_observes_its_whole_window_end_included() {
    let app = Scripted::new(|_| true);
    let spec = Watch {
        check: check(1_000),
        window: Duration::from_secs(10),
        unhealthy_after: 3,
    };
    let report = watch(&app, &target(), &spec, &CancellationToken::new(), &log())
        .await
        .unwrap();
    assert_eq!(
        app.at_secs(),
        [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    );
    assert_eq!(report.duration_ms, 10_000);
    assert!(report.healthy);
}

#[tokio::test(start_paused = true)]
async fn a_sub_second_watch_lasts_as_long_as_planned() {
    let app = Scripted::new(|_| true);
    let spec = Watch {
        check: check(1_000),
        window: Duration::from_millis(200),
        unhealthy_after: 1,
    };
    let report = watch(&app, &target(), &spec, &CancellationToken::new(), &log())
        .await
        .unwrap();
    assert_eq!(app.at_secs(), [0.0, 0.2]);
    assert_eq!(report.duration_ms, 200);
}

#[tokio::test(start_paused = true)]
async fn the_watch_ends_at_the_failure_that_makes_production_unhealthy() {
    let app = Scripted::new(|n| ![3, 5, 7].contains(&n));
    let spec = Watch {
        check: check(1_000),
        window: Duration::from_secs(60),
        unhealthy_after: 3,
    };
    let err = watch(&app, &target(), &spec, &CancellationToken::new(), &log())
        .await
        .unwrap_err();
    let Error::Unhealthy { report } = err else {
        panic!("{err}")
    };
    assert_eq!(report.duration_ms, 6_000, "the 7th probe, at 6 s");
    assert_eq!((report.probes_total, report.failures), (7, 3));
}

#[tokio::test(start_paused = true)]
async fn a_gate_passes_at_its_first_run_of_consecutive_successes() {
    let app = Scripted::new(|n| n >= 4);
    let spec = Gate {
        check: check(2_000),
        successes_needed: 3,
        timeout: Duration::from_secs(60),
        fail_after: u32::MAX,
    };
    let report = gate(&app, &target(), &spec, &CancellationToken::new(), &log())
        .await
        .unwrap();
    assert_eq!(app.at_secs(), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
    assert_eq!(report.duration_ms, 10_000);
}

#[tokio::test(start_paused = true)]
async fn a_gate_that_can_no_longer_fit_its_successes_gives_up_before_its_deadline() {
    let app = Scripted::new(|_| false);
    let spec = Gate {
        check: check(2_000),
        successes_needed: 3,
        timeout: Duration::from_secs(10),
        fail_after: u32::MAX,
    };
    let started = Instant::now();
    let err = gate(&app, &target(), &spec, &CancellationToken::new(), &log())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::GateFailed { .. }), "{err}");
    // After the probe at 6 s, three more at 8, 10 and 12 s would end past the 10 s deadline.
    assert_eq!(app.at_secs(), [0.0, 2.0, 4.0, 6.0]);
    assert_eq!(started.elapsed(), Duration::from_secs(6));
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_watch_stops_at_once_with_its_report() {
    let app = Scripted::new(|_| true);
    let spec = Watch {
        check: check(1_000),
        window: Duration::from_secs(60),
        unhealthy_after: 3,
    };
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(3_500)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let err = watch(&app, &target(), &spec, &cancel, &log())
        .await
        .unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_millis(3_500));
    let Error::WatchCancelled { report } = err else {
        panic!("{err}")
    };
    assert_eq!(report.probes_total, 4);
}
