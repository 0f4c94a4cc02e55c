//! The calls the producer SDK makes before streaming: DescribeStream, CreateStream when the
//! stream is missing (opt-in), then GetDataEndpoint for PUT_MEDIA.

use std::time::Duration;

use serde_json::json;
use tracing::info;

use super::client::{Client, Endpoint};
use super::error::UplinkError;

/// What to do about the stream.
#[derive(Debug, Clone)]
pub(crate) struct StreamSettings {
    pub(crate) name: String,
    /// Create the stream when it does not exist.
    pub(crate) create: bool,
    /// Retention for a stream the agent creates, in hours.
    pub(crate) retention_hours: u32,
}

/// Makes sure the stream exists and is ACTIVE, and returns the PutMedia endpoint.
pub(crate) async fn prepare(
    client: &Client,
    control: &Endpoint,
    stream: &StreamSettings,
) -> Result<Endpoint, UplinkError> {
    let mut created = false;
    loop {
        match describe(client, control, &stream.name).await {
            Ok(status) if status == "ACTIVE" => break,
            Ok(status) => {
                info!(stream = %stream.name, %status, "waiting for the stream to become ACTIVE");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(UplinkError::Api { code, .. })
                if code == "ResourceNotFoundException" && stream.create && !created =>
            {
                create(client, control, stream).await?;
                created = true;
            }
            Err(UplinkError::Api { code, .. }) if code == "ResourceNotFoundException" => {
                return Err(UplinkError::Api {
                    operation: "DescribeStream",
                    status: 404,
                    code,
                    message: format!(
                        "stream `{}` does not exist; create it or run the agent with --create-stream",
                        stream.name
                    ),
                });
            }
            Err(e) => return Err(e),
        }
    }
    let body = json!({ "StreamName": stream.name, "APIName": "PUT_MEDIA" });
    let (status, bytes) = client.json_call(control, "/getDataEndpoint", &body).await?;
    if status != 200 {
        return Err(UplinkError::from_response(
            "GetDataEndpoint",
            status,
            &bytes,
        ));
    }
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let url = json
        .get("DataEndpoint")
        .and_then(|v| v.as_str())
        .ok_or_else(|| {
            UplinkError::Unreachable("GetDataEndpoint answered without DataEndpoint".into())
        })?;
    Endpoint::parse(url).map_err(UplinkError::Unreachable)
}

async fn describe(client: &Client, control: &Endpoint, name: &str) -> Result<String, UplinkError> {
    let (status, bytes) = client
        .json_call(control, "/describeStream", &json!({ "StreamName": name }))
        .await?;
    if status != 200 {
        return Err(UplinkError::from_response("DescribeStream", status, &bytes));
    }
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    Ok(json
        .pointer("/StreamInfo/Status")
        .and_then(|v| v.as_str())
        .unwrap_or("UNKNOWN")
        .to_owned())
}

async fn create(
    client: &Client,
    control: &Endpoint,
    stream: &StreamSettings,
) -> Result<(), UplinkError> {
    let body = json!({
        "StreamName": stream.name,
        "MediaType": "video/h264",
        "DataRetentionInHours": stream.retention_hours,
    });
    let (status, bytes) = client.json_call(control, "/createStream", &body).await?;
    match status {
        200 => {
            info!(stream = %stream.name, retention_hours = stream.retention_hours, "stream created");
            Ok(())
        }
        _ => match UplinkError::from_response("CreateStream", status, &bytes) {
            // Another agent created it meanwhile.
            UplinkError::Api { code, .. } if code == "ResourceInUseException" => Ok(()),
            e => Err(e),
        },
    }
}
