//! Request and response bodies: capped request reads, JSON decoding into typed input,
//! and one boxed response body type for full, streamed and channel-fed responses.

use std::convert::Infallible;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::BoxBody};
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

/// Reads a whole request body of at most `max` bytes.
pub async fn read_capped<B>(body: B, max: usize) -> Result<Bytes, AwsError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(
            AwsError::invalid_argument(format!("Request body is larger than {max} bytes.")),
        ),
        Err(err) => Err(AwsError::invalid_argument(format!(
            "Could not read the request body: {err}"
        ))),
    }
}

/// Decodes a JSON request body into the operation's input shape. An empty body counts
/// as `{}`, as botocore sends for operations whose members are all optional.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AwsError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes)
        .map_err(|err| AwsError::invalid_argument(format!("Could not parse the request body: {err}")))
}
