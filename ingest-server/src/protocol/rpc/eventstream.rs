//! SubscribeToShard's `application/vnd.amazon.eventstream` response body: one binary
//! message per event (prelude with total and header lengths and their CRC32, headers,
//! payload, CRC32 of the whole), framed by `aws-smithy-eventstream`.
//!
//! What the SDKs require, from their sources:
//! - botocore (`parsers.py` `_handle_event_stream`, `eventstream.py`
//!   `get_initial_response`): the FIRST message must be an event whose `:event-type` is
//!   `initial-response`, else the call fails with "First event was not of type
//!   initial-response"; its payload is parsed as the output's other members (none for
//!   Kinesis: `{}`). Exceptions are read from `:exception-type` (which must name a member
//!   of the stream union, e.g. `ResourceNotFoundException`, to become that error) and
//!   the payload's `message`/`Message`.
//! - aws-sdk-js-v3 (`@smithy/eventstream-serde-universal` `getUnmarshalledStream`, and
//!   `EventStreamSerde` in `@smithy/core`): dispatches on `:message-type` (`event`,
//!   `exception` with `:exception-type`, `error` with `:error-code`/`:error-message`),
//!   names events by `:event-type`, swallows a first `initial-response` event into the
//!   output, and only returns from the call once the first message has arrived.
//! - aws-sdk-java-v2 (`EventStreamAsyncResponseTransformer`, `JsonErrorCodeParser`):
//!   reads `:message-type` and `:event-type` (`initial-response` feeds the response
//!   handler) and turns EVERY header into an HTTP header with `getString()`, so all
//!   headers must be string-typed; the error code comes from `:exception-type`; payloads
//!   are parsed with the client's protocol, so a CBOR client gets CBOR payloads.
//!
//! So every message carries three string headers, `:event-type` (or `:exception-type`),
//! `:content-type` (`application/x-amz-json-1.1` or `application/x-amz-cbor-1.1`, the
//! request's) and `:message-type` (`event` or `exception`), and the payload is in the
//! request's encoding.

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::{Bytes, BytesMut};

use super::Encoding;
use super::doc::Doc;

/// The `Content-Type` of a SubscribeToShard response.
pub const CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// The `initial-response` event every SDK expects first, with an empty output (`{}`).
pub fn initial_response(encoding: Encoding) -> Bytes {
    event(encoding, "initial-response", &Doc::map())
}

/// An event, e.g. `SubscribeToShardEvent` with `Records`, `ContinuationSequenceNumber`,
/// `MillisBehindLatest` and `ChildShards`, its payload in the request's encoding.
pub fn event(encoding: Encoding, event_type: &str, payload: &Doc) -> Bytes {
    message(
        [
            (":event-type", event_type),
            (":content-type", encoding.content_type()),
            (":message-type", "event"),
        ],
        super::encode(encoding, payload),
    )
}

/// A modeled exception ending the stream, e.g. `ResourceNotFoundException`, with the
/// payload `{"message": ...}`.
pub fn exception(encoding: Encoding, code: &str, message_text: &str) -> Bytes {
    message(
        [
            (":exception-type", code),
            (":content-type", encoding.content_type()),
            (":message-type", "exception"),
        ],
        super::encode(encoding, &Doc::map().with("message", message_text)),
    )
}

fn message(headers: [(&'static str, &str); 3], payload: Bytes) -> Bytes {
    let size = payload.len() + 128;
    let headers = headers
        .into_iter()
        .map(|(name, value)| Header::new(name, HeaderValue::String(value.to_owned().into())))
        .collect();
    let message = Message::new_from_parts(headers, payload);
    let mut out = BytesMut::with_capacity(size);
    match write_message_to(&message, &mut out) {
        Ok(()) => out.freeze(),
        // Only a header value over 32 KiB or a payload over 4 GiB fails; say so in-stream.
        Err(err) => {
            tracing::error!(error = %err, "event-stream message could not be framed");
            let fallback = Message::new_from_parts(
                vec![
                    Header::new(
                        ":exception-type",
                        HeaderValue::String("InternalFailureException".into()),
                    ),
                    Header::new(":message-type", HeaderValue::String("exception".into())),
                ],
                Bytes::new(),
            );
            let mut out = BytesMut::with_capacity(128);
            let _ = write_message_to(&fallback, &mut out);
            out.freeze()
        }
    }
}
