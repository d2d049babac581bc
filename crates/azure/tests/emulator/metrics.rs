//! Azure Monitor's Metrics - List through the client: every metric of a query in one request with
//! the REST contract's parameters, the answer's points per metric, counted from what the slot served,
//! and throttling and cancellation as every other ARM read.

use super::*;
use slot_release_azure::{MetricsQuery, PageClient};

fn query(from: i64, to: i64) -> MetricsQuery {
    MetricsQuery {
        names: vec![
            "Requests".into(),
            "Http5xx".into(),
            "HttpResponseTime".into(),
        ],
        from_unix: from,
        to_unix: to,
        interval: "PT1M".into(),
        aggregations: vec!["Total".into(), "Count".into()],
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[tokio::test]
async fn one_request_reads_every_metric_counted_from_the_slot_s_answers() {
    let env = start().await;
    let web = azure(&env).web_app(&app_ref());
    let staging = slot("staging");
    let from = now() - 120;
    let before = web
        .metrics(&staging, &query(from, now() + 1), &CancellationToken::new())
        .await
        .expect("metrics");
    let requests_before = before[0].sum(|p| p.total);
    let pages = PageClient::new(&HttpOptions::emulator(env.em.ca_pem())).expect("client");
    let url = url::Url::parse(&env.em.app_url(APP, "staging")).expect("url");
    for _ in 0..3 {
        pages.probe(&url, &[200], None).await;
    }
    let calls_before = count(&env, "management.", "/providers/Microsoft.Insights/metrics");
    let series = web
        .metrics(&staging, &query(from, now() + 1), &CancellationToken::new())
        .await
        .expect("metrics");
    assert_eq!(
        count(&env, "management.", "/providers/Microsoft.Insights/metrics") - calls_before,
        1,
        "batched in one request"
    );
    let record = env
        .em
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path.ends_with("/providers/Microsoft.Insights/metrics"))
        .expect("recorded");
    assert!(record.path.contains("/slots/staging/"), "{}", record.path);
    assert_eq!(record.api_version.as_deref(), Some("2023-10-01"));
    let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["Requests", "Http5xx", "HttpResponseTime"]);
    assert_eq!(series[0].unit, "Count");
    assert!(
        series[0].points.len() >= 2,
        "one point a minute: {series:?}"
    );
    assert_eq!(series[0].sum(|p| p.total) - requests_before, 3.0);
    assert!(series[2].sum(|p| p.count) >= 3.0, "{series:?}");
}

#[tokio::test]
async fn a_throttled_read_waits_out_retry_after_and_a_cancel_stops_it() {
    let env = start().await;
    let web = azure(&env).web_app(&app_ref());
    let production = SlotName::production();
    web.get_slot(&production, &CancellationToken::new())
        .await
        .expect("token");
    let route = RouteMatch {
        host: Some("management.*".into()),
        method: Some("GET".into()),
        path: Some("*/providers/Microsoft.Insights/metrics".into()),
        body_contains: None,
    };
    env.em.inject(Fault::Status {
        route: route.clone(),
        status: 429,
        retry_after_secs: Some(1),
        scope: Some(Scope {
            count: Some(1),
            share: None,
        }),
    });
    let started = Instant::now();
    let series = web
        .metrics(
            &production,
            &query(now() - 60, now()),
            &CancellationToken::new(),
        )
        .await
        .expect("429 absorbed");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(series.len(), 3);
    env.em.inject(Fault::Status {
        route,
        status: 429,
        retry_after_secs: Some(2),
        scope: None,
    });
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.cancel();
    });
    let started = Instant::now();
    let err = web
        .metrics(&production, &query(now() - 60, now()), &cancel)
        .await
        .expect_err("cancelled");
    assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_empty_or_backwards_query_is_refused_before_any_request() {
    let env = start().await;
    let web = azure(&env).web_app(&app_ref());
    let err = web
        .metrics(
            &SlotName::production(),
            &query(100, 100),
            &CancellationToken::new(),
        )
        .await
        .expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert_eq!(count(&env, "management.", "/metrics"), 0);
}
