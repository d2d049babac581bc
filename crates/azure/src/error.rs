//! The one error type of the Azure client, with the context a release log needs (operation, URL path,
//! HTTP status, Azure error code and message) and a classification the engine uses to decide retries.

use std::time::Duration;

/// What kind of failure an [`AzureError`] is, so callers can decide without matching on text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The configuration handed to us (service connection, options, names) is wrong; nothing was sent.
    Config,
    /// No token could be obtained.
    Authentication,
    /// The caller lacks permission (403).
    Forbidden,
    /// The resource does not exist (404).
    NotFound,
    /// Another operation holds the resource (409 "in progress", deployment running); waiting may help.
    Conflict,
    /// Throttled (429).
    Throttled,
    /// Server-side failure (5xx) or a transient platform condition (swap warm-up, VM allocation changed).
    Transient,
    /// The network failed (connect, reset, timeout).
    Network,
    /// TLS failed (unknown issuer, bad certificate); retrying will not help.
    Tls,
    /// A long-running operation or deployment ended in failure.
    OperationFailed,
    /// A wait reached its deadline.
    Timeout,
    /// The caller cancelled.
    Cancelled,
    /// Any other rejected request (400, 412, …).
    Rejected,
    /// The service answered something we could not understand.
    Protocol,
}

/// Every failure of the Azure client.
#[derive(Debug, thiserror::Error)]
pub enum AzureError {
    /// A service connection or option is missing a value or holds an invalid one.
    #[error("service connection {connection}: {message}")]
    Connection {
        /// Connection id (the GUID) or a description of where the value was read from.
        connection: String,
        /// What is missing or wrong, naming the field.
        message: String,
    },
    /// A name or option given by the caller is invalid.
    #[error("invalid {what} '{value}': {reason}")]
    InvalidInput {
        /// What kind of value (slot name, vault name, secret reference, …).
        what: &'static str,
        /// The offending value (never a secret).
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// The HTTP client could not be built (bad CA, bad proxy URL).
    #[error("cannot build the HTTP client: {message}")]
    HttpClient {
        /// What went wrong.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A token could not be obtained.
    #[error("cannot get an access token for {scope} ({credential}): {message}")]
    Authentication {
        /// Which credential kind failed.
        credential: &'static str,
        /// The scope requested.
        scope: String,
        /// The identity provider's message.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// Azure answered with a non-success status.
    #[error("{0}")]
    Http(Box<HttpFailure>),
    /// The request did not get an HTTP answer (connection refused or reset, timeout, TLS failure).
    #[error("{operation} failed: {message} ({method} {path})")]
    Transport {
        /// What we were doing.
        operation: String,
        /// HTTP method.
        method: &'static str,
        /// URL path (no query, no credentials).
        path: String,
        /// Short description.
        message: String,
        /// `Network` or `Tls`.
        kind: ErrorKind,
        /// The underlying error chain.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A long-running ARM operation ended in `Failed` or `Canceled`.
    #[error("{operation} ended with status {status}: {code}: {message}")]
    OperationFailed {
        /// What we were doing.
        operation: String,
        /// Final status (`Failed`, `Canceled`, or an HTTP status).
        status: String,
        /// Azure error code.
        code: String,
        /// Azure error message.
        message: String,
        /// Classification (swap warm-up failures are `Transient`).
        kind: ErrorKind,
    },
    /// A Kudu deployment failed; the deployment log is attached, and its last lines are part of the message
    /// (a failed platform build says why only there).
    #[error("deployment {id} failed: {message}{}", crate::kudu::log_tail(.log))]
    DeploymentFailed {
        /// Deployment id.
        id: String,
        /// Kudu's status text or message.
        message: String,
        /// The deployment log, oldest first.
        log: Vec<crate::kudu::LogEntry>,
    },
    /// A wait reached its deadline.
    #[error("{operation} did not finish within {waited:?}")]
    Timeout {
        /// What we were waiting for.
        operation: String,
        /// How long we waited.
        waited: Duration,
    },
    /// The caller cancelled the operation.
    #[error("{operation} was cancelled")]
    Cancelled {
        /// What was cancelled.
        operation: String,
    },
    /// One or more named Key Vault secrets could not be read; every failure is listed.
    #[error("cannot read {} secret(s) from vault {vault}: {}", failures.len(), failures.iter().map(|f| format!("{}: {}", f.name, f.message)).collect::<Vec<_>>().join("; "))]
    Secrets {
        /// Vault name.
        vault: String,
        /// One entry per failed secret.
        failures: Vec<SecretFailure>,
    },
    /// Azure answered something we could not parse.
    #[error("{operation}: unexpected response: {message}")]
    Protocol {
        /// What we were doing.
        operation: String,
        /// What was wrong.
        message: String,
    },
    /// A URL from Azure's answer (a status link, a redirect, a Kudu location, a paging link) points
    /// at a host the credential was not issued for; nothing was sent there.
    #[error(
        "{operation}: refused to send the request to {origin}: the URL came from an answer (a status \
         link, a redirect or a Kudu location) and points outside {issued_for}, so the request would \
         carry the credential to another host; a proxy or TLS inspection device may be rewriting \
         Azure's answers"
    )]
    ForeignHost {
        /// What we were doing.
        operation: String,
        /// `scheme://host[:port]` of the refused URL (never its path or query).
        origin: String,
        /// What the credential was issued for.
        issued_for: String,
    },
    /// Reading a local file (package, certificate) failed.
    #[error("{operation}: {path}: {source}")]
    Io {
        /// What we were doing.
        operation: String,
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A non-success HTTP response, with its context.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation} failed: HTTP {status} {code}: {message} ({method} {path})")]
pub struct HttpFailure {
    /// What we were doing, e.g. "get of web/staging".
    pub operation: String,
    /// HTTP method.
    pub method: &'static str,
    /// Host and URL path (no query, no credentials).
    pub path: String,
    /// HTTP status.
    pub status: u16,
    /// Azure error code (or the reason phrase when the body had none).
    pub code: String,
    /// Azure error message.
    pub message: String,
    /// `Retry-After` the service asked for, if any.
    pub retry_after: Option<Duration>,
    /// Classification of this response.
    pub kind: ErrorKind,
}

/// One secret that could not be read.
#[derive(Debug, Clone)]
pub struct SecretFailure {
    /// The reference as asked for (`name` or `name/version`).
    pub name: String,
    /// HTTP status, if the vault answered.
    pub status: Option<u16>,
    /// The vault's error code (`SecretNotFound`, `Forbidden`, …).
    pub code: String,
    /// The vault's message.
    pub message: String,
}

impl AzureError {
    /// The classification of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Connection { .. } | Self::InvalidInput { .. } | Self::HttpClient { .. } => {
                ErrorKind::Config
            }
            Self::Authentication { .. } => ErrorKind::Authentication,
            Self::Http(h) => h.kind,
            Self::Transport { kind, .. } | Self::OperationFailed { kind, .. } => *kind,
            Self::DeploymentFailed { .. } => ErrorKind::OperationFailed,
            Self::Timeout { .. } => ErrorKind::Timeout,
            Self::Cancelled { .. } => ErrorKind::Cancelled,
            Self::Secrets { failures, .. } => {
                if failures
                    .iter()
                    .all(|f| matches!(f.status, Some(429) | Some(500..=599) | None))
                {
                    ErrorKind::Transient
                } else {
                    ErrorKind::Rejected
                }
            }
            Self::Protocol { .. } | Self::ForeignHost { .. } => ErrorKind::Protocol,
            Self::Io { .. } => ErrorKind::Config,
        }
    }

    /// True when trying again later may succeed (throttling, 5xx, network, operation conflicts,
    /// transient swap failures). TLS and configuration errors are never transient.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::Conflict | ErrorKind::Throttled | ErrorKind::Transient | ErrorKind::Network
        )
    }

    /// HTTP status of the failed response, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Http(h) => Some(h.status),
            _ => None,
        }
    }

    /// How long the service asked us to wait before trying again, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Http(h) => h.retry_after,
            _ => None,
        }
    }

    /// Azure error code of the failed response or operation, if there was one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Http(h) => Some(&h.code),
            Self::OperationFailed { code, .. } => Some(code),
            _ => None,
        }
    }

    pub(crate) fn config(connection: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Connection {
            connection: connection.into(),
            message: message.into(),
        }
    }

    pub(crate) fn invalid(
        what: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self::InvalidInput {
            what,
            value: value.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn protocol(operation: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Protocol {
            operation: operation.into(),
            message: message.into(),
        }
    }
}

/// Classify an HTTP failure from its status and Azure error code/message. Swap failures that Azure
/// documents as transient are recognised here so the engine can retry the swap as a whole.
pub(crate) fn classify(status: u16, code: &str, message: &str) -> ErrorKind {
    let code_l = code.to_ascii_lowercase();
    let msg_l = message.to_ascii_lowercase();
    match status {
        401 => ErrorKind::Authentication,
        403 => ErrorKind::Forbidden,
        404 => ErrorKind::NotFound,
        408 => ErrorKind::Network,
        409 => ErrorKind::Conflict,
        // Swap warm-up failure ("Failed to warm up the site", ExpectationFailed) and allocation changes
        // are documented as retryable.
        417 => ErrorKind::Transient,
        429 => ErrorKind::Throttled,
        500..=599 => ErrorKind::Transient,
        _ if msg_l.contains("another operation is in progress")
            || msg_l.contains("operation is in progress") =>
        {
            ErrorKind::Conflict
        }
        _ if code_l.contains("warmup")
            || msg_l.contains("warm up")
            || msg_l.contains("warm-up")
            || msg_l.contains("vm allocation")
            || msg_l.contains("allocation changed") =>
        {
            ErrorKind::Transient
        }
        _ => ErrorKind::Rejected,
    }
}

/// Classify the final error of a failed long-running operation (no HTTP status of its own).
pub(crate) fn classify_operation(code: &str, message: &str) -> ErrorKind {
    match classify(0, code, message) {
        ErrorKind::Rejected => ErrorKind::OperationFailed,
        other => other,
    }
}

/// Result alias for this crate.
pub type Result<T, E = AzureError> = std::result::Result<T, E>;

/// An error and its causes, outermost first: the one walker of a source chain in the repository. Callers
/// search it (a TLS failure, a refusal of ours), print it, or take its last link with [`root_cause`].
pub fn causes<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(err), |e| e.source())
}

/// The innermost cause of an error: what went wrong under the wrappers' messages (a refused connection
/// under "error sending request").
pub fn root_cause<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> &'a (dyn std::error::Error + 'static) {
    causes(err).last().unwrap_or(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_walk_outermost_first_and_the_root_cause_is_the_innermost() {
        #[derive(Debug, thiserror::Error)]
        #[error("{0}")]
        struct Wrapped(
            &'static str,
            #[source] Box<dyn std::error::Error + Send + Sync>,
        );
        let err = Wrapped(
            "error sending request",
            Box::new(Wrapped(
                "client error (Connect)",
                Box::new(std::io::Error::other("connection refused")),
            )),
        );
        let messages: Vec<String> = causes(&err).map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "error sending request",
                "client error (Connect)",
                "connection refused"
            ]
        );
        assert_eq!(root_cause(&err).to_string(), "connection refused");
        let alone = std::io::Error::other("alone");
        assert_eq!(root_cause(&alone).to_string(), "alone");
    }

    #[test]
    fn classifies_documented_transient_swap_errors() {
        assert_eq!(
            classify(409, "Conflict", "Another operation is in progress"),
            ErrorKind::Conflict
        );
        assert_eq!(classify(417, "", "Failed to warm up"), ErrorKind::Transient);
        assert_eq!(
            classify(400, "BadRequest", "The VM allocation changed"),
            ErrorKind::Transient
        );
        assert_eq!(classify(400, "BadRequest", "bad body"), ErrorKind::Rejected);
        assert_eq!(
            classify_operation("SwapWarmupFailed", "x"),
            ErrorKind::Transient
        );
        assert_eq!(
            classify_operation("InternalError", "x"),
            ErrorKind::OperationFailed
        );
        assert_eq!(classify(503, "", ""), ErrorKind::Transient);
    }

    #[test]
    fn transient_excludes_tls_and_config() {
        let tls = AzureError::Transport {
            operation: "x".into(),
            method: "GET",
            path: "/".into(),
            message: "unknown issuer".into(),
            kind: ErrorKind::Tls,
            source: None,
        };
        assert!(!tls.is_transient());
        assert!(!AzureError::config("c", "m").is_transient());
    }
}
