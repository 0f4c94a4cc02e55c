//! Input shapes of the Kinesis Video Streams operations served here, as the botocore
//! models name their members, and output helpers. Unknown members are ignored, as AWS
//! does.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::protocol::validate::{self, Validation};
use crate::storage::{FragmentRecord, StreamRecord};

/// An epoch timestamp in seconds: an integer (boto3) or a fraction (Java, JS SDKs).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(transparent)]
pub(super) struct EpochSeconds(pub(super) f64);

impl EpochSeconds {
    /// Milliseconds since the epoch.
    pub(super) fn millis(self) -> i64 {
        (self.0 * 1000.0).round() as i64
    }
}

/// Epoch milliseconds as AWS writes timestamps: float seconds.
pub(super) fn seconds(ms: i64) -> Value {
    json!(ms as f64 / 1000.0)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct CreateStreamInput {
    pub(super) device_name: Option<String>,
    pub(super) stream_name: Option<String>,
    pub(super) media_type: Option<String>,
    pub(super) kms_key_id: Option<String>,
    pub(super) data_retention_in_hours: Option<i64>,
    pub(super) tags: Option<BTreeMap<String, String>>,
}

/// `StreamName` / `StreamARN`, shared by most operations.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub(super) struct StreamRef {
    pub(super) stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub(super) stream_arn: Option<String>,
}

impl StreamRef {
    /// Checks both members against the model (which one is required is checked when
    /// the stream is resolved).
    pub(super) fn check(&self, v: &mut Validation) {
        v.check(&validate::STREAM_NAME, self.stream_name.as_deref());
        v.check(&validate::STREAM_ARN, self.stream_arn.as_deref());
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct StreamNameCondition {
    pub(super) comparison_operator: Option<String>,
    pub(super) comparison_value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListStreamsInput {
    pub(super) max_results: Option<i64>,
    pub(super) next_token: Option<String>,
    pub(super) stream_name_condition: Option<StreamNameCondition>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct DeleteStreamInput {
    #[serde(rename = "StreamARN")]
    pub(super) stream_arn: Option<String>,
    pub(super) current_version: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct UpdateStreamInput {
    #[serde(flatten)]
    pub(super) stream: StreamRef,
    pub(super) current_version: Option<String>,
    pub(super) device_name: Option<String>,
    pub(super) media_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct UpdateDataRetentionInput {
    #[serde(flatten)]
    pub(super) stream: StreamRef,
    pub(super) current_version: Option<String>,
    pub(super) operation: Option<String>,
    pub(super) data_retention_change_in_hours: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct GetDataEndpointInput {
    #[serde(flatten)]
    pub(super) stream: StreamRef,
    #[serde(rename = "APIName")]
    pub(super) api_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct TagStreamInput {
    #[serde(flatten)]
    pub(super) stream: StreamRef,
    pub(super) tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct UntagStreamInput {
    #[serde(flatten)]
    pub(super) stream: StreamRef,
    pub(super) tag_key_list: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListTagsForStreamInput {
    #[serde(flatten)]
    pub(super) stream: StreamRef,
    pub(super) next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ResourceTag {
    pub(super) key: Option<String>,
    pub(super) value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct TagResourceInput {
    #[serde(rename = "ResourceARN")]
    pub(super) resource_arn: Option<String>,
    pub(super) tags: Option<Vec<ResourceTag>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct UntagResourceInput {
    #[serde(rename = "ResourceARN")]
    pub(super) resource_arn: Option<String>,
    pub(super) tag_key_list: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListTagsForResourceInput {
    #[serde(rename = "ResourceARN")]
    pub(super) resource_arn: Option<String>,
    pub(super) next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct TimestampRange {
    pub(super) start_timestamp: Option<EpochSeconds>,
    pub(super) end_timestamp: Option<EpochSeconds>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct FragmentSelector {
    pub(super) fragment_selector_type: Option<String>,
    pub(super) timestamp_range: Option<TimestampRange>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListFragmentsInput {
    #[serde(flatten)]
    pub(super) stream: StreamRef,
    pub(super) max_results: Option<i64>,
    pub(super) next_token: Option<String>,
    pub(super) fragment_selector: Option<FragmentSelector>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct StartSelector {
    pub(super) start_selector_type: Option<String>,
    pub(super) after_fragment_number: Option<String>,
    pub(super) start_timestamp: Option<EpochSeconds>,
    pub(super) continuation_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct GetMediaInput {
    #[serde(flatten)]
    pub(super) stream: StreamRef,
    pub(super) start_selector: Option<StartSelector>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct GetMediaForFragmentListInput {
    #[serde(flatten)]
    pub(super) stream: StreamRef,
    pub(super) fragments: Option<Vec<String>>,
}

/// `StreamInfo`.
pub(super) fn stream_info(s: &StreamRecord) -> Value {
    let mut info = json!({
        "StreamName": s.name,
        "StreamARN": s.arn,
        "Version": s.version,
        "Status": "ACTIVE",
        "CreationTime": seconds(s.creation_time_ms),
        "DataRetentionInHours": s.retention_hours,
    });
    let fields = [
        ("DeviceName", &s.device_name),
        ("MediaType", &s.media_type),
        ("KmsKeyId", &s.kms_key_id),
    ];
    for (key, value) in fields {
        if let Some(v) = value {
            info[key] = json!(v);
        }
    }
    info
}

/// `Fragment`.
pub(super) fn fragment_info(f: &FragmentRecord) -> Value {
    json!({
        "FragmentNumber": f.number(),
        "FragmentSizeInBytes": f.size_bytes,
        "ProducerTimestamp": seconds(f.producer_ts_ms),
        "ServerTimestamp": seconds(f.server_ts_ms),
        "FragmentLengthInMilliseconds": f.duration_ms,
    })
}

/// Encodes a pagination cursor as a `NextToken` (the model's pattern is base64).
pub(super) fn encode_token(cursor: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(cursor)
}

/// Decodes a `NextToken` made by [`encode_token`].
pub(super) fn decode_token(token: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()?;
    String::from_utf8(bytes).ok()
}
