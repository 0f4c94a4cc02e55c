//! AWS's Kinesis error messages, worded as AWS words them (kinesalite's tests record
//! them from the real service).

use crate::protocol::error::AwsError;

use super::state::Status;

/// 400 `ResourceNotFoundException` for a stream.
pub(super) fn stream_not_found(name: &str, account: &str) -> AwsError {
    AwsError::new(
        400,
        "ResourceNotFoundException",
        format!("Stream {name} under account {account} not found."),
    )
}

/// 400 `ResourceNotFoundException` for an ARN that names nothing here.
pub(super) fn arn_not_found(arn: &str) -> AwsError {
    AwsError::new(
        400,
        "ResourceNotFoundException",
        format!("Resource {arn} not found."),
    )
}

/// 400 `ResourceNotFoundException` for a shard id that cannot be one.
pub(super) fn shard_not_found(shard: &str, stream: &str, account: &str) -> AwsError {
    AwsError::new(
        400,
        "ResourceNotFoundException",
        format!("Could not find shard {shard} in stream {stream} under account {account}."),
    )
}

/// 400 `ResourceNotFoundException` for a well-formed shard id the stream lacks.
pub(super) fn shard_does_not_exist(shard: &str, stream: &str, account: &str) -> AwsError {
    AwsError::new(
        400,
        "ResourceNotFoundException",
        format!("Shard {shard} in stream {stream} under account {account} does not exist"),
    )
}

/// 400 `ResourceInUseException`: the stream is not ACTIVE.
pub(super) fn not_active(name: &str, account: &str, status: Status) -> AwsError {
    AwsError::in_use(format!(
        "Stream {name} under account {account} not ACTIVE, instead in state {}",
        status.as_str()
    ))
}

/// 400 `LimitExceededException` for the account's shard limit.
pub(super) fn shard_limit(
    account: &str,
    region: &str,
    current: u64,
    limit: u32,
    more: u64,
) -> AwsError {
    AwsError::new(
        400,
        "LimitExceededException",
        format!(
            "This request would exceed the shard limit for the account {account} in {region}. \
             Current shard count for the account: {current}. Limit: {limit}. Number of additional \
             shards that would have resulted from this request: {more}. Refer to the AWS Service \
             Limits page (http://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) \
             for current limits and how to request higher limits."
        ),
    )
}

/// 400 `ProvisionedThroughputExceededException` for a shard over its limits.
pub(super) fn throughput_exceeded(shard: &str, stream: &str, account: &str) -> AwsError {
    AwsError::new(
        400,
        "ProvisionedThroughputExceededException",
        format!("Rate exceeded for shard {shard} in stream {stream} under account {account}."),
    )
}

/// 400 `InvalidArgumentException` for a record over the stream's size limit (data plus
/// partition key; 1 MiB unless UpdateMaxRecordSize raised it).
pub(super) fn record_too_large(size: usize, max: usize) -> AwsError {
    AwsError::invalid_argument(format!(
        "Record size (data and partition key) of {size} bytes exceeds the stream's maximum \
         record size of {max} bytes."
    ))
}

/// 500 `InternalFailure` after a storage fault (logged by the caller).
pub(super) fn internal() -> AwsError {
    AwsError::new(
        500,
        "InternalFailure",
        "The request processing has failed because of an unknown error, exception or failure.",
    )
}
