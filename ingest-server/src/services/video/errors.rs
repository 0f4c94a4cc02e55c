//! The one place where storage failures become AWS errors.

use crate::protocol::error::AwsError;
use crate::storage::StoreError;

/// Maps a store failure to what the client sees. Faults that are not the client's are
/// logged here with their detail and reported as a bare `InternalFailure`.
pub fn store_error(err: StoreError) -> AwsError {
    match err {
        StoreError::NotFound => {
            AwsError::not_found("The requested stream was not found or does not exist.")
        }
        StoreError::AlreadyExists(name) => {
            AwsError::in_use(format!("The stream {name} already exists."))
        }
        StoreError::VersionMismatch { current } => AwsError::version_mismatch(format!(
            "The stream version does not match: the current version is {current}."
        )),
        StoreError::TooManyTags { count, max } => AwsError::new(
            400,
            "TagsPerResourceExceededLimitException",
            format!("A stream can have at most {max} tags; this request would leave {count}."),
        ),
        other => {
            tracing::error!(error = %other, "Storage failure.");
            AwsError::internal()
        }
    }
}
