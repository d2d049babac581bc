//! Azure Monitor's metrics of a slot, counted from what its front end answered: the slot that served
//! a request counts it (also one routed there from production's host), by status class, with its
//! response time; Azure's query and answer shapes, and its refusal of a metric App Service lacks.

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};

/// `Total` of each metric over the last hour as one `FULL` point, for `slot` (`None`: the site).
async fn totals(f: &Fixture, slot: Option<&str>, metrics: &str) -> Vec<(String, f64)> {
    let resource = slot.map(|s| format!("/slots/{s}")).unwrap_or_default();
    let url = f.site(&format!(
        "{resource}/providers/Microsoft.Insights/metrics?api-version=2023-10-01&timespan=PT1H&interval=FULL&metricnames={metrics}&aggregation=Total"
    ));
    let r = f.arm_call(Method::GET, &url, None).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    v["value"]
        .as_array()
        .expect("value")
        .iter()
        .map(|m| {
            let data = m["timeseries"][0]["data"].as_array().expect("data");
            assert_eq!(data.len(), 1, "FULL is one point: {m}");
            (
                m["name"]["value"].as_str().expect("name").to_owned(),
                data[0]["total"].as_f64().expect("total"),
            )
        })
        .collect()
}

fn delta(after: &[(String, f64)], before: &[(String, f64)]) -> Vec<(String, f64)> {
    after
        .iter()
        .zip(before)
        .map(|((name, a), (_, b))| (name.clone(), a - b))
        .collect()
}

fn named(pairs: &[(&str, f64)]) -> Vec<(String, f64)> {
    pairs.iter().map(|(n, v)| ((*n).to_owned(), *v)).collect()
}

#[tokio::test]
async fn the_slot_that_answered_counts_the_request_by_status_class() {
    let f = start().await;
    let prod = f.emu.app_url(APP, "production");
    let staging = f.emu.app_url(APP, "staging");
    eventually_body(&f, &prod, "v1").await;
    eventually_body(&f, &staging, "v2").await;
    let names = "Requests,Http2xx,Http4xx,Http5xx";
    let (stage_before, prod_before) = (
        totals(&f, Some("staging"), names).await,
        totals(&f, None, names).await,
    );
    for path in ["/", "/", "/", "/status/503", "/status/500", "/status/404"] {
        f.get_text(&format!("{staging}{path}")).await;
    }
    // Everything on production's host goes to staging (the rule names its host, as ARM gives it): staging
    // answered, staging counts it.
    let host = f.emu.app_host(APP, "staging");
    let r = f.arm_call(Method::PATCH, &f.site("/config/web?api-version=2018-02-01"), Some(json!({"properties": {"experiments": {"rampUpRules": [{"actionHostName": host, "reroutePercentage": 100.0, "name": "staging"}]}}}))).await;
    assert_eq!(r.status(), 200);
    for _ in 0..4 {
        assert_eq!(f.get_text(&prod).await, (200, "v2".to_owned()));
    }
    assert_eq!(
        delta(&totals(&f, Some("staging"), names).await, &stage_before),
        named(&[
            ("Requests", 10.0),
            ("Http2xx", 7.0),
            ("Http4xx", 1.0),
            ("Http5xx", 2.0)
        ])
    );
    assert_eq!(
        delta(&totals(&f, None, names).await, &prod_before),
        named(&[
            ("Requests", 0.0),
            ("Http2xx", 0.0),
            ("Http4xx", 0.0),
            ("Http5xx", 0.0)
        ])
    );
}

#[tokio::test]
async fn the_answer_has_azure_monitors_shape_one_point_per_grain() {
    let f = start().await;
    let staging = f.emu.app_url(APP, "staging");
    eventually_body(&f, &staging, "v2").await;
    let url = f.site("/slots/staging/providers/Microsoft.Insights/metrics?api-version=2023-10-01&timespan=PT5M&interval=PT1M&metricnames=HttpResponseTime,Requests&aggregation=Average,Count");
    let r = f.arm_call(Method::GET, &url, None).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["interval"], "PT1M");
    assert_eq!(v["namespace"], "Microsoft.Web/sites/slots");
    assert!(v["resourceregion"].is_string());
    assert!(v["timespan"].as_str().expect("timespan").contains('/'));
    let metrics = v["value"].as_array().expect("value");
    assert_eq!(metrics.len(), 2);
    let time = &metrics[0];
    assert_eq!(time["type"], "Microsoft.Insights/metrics");
    assert_eq!(time["unit"], "Seconds");
    assert!(
        time["id"]
            .as_str()
            .expect("id")
            .ends_with("/slots/staging/providers/Microsoft.Insights/metrics/HttpResponseTime")
    );
    let data = time["timeseries"][0]["data"].as_array().expect("data");
    // Five minutes of one-minute grains, aligned to the minute: five or six points.
    assert!((5..=6).contains(&data.len()), "{data:?}");
    let served: Vec<&Value> = data.iter().filter(|p| p.get("average").is_some()).collect();
    assert!(
        !served.is_empty(),
        "the warm-up requests were timed: {data:?}"
    );
    for p in &served {
        assert!(p["average"].as_f64().expect("average") > 0.0);
        assert!(p["count"].as_f64().expect("count") >= 1.0);
        assert!(p.get("total").is_none(), "only the aggregations asked for");
    }
}

#[tokio::test]
async fn a_metric_app_service_does_not_define_is_refused_naming_the_valid_ones() {
    let f = start().await;
    let r = f
        .arm_call(
            Method::GET,
            &f.site("/providers/Microsoft.Insights/metrics?api-version=2023-10-01&metricnames=Requests,CpuPercentage"),
            None,
        )
        .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["code"], "BadRequest");
    let message = v["message"].as_str().expect("message");
    assert!(
        message.contains("metric: CpuPercentage, Valid metrics: Requests,"),
        "{message}"
    );
    for bad in ["interval=PT30S", "timespan=yesterday", "aggregation=Median"] {
        let r = f
            .arm_call(
                Method::GET,
                &f.site(&format!(
                    "/providers/Microsoft.Insights/metrics?api-version=2023-10-01&{bad}"
                )),
                None,
            )
            .await;
        assert_eq!(r.status(), 400, "{bad}");
    }
}
