//! AWS JSON 1.1 and CBOR 1.1 RPC, driven by the botocore model: one `POST /` per call,
//! the operation named by `X-Amz-Target: <prefix>.<Operation>`, the body one JSON object
//! or CBOR map.
//!
//! A request goes through, in AWS's order (kinesalite `index.js`, `test/connection.js`):
//!
//! 1. [`parse_call`]: `Content-Type` and `X-Amz-Target`, from the headers alone;
//! 2. [`decode_input`]: the body, typed by the input shape (`SerializationException`);
//! 3. SigV4 (the caller's);
//! 4. [`validate_input`]: the model's constraints (`ValidationException`);
//!
//! then the service answers with [`response`] or [`error_response`] (or, for
//! SubscribeToShard, an [`eventstream`] body).
//!
//! Where this order differs from AWS's in corner cases: AWS checks the body's syntax
//! before the target (a bad target with a broken body gets `SerializationException`),
//! checks member types after authentication, and answers an empty body with
//! `SerializationException`; here the target comes first, types are checked in step 2,
//! and an empty body reads as `{}`.

mod cbor;
mod coerce;
mod doc;
pub mod eventstream;
mod json;
pub mod model;
mod validate;

#[cfg(test)]
mod tests;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, header};

pub use doc::Doc;
pub use model::{Member, Operation, Pattern, ServiceModel, Shape, ShapeId, ShapeKind, kinesis};

use super::body::{ResponseBody, full};
use super::error::AwsError;

/// `Content-Type` of JSON 1.1 requests and responses.
pub const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// `Content-Type` of CBOR 1.1 requests and responses.
pub const CBOR_CONTENT_TYPE: &str = "application/x-amz-cbor-1.1";

/// The body encoding of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// AWS JSON 1.1 (boto3, the CLI, the JavaScript, Rust and Go SDKs).
    Json,
    /// AWS CBOR 1.1 (the Java SDKs and the KCL).
    Cbor,
}

impl Encoding {
    /// The `Content-Type` of bodies in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Json => JSON_CONTENT_TYPE,
            Encoding::Cbor => CBOR_CONTENT_TYPE,
        }
    }
}

/// A request's encoding and operation, known from its headers.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    /// Body encoding of the request, and so of the response.
    pub encoding: Encoding,
    /// The operation named by `X-Amz-Target`.
    pub operation: &'static Operation,
}

/// The media type of `Content-Type`, without parameters, lower case.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let media = value.split(';').next().unwrap_or_default().trim();
    Some(media.to_ascii_lowercase())
}

/// The encoding to answer a request in, even one [`parse_call`] refused: CBOR if it was
/// sent as CBOR, else JSON 1.1.
pub fn encoding_of(headers: &HeaderMap) -> Encoding {
    match media_type(headers).as_deref() {
        Some(CBOR_CONTENT_TYPE) => Encoding::Cbor,
        _ => Encoding::Json,
    }
}

/// Step 1, from the headers only.
///
/// - `Content-Type` `application/x-amz-json-1.1` or `application/x-amz-cbor-1.1`
///   (parameters such as `; charset=utf-8` are ignored). AWS serves no other type:
///   `application/json` (the deprecated Coral form) gets 404 `UnknownOperationException`,
///   and so does any other type (`application/x-amz-json-1.0`, none) with a real target;
///   with a target of another service 403 `UnrecognizedClientException` "No authorization
///   strategy was found for service: S, operation: O"; with an unknown Kinesis operation
///   500 `InternalFailure`; with no `service.operation` target 403 `AccessDeniedException`
///   "Unable to determine service/operation name to be authorized". (AWS sends these
///   after authenticating, as XML; here they are JSON.)
/// - `X-Amz-Target` `<targetPrefix>.<Operation>`: anything else is 400
///   `UnknownOperationException` with no message, in the request's encoding (see
///   [`encoding_of`]).
pub fn parse_call(headers: &HeaderMap, model: &'static ServiceModel) -> Result<Call, AwsError> {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // As AWS splits it: `A.B.C` names service A and operation B.
    let mut parts = target.split('.');
    let service = parts.next().unwrap_or_default();
    let operation_name = parts.next().unwrap_or_default();

    let encoding = match media_type(headers).as_deref() {
        Some(JSON_CONTENT_TYPE) => Encoding::Json,
        Some(CBOR_CONTENT_TYPE) => Encoding::Cbor,
        Some("application/json") => return Err(unknown_operation(404)),
        _ if service.is_empty() || operation_name.is_empty() => {
            return Err(AwsError::new(
                403,
                "AccessDeniedException",
                "Unable to determine service/operation name to be authorized",
            ));
        }
        _ if service != model.target_prefix => {
            return Err(AwsError::new(
                403,
                "UnrecognizedClientException",
                format!(
                    "No authorization strategy was found for service: {service}, operation: {operation_name}"
                ),
            ));
        }
        _ if model.operation(operation_name).is_none() => {
            return Err(AwsError::new(500, "InternalFailure", ""));
        }
        _ => return Err(unknown_operation(404)),
    };
    if service != model.target_prefix {
        return Err(unknown_operation(400));
    }
    let operation = model
        .operation(operation_name)
        .ok_or_else(|| unknown_operation(400))?;
    Ok(Call {
        encoding,
        operation,
    })
}

fn unknown_operation(status: u16) -> AwsError {
    AwsError::new(status, "UnknownOperationException", "")
}

/// 400 `SerializationException`; AWS sends an empty message for a body that does not
/// parse at all.
pub fn serialization_error(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "SerializationException", message)
}

/// 400 `ValidationException`.
pub fn validation_error(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "ValidationException", message)
}

/// Step 2: the body as a `Doc` typed by the operation's input shape. An empty body reads
/// as `{}`; unknown members are skipped; `null` members are dropped. A body that does
/// not parse, or is not one object/map, is `SerializationException` without a message;
/// a member of the wrong type is `SerializationException` with AWS's text (e.g. "Start
/// of structure or map found where not expected.", "class java.lang.String can not be
/// converted to an Integer").
///
/// JSON: blobs are base64 strings, timestamps epoch seconds (integer or fraction).
/// CBOR: blobs are byte strings (base64 text also accepted), timestamps tag 1 around
/// integer epoch milliseconds (the Java SDK's form) or around float epoch seconds (RFC
/// 8949's); an untagged number is epoch seconds, as in JSON.
pub fn decode_input(call: &Call, body: &[u8]) -> Result<Doc, AwsError> {
    let empty = match call.encoding {
        Encoding::Json => body.iter().all(u8::is_ascii_whitespace),
        Encoding::Cbor => body.is_empty(),
    };
    if empty {
        return Ok(Doc::map());
    }
    let decoded = match call.encoding {
        Encoding::Json => json::decode(call.operation, body),
        Encoding::Cbor => cbor::decode(call.operation, body),
    };
    decoded.map_err(|message| serialization_error(message.unwrap_or_default()))
}

/// Step 4 (after SigV4): the model's constraints, as a 400 `ValidationException` such as
/// `1 validation error detected: Value 'x y' at 'streamName' failed to satisfy
/// constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+` (at most
/// 10 errors, joined with `; `; see `validate.rs` for the forms).
pub fn validate_input(call: &Call, input: &Doc) -> Result<(), AwsError> {
    match validate::check(call.operation, input) {
        None => Ok(()),
        Some(message) => Err(validation_error(message)),
    }
}

/// A body in `encoding`. `Doc::Null` gives an empty body, which is what AWS sends for
/// operations without output (CreateStream, DeleteStream, AddTagsToStream...).
/// JSON: blobs base64, timestamps epoch seconds with a millisecond fraction. CBOR: blobs
/// byte strings, timestamps tag 1 around integer epoch milliseconds.
pub fn encode(encoding: Encoding, doc: &Doc) -> Bytes {
    if doc.is_null() {
        return Bytes::new();
    }
    let mut out = Vec::with_capacity(estimate(doc));
    match encoding {
        Encoding::Json => json::encode(doc, &mut out),
        Encoding::Cbor => cbor::encode(doc, &mut out),
    }
    Bytes::from(out)
}

/// A rough upper bound of a body's size, so that it is written without regrowing.
fn estimate(doc: &Doc) -> usize {
    match doc {
        Doc::Str(s) => s.len() + 8,
        Doc::Blob(b) => b.len() / 3 * 4 + 8,
        Doc::List(items) => items.iter().map(estimate).sum::<usize>() + 8,
        Doc::Map(members) => members
            .iter()
            .map(|(k, v)| k.len() + 4 + estimate(v))
            .sum::<usize>()
            .saturating_add(8),
        _ => 24,
    }
}

/// A 200 response carrying `output` in `encoding` (see [`encode`]), with `Content-Type`
/// and `x-amzn-RequestId`.
pub fn response(encoding: Encoding, output: &Doc, request_id: &str) -> Response<ResponseBody> {
    build(
        StatusCode::OK,
        encoding,
        request_id,
        None,
        encode(encoding, output),
    )
}

/// An error response in `encoding`: the status, `x-amzn-ErrorType: <Code>:` (read first by
/// the Java SDK and botocore), `x-amzn-RequestId`, and the body `{"__type": "<Code>",
/// "message": "..."}` as JSON or a CBOR map (`message` left out when empty, as AWS does
/// for `SerializationException` and `UnknownOperationException`). Errors raised before
/// the encoding is known use JSON 1.1 (or [`encoding_of`]).
pub fn error_response(
    encoding: Encoding,
    err: &AwsError,
    request_id: &str,
) -> Response<ResponseBody> {
    let mut body = Doc::map().with("__type", err.code);
    if !err.message.is_empty() {
        body = body.with("message", err.message.as_str());
    }
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    build(
        status,
        encoding,
        request_id,
        Some(err.code),
        encode(encoding, &body),
    )
}

fn build(
    status: StatusCode,
    encoding: Encoding,
    request_id: &str,
    error_type: Option<&str>,
    body: Bytes,
) -> Response<ResponseBody> {
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, encoding.content_type())
        .header("x-amzn-RequestId", request_id);
    if let Some(code) = error_type {
        builder = builder.header("x-amzn-ErrorType", format!("{code}:"));
    }
    builder.body(full(body)).unwrap_or_else(|_| {
        // Only an invalid request id (not from us) gets here.
        let mut response = Response::new(full(Bytes::new()));
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        response
    })
}
