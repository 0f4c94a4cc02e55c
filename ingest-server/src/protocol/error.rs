//! AWS's REST-JSON error shape: an HTTP status, the `x-amzn-ErrorType` header (botocore
//! reads the code from the text before `:`), `x-amzn-RequestId`, and a JSON body with
//! `message` (plus `__type` for clients that read the body instead).

use http::{Response, StatusCode};

use super::body::{ResponseBody, full};

/// An error as the client will see it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AwsError {
    /// HTTP status code.
    pub status: u16,
    /// AWS exception name, e.g. `ResourceNotFoundException`.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
}

impl AwsError {
    /// Builds an error from its parts.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 `InvalidArgumentException`.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidArgumentException", message)
    }

    /// 404 `ResourceNotFoundException`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "ResourceNotFoundException", message)
    }

    /// 400 `ResourceInUseException`.
    pub fn in_use(message: impl Into<String>) -> Self {
        Self::new(400, "ResourceInUseException", message)
    }

    /// 400 `VersionMismatchException`.
    pub fn version_mismatch(message: impl Into<String>) -> Self {
        Self::new(400, "VersionMismatchException", message)
    }

    /// 500 `InternalFailure`, for storage or other server faults. The detail is logged
    /// by the caller; the client only learns that the request did not take effect.
    pub fn internal() -> Self {
        Self::new(
            500,
            "InternalFailure",
            "The request processing has failed because of an unknown error, exception or failure.",
        )
    }

    /// The HTTP response carrying this error.
    pub fn to_response(&self, request_id: &str) -> Response<ResponseBody> {
        let body = serde_json::json!({ "__type": self.code, "message": self.message });
        Response::builder()
            .status(StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .header("content-type", "application/json")
            .header("x-amzn-ErrorType", format!("{}:", self.code))
            .header("x-amzn-RequestId", request_id)
            .body(full(body.to_string()))
            .unwrap_or_else(|_| Response::new(full("")))
    }
}
