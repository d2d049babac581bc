//! Health gate and watch tests against a real local HTTP server that turns healthy, never does, flaps,
//! drops connections, hangs or answers with the wrong body.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use slot_release_engine::Error;
use slot_release_engine::health::{
    AppFailure, CrashCheck, DEFAULT_FAIL_AFTER, Gate, GateReport, HealthCheck, ProbeOutcome,
    ProbeTarget, Watch, gate, gate_with, watch,
};
use slot_release_pipelines::{Log, OutputMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What the server does with the n-th request (1-based).
#[derive(Clone)]
enum Reply {
    Answer(u16, &'static str),
    /// Close the connection without answering.
    Drop,
    /// Never answer.
    Hang,
}

struct Server {
    addr: SocketAddr,
    requests: Arc<AtomicU32>,
}

async fn server(behaviour: impl Fn(u32) -> Reply + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicU32::new(0));
    let behaviour = Arc::new(behaviour);
    let counter = requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let behaviour = behaviour.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                match behaviour(n) {
                    Reply::Answer(status, body) => {
                        let response = format!(
                            "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = stream.write_all(response.as_bytes()).await;
                        let _ = stream.shutdown().await;
                    }
                    Reply::Drop => drop(stream),
                    Reply::Hang => {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        drop(stream);
                    }
                }
            });
        }
    });
    Server { addr, requests }
}

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn log() -> (Log, Sink) {
    let sink = Sink::default();
    (Log::new(OutputMode::Plain, Box::new(sink.clone())), sink)
}

fn client() -> slot_release_azure::PageClient {
    let opts = slot_release_azure::HttpOptions {
        proxy: slot_release_azure::ProxyOptions::default(),
        ..slot_release_azure::HttpOptions::default()
    };
    slot_release_azure::PageClient::new(&opts).unwrap()
}

fn target(addr: SocketAddr) -> ProbeTarget {
    ProbeTarget {
        base_url: url::Url::parse(&format!("http://{addr}/")).unwrap(),
        label: "staging".to_owned(),
    }
}

fn check(successes: u32, interval_ms: u64, timeout_ms: u64) -> Gate {
    Gate {
        check: HealthCheck {
            interval: Duration::from_millis(interval_ms),
            probe_timeout: Duration::from_millis(500),
            ..HealthCheck::new("/health")
        },
        successes_needed: successes,
        timeout: Duration::from_millis(timeout_ms),
        fail_after: DEFAULT_FAIL_AFTER,
    }
}

/// A watch of `window_ms` with the probes of `check(_, interval_ms, _)`.
fn watching(interval_ms: u64, window_ms: u64, unhealthy_after: u32) -> Watch {
    Watch {
        check: check(1, interval_ms, 1).check,
        window: Duration::from_millis(window_ms),
        unhealthy_after,
    }
}

fn probe_lines(sink: &Sink) -> usize {
    sink.text()
        .lines()
        .filter(|l| l.contains("] probe "))
        .count()
}

#[tokio::test]
async fn gate_passes_once_the_app_turns_healthy() {
    let srv = server(|n| {
        if n <= 3 {
            Reply::Answer(503, "warming up")
        } else {
            Reply::Answer(200, "ok")
        }
    })
    .await;
    let (log, sink) = log();
    let report = gate(
        &client(),
        &target(srv.addr),
        &check(3, 30, 5_000),
        &CancellationToken::new(),
        &log,
    )
    .await
    .unwrap();
    assert!(report.passed);
    assert_eq!(
        (report.probes_total, report.failures, report.successes),
        (6, 3, 3)
    );
    assert_eq!(
        report.probes[0].outcome,
        ProbeOutcome::UnexpectedStatus { status: 503 }
    );
    assert_eq!(
        report.last.as_ref().unwrap().outcome,
        ProbeOutcome::Healthy { status: 200 }
    );
    assert_eq!(srv.requests.load(Ordering::SeqCst), 6);
    assert_eq!(
        probe_lines(&sink),
        6,
        "one line per probe:\n{}",
        sink.text()
    );
    assert!(
        sink.text().contains("probe 6 staging: 200 healthy in "),
        "{}",
        sink.text()
    );
    assert!(sink.text().contains("(3/3)"));
}

/// A crash check that answers `failure` from its `after`-th call on, counting the calls.
struct Crash {
    after: u32,
    calls: AtomicU32,
    failure: AppFailure,
}

#[async_trait::async_trait]
impl CrashCheck for Crash {
    async fn crashed(&self) -> Option<AppFailure> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        (n >= self.after).then(|| self.failure.clone())
    }
}

fn crash(after: u32) -> Crash {
    Crash {
        after,
        calls: AtomicU32::new(0),
        failure: AppFailure {
            summary: "the startup command exited with status 1 after 0.4 s".to_owned(),
            log_tail: vec![
                "Traceback (most recent call last):".to_owned(),
                "ModuleNotFoundError: No module named 'gunicorn'".to_owned(),
            ],
        },
    }
}

#[tokio::test]
async fn a_crashed_app_fails_the_gate_at_the_probe_that_finds_it_down() {
    let srv = server(|_| Reply::Answer(503, ":( Application Error")).await;
    let (log, sink) = log();
    let check_crash = crash(2);
    let started = Instant::now();
    let err = gate_with(
        &client(),
        &target(srv.addr),
        &check(3, 100, 10_000),
        Some(&check_crash),
        &CancellationToken::new(),
        &log,
    )
    .await
    .unwrap_err();
    // The first 503 finds the app still starting; the second finds it crashed, and the gate ends.
    assert!(started.elapsed() < Duration::from_secs(2), "{err}");
    assert_eq!(check_crash.calls.load(Ordering::SeqCst), 2);
    let Error::AppCrashed { report, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(report.probes_total, 2);
    assert_eq!(err.gate_report().map(|r| r.probes_total), Some(2));
    assert!(
        err.to_string().ends_with(
            "did not pass the health gate: the startup command exited with status 1 after 0.4 s: ModuleNotFoundError: No module named 'gunicorn'"
        ),
        "{err}"
    );
    let text = sink.text();
    assert!(
        text.contains("Traceback (most recent call last):"),
        "{text}"
    );
}

#[tokio::test]
async fn the_crash_check_is_not_asked_while_the_app_answers() {
    // 404 and healthy answers come from a running app: nothing to diagnose.
    let srv = server(|n| {
        if n == 1 {
            Reply::Answer(404, "no route")
        } else {
            Reply::Answer(200, "ok")
        }
    })
    .await;
    let (log, _) = log();
    let check_crash = crash(1);
    let report = gate_with(
        &client(),
        &target(srv.addr),
        &check(2, 50, 5_000),
        Some(&check_crash),
        &CancellationToken::new(),
        &log,
    )
    .await
    .unwrap();
    assert!(report.passed);
    assert_eq!(check_crash.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn gate_fails_at_its_deadline_when_never_healthy() {
    let srv = server(|_| Reply::Answer(500, "boom")).await;
    let (log, _) = log();
    let started = Instant::now();
    // Never early: this is the deadline's test.
    let spec = Gate {
        fail_after: u32::MAX,
        ..check(2, 100, 700)
    };
    let err = gate(
        &client(),
        &target(srv.addr),
        &spec,
        &CancellationToken::new(),
        &log,
    )
    .await
    .unwrap_err();
    let elapsed = started.elapsed();
    let Error::GateFailed { report, .. } = &err else {
        panic!("{err}")
    };
    assert!(!report.passed);
    assert_eq!(report.successes, 0);
    assert!(report.failures >= 5, "{report:?}");
    assert!(elapsed < Duration::from_millis(1_500), "took {elapsed:?}");
    assert!(err.to_string().contains("500 unexpected status"), "{err}");
}

#[tokio::test]
async fn flapping_app_never_gets_consecutive_successes() {
    let flap = |n: u32| {
        if n.is_multiple_of(2) {
            Reply::Answer(200, "ok")
        } else {
            Reply::Answer(502, "bad gateway")
        }
    };
    let srv = server(flap).await;
    let (log, _) = log();
    let err = gate(
        &client(),
        &target(srv.addr),
        &check(2, 20, 400),
        &CancellationToken::new(),
        &log,
    )
    .await
    .unwrap_err();
    let Error::GateFailed { report, .. } = err else {
        panic!("{err}")
    };
    assert!(report.successes >= 3 && report.failures >= 3, "{report:?}");

    // With one success required, the same app passes at its first 200.
    let srv = server(flap).await;
    let report = gate(
        &client(),
        &target(srv.addr),
        &check(1, 20, 400),
        &CancellationToken::new(),
        &log,
    )
    .await
    .unwrap();
    assert_eq!(report.probes_total, 2);
}

#[tokio::test]
async fn dropped_connections_are_tolerated_and_counted() {
    let srv = server(|n| {
        if n <= 2 {
            Reply::Drop
        } else {
            Reply::Answer(200, "ok")
        }
    })
    .await;
    let (log, sink) = log();
    let report = gate(
        &client(),
        &target(srv.addr),
        &check(2, 20, 5_000),
        &CancellationToken::new(),
        &log,
    )
    .await
    .unwrap();
    assert_eq!(
        (report.transient_errors, report.failures, report.successes),
        (2, 2, 2)
    );
    assert!(
        matches!(
            report.probes[0].outcome,
            ProbeOutcome::ConnectionError { .. }
        ),
        "{report:?}"
    );
    assert!(sink.text().contains("connection error"), "{}", sink.text());
}

#[tokio::test]
async fn refused_connections_fail_the_gate_with_the_cause() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (log, _) = log();
    let err = gate(
        &client(),
        &target(addr),
        &check(1, 50, 300),
        &CancellationToken::new(),
        &log,
    )
    .await
    .unwrap_err();
    let Error::GateFailed { report, .. } = err else {
        panic!("{err}")
    };
    assert_eq!(report.transient_errors, report.probes_total);
    let last = report.last.unwrap();
    let ProbeOutcome::ConnectionError { message } = last.outcome else {
        panic!("{last:?}")
    };
    assert!(message.to_lowercase().contains("refused"), "{message}");
}

#[tokio::test]
async fn wrong_body_is_unhealthy_and_right_body_passes() {
    let srv = server(|n| {
        if n <= 2 {
            Reply::Answer(200, "status: starting")
        } else {
            Reply::Answer(200, "status: ok v2")
        }
    })
    .await;
    let (log, _) = log();
    let mut spec = check(1, 20, 2_000);
    spec.check.body_contains = Some("ok v2".to_owned());
    let report = gate(
        &client(),
        &target(srv.addr),
        &spec,
        &CancellationToken::new(),
        &log,
    )
    .await
    .unwrap();
    assert_eq!(
        report.probes[0].outcome,
        ProbeOutcome::BodyMismatch { status: 200 }
    );
    assert_eq!(report.probes_total, 3);
}

#[tokio::test]
async fn a_hanging_probe_times_out_and_the_gate_keeps_its_deadline() {
    let srv = server(|_| Reply::Hang).await;
    let (log, _) = log();
    let mut spec = check(1, 200, 700);
    spec.check.probe_timeout = Duration::from_millis(150);
    let started = Instant::now();
    let err = gate(
        &client(),
        &target(srv.addr),
        &spec,
        &CancellationToken::new(),
        &log,
    )
    .await
    .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "{:?}",
        started.elapsed()
    );
    let Error::GateFailed { report, .. } = err else {
        panic!("{err}")
    };
    assert!(
        report
            .probes
            .iter()
            .all(|p| p.outcome == ProbeOutcome::TimedOut),
        "{report:?}"
    );
}

#[tokio::test]
async fn cancellation_stops_the_gate_promptly_with_a_report() {
    let srv = server(|_| Reply::Hang).await;
    let (log, _) = log();
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let err = gate(
        &client(),
        &target(srv.addr),
        &check(3, 100, 60_000),
        &cancel,
        &log,
    )
    .await
    .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "{:?}",
        started.elapsed()
    );
    let Error::GateCancelled { report } = err else {
        panic!("{err}")
    };
    let report: &GateReport = &report;
    assert!(!report.passed);
}

#[tokio::test]
async fn watch_samples_the_whole_window_when_healthy() {
    let srv = server(|n| {
        if n == 2 {
            Reply::Answer(500, "blip")
        } else {
            Reply::Answer(200, "ok")
        }
    })
    .await;
    let (log, sink) = log();
    let started = Instant::now();
    let spec = watching(100, 500, 2);
    let report = watch(
        &client(),
        &target(srv.addr),
        &spec,
        &CancellationToken::new(),
        &log,
    )
    .await
    .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    assert!(report.healthy);
    assert_eq!(report.failures, 1, "one blip is below the limit");
    assert!((3..=6).contains(&report.probes_total), "{report:?}");
    assert_eq!(probe_lines(&sink), report.probes_total as usize);
}

#[tokio::test]
async fn watch_fails_fast_after_max_failures() {
    let srv = server(|n| {
        if n <= 2 {
            Reply::Answer(200, "ok")
        } else {
            Reply::Answer(503, "down")
        }
    })
    .await;
    let (log, _) = log();
    let spec = watching(50, 30000, 3);
    let started = Instant::now();
    let err = watch(
        &client(),
        &target(srv.addr),
        &spec,
        &CancellationToken::new(),
        &log,
    )
    .await
    .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let Error::Unhealthy { report } = &err else {
        panic!("{err}")
    };
    assert_eq!(
        (report.probes_total, report.successes, report.failures),
        (5, 2, 3)
    );
    assert!(err.to_string().contains("3 failed probe(s) of 5"), "{err}");
}

#[tokio::test]
async fn watch_is_cancellable() {
    let srv = server(|_| Reply::Answer(200, "ok")).await;
    let (log, _) = log();
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        trigger.cancel();
    });
    let spec = watching(50, 30000, 1);
    let started = Instant::now();
    let err = watch(&client(), &target(srv.addr), &spec, &cancel, &log)
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(1_500));
    let Error::WatchCancelled { report } = err else {
        panic!("{err}")
    };
    assert!(report.successes >= 2, "{report:?}");
}

#[tokio::test]
async fn invalid_specs_are_refused_before_any_probe() {
    let srv = server(|_| Reply::Answer(200, "ok")).await;
    let (log, _) = log();
    let mut no_status = check(1, 10, 100);
    no_status.check.statuses = Vec::new();
    let err = gate(
        &client(),
        &target(srv.addr),
        &no_status,
        &CancellationToken::new(),
        &log,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::InvalidHealthCheck { .. }), "{err}");
    let other_host = Gate::new("//elsewhere.test/health");
    let err = gate(
        &client(),
        &target(srv.addr),
        &other_host,
        &CancellationToken::new(),
        &log,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::InvalidHealthCheck { .. }), "{err}");
    assert_eq!(srv.requests.load(Ordering::SeqCst), 0);
}

/// App Service answers 200 with its default page when no app started: the gate must not take that for
/// the app, even with no expected text, and says why.
#[tokio::test]
async fn the_platform_default_page_fails_the_gate_with_what_it_means() {
    let srv = server(|_| {
        Reply::Answer(
            200,
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"/><title>Microsoft Azure App Service - Welcome</title></head><body><h1>Hey, Python developers!</h1></body></html>",
        )
    })
    .await;
    let (log, _) = log();
    let spec = check(1, 20, 600);
    let err = gate(
        &client(),
        &target(srv.addr),
        &spec,
        &CancellationToken::new(),
        &log,
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains(
            "App Service's default page answered: the app did not start; check the startup command"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn an_app_that_answers_500_fails_the_gate_early_not_at_its_deadline() {
    let srv = server(|_| Reply::Answer(500, "Internal Server Error")).await;
    let (log, sink) = log();
    let spec = Gate {
        fail_after: 3,
        ..check(2, 20, 60_000)
    };
    let started = Instant::now();
    let err = gate(
        &client(),
        &target(srv.addr),
        &spec,
        &CancellationToken::new(),
        &log,
    )
    .await
    .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let Error::GateFailedEarly {
        report,
        consecutive,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!((*consecutive, report.probes_total), (3, 3), "{report:?}");
    assert_eq!(srv.requests.load(Ordering::SeqCst), 3);
    assert!(err.to_string().contains("500 unexpected status"), "{err}");
    assert!(err.to_string().contains("failAfter"), "{err}");
    assert!(
        sink.text()
            .contains("fails after 3 consecutive definite failure(s)"),
        "{}",
        sink.text()
    );
}

#[tokio::test]
async fn what_a_starting_app_answers_never_fails_the_gate_early() {
    // Each of these is a starting app (or App Service's front end before it): with failAfter 1 the
    // gate still runs to its deadline.
    let starting = |n: u32| match n % 6 {
        0 => Reply::Answer(502, "bad gateway"),
        1 => Reply::Answer(503, "not ready"),
        2 => Reply::Answer(504, "gateway timeout"),
        3 => Reply::Answer(429, "slow down"),
        4 => Reply::Answer(200, "starting"),
        _ => Reply::Drop,
    };
    let srv = server(starting).await;
    let (log, _) = log();
    let mut spec = Gate {
        fail_after: 1,
        ..check(1, 20, 600)
    };
    spec.check.body_contains = Some("ok".to_owned());
    let err = gate(
        &client(),
        &target(srv.addr),
        &spec,
        &CancellationToken::new(),
        &log,
    )
    .await
    .unwrap_err();
    let Error::GateFailed { report, .. } = &err else {
        panic!("{err}")
    };
    assert!(report.probes_total >= 6, "{report:?}");
}

#[tokio::test]
async fn a_starting_answer_between_500s_restarts_the_count_and_a_healthy_app_passes() {
    let srv = server(|n| match n {
        1 | 2 | 4 | 5 => Reply::Answer(500, "boom"),
        3 => Reply::Answer(503, "not ready"),
        _ => Reply::Answer(200, "ok"),
    })
    .await;
    let (log, _) = log();
    let spec = Gate {
        fail_after: 3,
        ..check(2, 20, 5_000)
    };
    let report = gate(
        &client(),
        &target(srv.addr),
        &spec,
        &CancellationToken::new(),
        &log,
    )
    .await
    .unwrap();
    assert_eq!((report.probes_total, report.failures), (7, 5), "{report:?}");
}

#[test]
fn definite_failures_are_the_answers_waiting_will_not_change() {
    let definite = |o: ProbeOutcome| o.is_definite_failure();
    for status in [400, 401, 403, 404, 500, 501, 505, 599] {
        assert!(
            definite(ProbeOutcome::UnexpectedStatus { status }),
            "{status}"
        );
    }
    for status in [301, 408, 429, 502, 503, 504] {
        assert!(
            !definite(ProbeOutcome::UnexpectedStatus { status }),
            "{status}"
        );
    }
    assert!(definite(ProbeOutcome::DefaultPage { status: 200 }));
    assert!(!definite(ProbeOutcome::BodyMismatch { status: 200 }));
    assert!(!definite(ProbeOutcome::TimedOut));
    assert!(!definite(ProbeOutcome::Healthy { status: 200 }));
    assert!(!definite(ProbeOutcome::ConnectionError {
        message: "refused".into()
    }));
}
