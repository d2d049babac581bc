//! The Log Analytics query API through the client: a KQL query with its time span, answered from
//! the requests the slots served, a token issued for the API's own audience, and a query the
//! service cannot run reported with its inner error.

use super::*;
use slot_release_azure::PageClient;

const WORKSPACE: &str = "6f1c3f7e-2b1a-4c59-9a51-0d5b6c7e8f90";

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[tokio::test]
async fn a_query_counts_what_the_slot_answered_in_its_time_span() {
    let env = start().await;
    let logs = azure(&env)
        .log_analytics()
        .expect("the emulator cloud has the API");
    let pages = PageClient::new(&HttpOptions::emulator(env.em.ca_pem())).expect("client");
    let url = url::Url::parse(&env.em.app_url(APP, "staging")).expect("url");
    let from = now() - 1;
    for _ in 0..4 {
        pages.probe(&url, &[200], None).await;
    }
    let table = logs
        .query(
            WORKSPACE,
            "AppRequests | where AppRoleName == 'contoso-web-staging' | summarize Requests = count(), Failed = countif(Success == false) by AppRoleName",
            from,
            now() + 1,
            &CancellationToken::new(),
        )
        .await
        .expect("query");
    assert_eq!(table.name, "PrimaryResult");
    let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["AppRoleName", "Requests", "Failed"]);
    assert_eq!(table.rows.len(), 1, "{table:?}");
    assert_eq!(table.rows[0][1], 4, "{table:?}");
    // The span is applied on top of the query: one that ended before the requests holds none.
    let table = logs
        .query(
            WORKSPACE,
            "AppRequests | summarize count()",
            from - 600,
            from - 300,
            &CancellationToken::new(),
        )
        .await
        .expect("query");
    assert_eq!(table.rows, [vec![serde_json::json!(0)]]);
    let record = env
        .em
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path.ends_with("/query"))
        .expect("recorded");
    assert!(
        record.host.starts_with("api.loganalytics."),
        "{}",
        record.host
    );
    assert_eq!(record.path, format!("/v1/workspaces/{WORKSPACE}/query"));
}

#[tokio::test]
async fn a_query_outside_the_service_s_grammar_is_a_400_naming_why() {
    let env = start().await;
    let logs = azure(&env).log_analytics().expect("the API");
    let err = logs
        .query(
            WORKSPACE,
            "AppRequests | where (",
            now() - 60,
            now(),
            &CancellationToken::new(),
        )
        .await
        .expect_err("refused");
    assert_eq!(err.status(), Some(400), "{err}");
    assert!(err.to_string().contains("BadArgumentError"), "{err}");
    let err = logs
        .query(
            "not a workspace/../x",
            "AppRequests",
            now() - 60,
            now(),
            &CancellationToken::new(),
        )
        .await
        .expect_err("refused before sending");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
}
