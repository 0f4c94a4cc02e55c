//! Verification of AWS Signature Version 4 (SigV4) requests.
//!
//! Hand-written because the maintained `aws-sigv4` crate only *signs*, choosing
//! its own set of signed headers; a server must instead rebuild the canonical
//! request from the client's `SignedHeaders` list, which that crate cannot do.
//!
//! Both forms are accepted:
//!
//! * `Authorization: AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/kinesisvideo/aws4_request,
//!   SignedHeaders=host;x-amz-date, Signature=<hex>` with the date in `X-Amz-Date`
//!   (or `Date`);
//! * presigned URLs: `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`,
//!   `X-Amz-Expires` (at most 604800), `X-Amz-SignedHeaders`, `X-Amz-Signature`
//!   and optionally `X-Amz-Security-Token` in the query.
//!
//! The request is canonicalized exactly as received (see [`canonical`]): the
//! host is the `Host` header value as sent (the Kinesis Video C producer signs
//! `Host: 127.0.0.1` without the port even on a non-default port) or, on
//! HTTP/2, the `:authority`; it is never reconstructed. Any region is accepted;
//! the service must be one of `allowed_services`. Clock skew of more than 15
//! minutes either way is rejected, as is a presigned URL used after
//! `X-Amz-Date + X-Amz-Expires`. Signatures are compared in constant time.
//!
//! Payload hash in the canonical request:
//!
//! | [`PayloadHash`] | Authorization header            | presigned URL                                  |
//! |-----------------|---------------------------------|------------------------------------------------|
//! | `Body(b)`       | SHA-256 of `b`                  | SHA-256 of `b`, or `UNSIGNED-PAYLOAD`          |
//! | `Streaming`     | `x-amz-content-sha256` value if present, else the empty-body hash | `x-amz-content-sha256` if present, else `UNSIGNED-PAYLOAD` or the empty-body hash |
//!
//! (botocore's generic presigner hashes the payload; S3-style presigners sign
//! `UNSIGNED-PAYLOAD`. Each candidate is a hash a legitimate client could have
//! signed for this very request.)

mod canonical;
mod error;
mod verify;

#[cfg(test)]
mod tests;

pub use error::AuthError;
pub use verify::verify;

/// How the request body enters the canonical request.
#[derive(Debug, Clone, Copy)]
pub enum PayloadHash<'a> {
    /// The full body, hashed (JSON APIs).
    Body(&'a [u8]),
    /// Streaming upload (PutMedia): the body is not hashed. The
    /// `x-amz-content-sha256` header value is used if present
    /// (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`, `UNSIGNED-PAYLOAD` or a hex hash),
    /// else the empty-body hash `e3b0c442...b855`.
    Streaming,
}

/// The identity and scope of a request whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRequest {
    pub access_key_id: String,
    pub region: String,
    pub service: String,
    /// The request time the client signed (`X-Amz-Date` or `Date`).
    pub date: time::OffsetDateTime,
}
