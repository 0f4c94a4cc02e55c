//! What can go wrong talking to the server, split by what the agent does about it: retry with
//! backoff (the network, the server restarting) or stop with a clear message (configuration
//! that retrying cannot fix).

use super::client::Endpoint;

#[derive(Debug, thiserror::Error)]
pub(crate) enum UplinkError {
    /// Retried with backoff.
    #[error("{0}")]
    Unreachable(String),
    /// The server answered with an error that may go away (throttling, 5xx, stream not ready).
    #[error("{operation} failed: {code}: {message}")]
    Api {
        operation: &'static str,
        status: u16,
        code: String,
        message: String,
    },
    /// Fatal: the server's certificate is not trusted.
    #[error(
        "the TLS certificate of {endpoint} is not trusted ({reason}); pass the server's CA with --ca (for our server: DATA_DIR/tls/ca.pem)"
    )]
    Untrusted { endpoint: String, reason: String },
    /// Fatal: the server refused the credentials.
    #[error(
        "the server refused the credentials ({code}: {message}); check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_SHARED_CREDENTIALS_FILE/AWS_PROFILE"
    )]
    Credentials { code: String, message: String },
    /// Fatal: bad configuration.
    #[error("{0}")]
    Config(String),
}

impl UplinkError {
    /// True when retrying cannot help.
    pub(crate) fn is_fatal(&self) -> bool {
        matches!(
            self,
            UplinkError::Untrusted { .. }
                | UplinkError::Credentials { .. }
                | UplinkError::Config(_)
        )
    }

    pub(super) fn from_tls(ep: &Endpoint, e: std::io::Error) -> Self {
        let rustls_error = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        match rustls_error {
            Some(rustls::Error::InvalidCertificate(reason)) => UplinkError::Untrusted {
                endpoint: ep.to_string(),
                reason: format!("{reason:?}"),
            },
            _ => UplinkError::Unreachable(format!("TLS handshake with {ep} failed: {e}")),
        }
    }

    /// Classifies an AWS error response.
    pub(crate) fn from_response(operation: &'static str, status: u16, body: &[u8]) -> Self {
        let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let code = json
            .get("__type")
            .or_else(|| json.get("code"))
            .and_then(|v| v.as_str())
            .map(|s| s.rsplit('#').next().unwrap_or(s).to_owned())
            .unwrap_or_else(|| format!("HTTP {status}"));
        let message = json
            .get("message")
            .or_else(|| json.get("Message"))
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        const AUTH: [&str; 5] = [
            "UnrecognizedClientException",
            "InvalidSignatureException",
            "IncompleteSignatureException",
            "MissingAuthenticationTokenException",
            "AccessDeniedException",
        ];
        if AUTH.contains(&code.as_str()) {
            return UplinkError::Credentials { code, message };
        }
        UplinkError::Api {
            operation,
            status,
            code,
            message,
        }
    }
}
