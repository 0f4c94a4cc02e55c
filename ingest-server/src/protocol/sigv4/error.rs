//! Authentication failures, with the error codes and messages AWS returns.

/// Why a request failed SigV4 authentication. Every variant is answered with
/// HTTP 403 and the AWS error code of [`AuthError::aws_code`]. Messages never
/// contain a secret or the signature the server expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Neither an `Authorization` header nor presigned `X-Amz-*` query parameters.
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,
    /// The `Authorization` header or presigned parameters are malformed or
    /// incomplete; the message says what is missing, like AWS's.
    #[error("{0}")]
    IncompleteSignature(String),
    /// The access key id is not in the credential store.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    /// The signature does not match (wrong secret, altered request, a signed
    /// header missing from the request, ...).
    #[error(
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. Consult the service \
         documentation for details."
    )]
    SignatureMismatch,
    /// The request date is more than 15 minutes before the server's clock.
    #[error("Signature expired: {request} is now earlier than {limit} ({now} - 15 min.)")]
    SignatureExpired {
        request: String,
        limit: String,
        now: String,
    },
    /// The request date is more than 15 minutes after the server's clock.
    #[error("Signature not yet current: {request} is still later than {limit} ({now} + 15 min.)")]
    SignatureNotYetCurrent {
        request: String,
        limit: String,
        now: String,
    },
    /// A presigned URL used after `X-Amz-Date + X-Amz-Expires`.
    #[error("Signature expired: {request} is now earlier than {limit} ({now} - {expires} sec.)")]
    PresignedUrlExpired {
        request: String,
        limit: String,
        now: String,
        expires: u32,
    },
    /// The credential scope names a service this endpoint does not serve.
    #[error("Credential should be scoped to correct service: '{expected}'. ")]
    WrongService { expected: String },
    /// Other credential scope problems (terminator, region, date).
    #[error("{0}")]
    InvalidScope(String),
}

impl AuthError {
    /// The AWS error code (`__type` / `x-amzn-ErrorType`).
    pub fn aws_code(&self) -> &'static str {
        match self {
            AuthError::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            AuthError::IncompleteSignature(_) => "IncompleteSignatureException",
            AuthError::UnrecognizedClient => "UnrecognizedClientException",
            AuthError::SignatureMismatch
            | AuthError::SignatureExpired { .. }
            | AuthError::SignatureNotYetCurrent { .. }
            | AuthError::PresignedUrlExpired { .. }
            | AuthError::WrongService { .. }
            | AuthError::InvalidScope(_) => "InvalidSignatureException",
        }
    }

    /// Always 403, as AWS answers all of these.
    pub fn http_status(&self) -> u16 {
        403
    }

    /// The human-readable message (same as `Display`).
    pub fn message(&self) -> String {
        self.to_string()
    }
}
