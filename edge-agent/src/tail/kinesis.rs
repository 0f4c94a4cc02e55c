//! The Kinesis Data Streams calls the tailer makes (JSON 1.1 RPC, SigV4 service `kinesis`),
//! over the uplink's signed HTTPS client: DescribeStreamSummary, CreateStream, PutRecords.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tracing::info;

use super::batch::{Record, request_body};
use crate::uplink::client::{Client, Endpoint};
use crate::uplink::error::UplinkError;

const TARGET_PREFIX: &str = "Kinesis_20131202";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// Errors about the request itself: sending it again cannot succeed.
const REFUSED: [&str; 3] = [
    "ValidationException",
    "InvalidArgumentException",
    "SerializationException",
];

pub(crate) struct Kinesis {
    client: Client,
    endpoint: Endpoint,
}

impl Kinesis {
    pub(crate) fn new(client: Client, endpoint: Endpoint) -> Self {
        Kinesis {
            client: client.with_service("kinesis"),
            endpoint,
        }
    }

    async fn call(&self, operation: &'static str, body: &Value) -> Result<Value, UplinkError> {
        let headers = [
            ("content-type", CONTENT_TYPE.to_owned()),
            ("x-amz-target", format!("{TARGET_PREFIX}.{operation}")),
        ];
        let body = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
        let (status, bytes) = self
            .client
            .post(&self.endpoint, "/", &headers, body)
            .await?;
        if status != 200 {
            return Err(UplinkError::from_response(operation, status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            UplinkError::Unreachable(format!(
                "{operation}: unreadable answer from the server: {e}"
            ))
        })
    }

    /// Waits until the stream accepts records, creating it when asked. A missing stream
    /// without `create` is fatal, with the service's message.
    pub(crate) async fn prepare(
        &self,
        stream: &str,
        create: bool,
        shard_count: u32,
    ) -> Result<(), UplinkError> {
        let mut created = false;
        loop {
            let summary = self
                .call("DescribeStreamSummary", &json!({ "StreamName": stream }))
                .await;
            match summary {
                Ok(summary) => {
                    let status = summary
                        .pointer("/StreamDescriptionSummary/StreamStatus")
                        .and_then(Value::as_str)
                        .unwrap_or("UNKNOWN");
                    if matches!(status, "ACTIVE" | "UPDATING") {
                        return Ok(());
                    }
                    info!(stream, status, "waiting for the stream to become ACTIVE");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(UplinkError::Api { code, .. })
                    if code == "ResourceNotFoundException" && create && !created =>
                {
                    let body = json!({ "StreamName": stream, "ShardCount": shard_count });
                    match self.call("CreateStream", &body).await {
                        Ok(_) => info!(stream, shard_count, "stream created"),
                        // Another agent created it meanwhile.
                        Err(UplinkError::Api { code, .. }) if code == "ResourceInUseException" => {}
                        Err(e) => return Err(e),
                    }
                    created = true;
                }
                Err(UplinkError::Api { code, message, .. })
                    if code == "ResourceNotFoundException" =>
                {
                    return Err(UplinkError::Config(format!(
                        "DescribeStreamSummary failed: {code}: {message} (create the stream or run with --create-stream)"
                    )));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Puts a batch; returns, per record, `None` when stored or its ErrorCode.
    pub(crate) async fn put_records(
        &self,
        stream: &str,
        records: &[Record],
    ) -> Result<Vec<Option<String>>, UplinkError> {
        let answer = self
            .call("PutRecords", &request_body(stream, records))
            .await?;
        let results = answer
            .get("Records")
            .and_then(Value::as_array)
            .filter(|r| r.len() == records.len())
            .ok_or_else(|| {
                UplinkError::Unreachable("PutRecords answered without one result per record".into())
            })?;
        Ok(results
            .iter()
            .map(|r| {
                r.get("ErrorCode")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect())
    }
}

/// True when retrying cannot help: bad keys, untrusted certificate, a refused request.
pub(crate) fn is_fatal(e: &UplinkError) -> bool {
    e.is_fatal() || matches!(e, UplinkError::Api { code, .. } if REFUSED.contains(&code.as_str()))
}
