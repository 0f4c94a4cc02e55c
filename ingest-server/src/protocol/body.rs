//! Request and response bodies: capped request reads, JSON decoding into typed input,
//! and one boxed response body type for full, streamed and channel-fed responses.

use std::convert::Infallible;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use super::error::AwsError;

/// The body type of every response the server writes.
pub type ResponseBody = BoxBody<Bytes, Infallible>;

/// Largest JSON request body accepted (GetMediaForFragmentList with 1000 fragment
/// numbers is about 50 KiB; anything near this cap is not a real request).
pub const MAX_JSON_BODY: usize = 1024 * 1024;

/// A response body holding `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into()).boxed()
}

/// A streamed response body: every `Bytes` sent on the returned sender goes out as its
/// own HTTP/1.1 chunk (or HTTP/2 DATA frame). The body ends when the sender is dropped.
pub fn channel(capacity: usize) -> (mpsc::Sender<Bytes>, ResponseBody) {
    let (tx, rx) = mpsc::channel::<Bytes>(capacity);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|bytes| (Ok::<_, Infallible>(Frame::data(bytes)), rx))
    });
    (tx, StreamBody::new(stream).boxed())
}

/// Bytes of an oversized request read and thrown away so that the client, still
/// sending, gets the error response instead of a reset connection.
const MAX_DISCARD: usize = 64 * 1024 * 1024;

/// Reads a whole request body of at most `max` bytes.
pub async fn read_capped<B>(mut body: B, max: usize) -> Result<Bytes, AwsError>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let mut collected = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| {
            AwsError::invalid_argument(format!("Could not read the request body: {err}"))
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen <= max {
            collected.extend_from_slice(&data);
        } else if seen > MAX_DISCARD {
            break;
        }
    }
    if seen > max {
        return Err(AwsError::invalid_argument(format!(
            "Request body is larger than {max} bytes."
        )));
    }
    Ok(collected.freeze())
}

/// Decodes a JSON request body into the operation's input shape. An empty body counts
/// as `{}`, as botocore sends for operations whose members are all optional.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AwsError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(|err| {
        AwsError::invalid_argument(format!("Could not parse the request body: {err}"))
    })
}
