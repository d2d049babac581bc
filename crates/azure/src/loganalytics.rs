//! The Log Analytics query API (`POST {endpoint}/v1/workspaces/{id}/query`), the Logs API that
//! Application Insights' workspace-based tables (`AppRequests`) are read through. Its token is issued
//! for the API's own audience (`https://api.loganalytics.io` in the public cloud) and its pipeline
//! trusts that one host, so the token can go nowhere else; retries, 429 and `Retry-After` and
//! cancellation are the ARM pipeline's.

use std::sync::Arc;

use azure_core::http::policies::Policy;
use azure_core::http::{Method, Pipeline};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::client::{Call, Idempotency, Inner, bearer_pipeline, parse_json};
use crate::error::{AzureError, Result};
use crate::hosts::{HostGuard, TrustedHosts};

/// A client of one cloud's Log Analytics query API.
#[derive(Debug, Clone)]
pub struct LogAnalytics {
    inner: Arc<Inner>,
    endpoint: Url,
    pipeline: Pipeline,
}

/// The answer's first table (`PrimaryResult`): column names and types, rows of JSON values.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct QueryTable {
    pub name: String,
    pub columns: Vec<QueryColumn>,
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// One column of a [`QueryTable`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct QueryColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Deserialize)]
struct Answer {
    tables: Vec<QueryTable>,
}

fn rfc3339(unix: i64) -> Result<String> {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .ok_or_else(|| AzureError::invalid("query time span", unix.to_string(), "out of range"))
}

impl LogAnalytics {
    pub(crate) fn new(inner: &Arc<Inner>) -> Result<Self> {
        let (endpoint, scope) = inner.cloud.log_analytics()?;
        let trusted = Arc::new(TrustedHosts::only(&endpoint, "the Log Analytics query API"));
        let guard: Arc<dyn Policy> = Arc::new(HostGuard(trusted));
        let pipeline = bearer_pipeline(
            &inner.http,
            &inner.cloud,
            inner.credential.clone(),
            scope,
            guard,
        );
        Ok(LogAnalytics {
            inner: inner.clone(),
            endpoint,
            pipeline,
        })
    }

    /// Runs `query` (KQL) on a workspace over `[from_unix, to_unix)` (the body's `timespan`, applied
    /// on top of any time filter in the query) and returns its first table.
    pub async fn query(
        &self,
        workspace: &str,
        query: &str,
        from_unix: i64,
        to_unix: i64,
        cancel: &CancellationToken,
    ) -> Result<QueryTable> {
        let op = format!("query Log Analytics workspace {workspace}");
        if workspace.is_empty()
            || !workspace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(AzureError::invalid(
                "workspace ID",
                workspace,
                "a workspace ID is a GUID",
            ));
        }
        let url = self
            .endpoint
            .join(&format!("v1/workspaces/{workspace}/query"))
            .map_err(|e| AzureError::invalid("workspace ID", workspace, e.to_string()))?;
        let body = serde_json::json!({
            "query": query,
            "timespan": format!("{}/{}", rfc3339(from_unix)?, rfc3339(to_unix)?),
        });
        let mut call = Call::new(&op, Method::Post, url).json(body);
        // A query only reads: repeating it after a failure is safe.
        call.idempotency = Idempotency::Idempotent;
        let rsp = self.inner.send_with(&self.pipeline, call, cancel).await?;
        let answer: Answer = parse_json(&op, &rsp)?;
        answer
            .tables
            .into_iter()
            .next()
            .ok_or_else(|| AzureError::protocol(&op, "the answer holds no table"))
    }
}
