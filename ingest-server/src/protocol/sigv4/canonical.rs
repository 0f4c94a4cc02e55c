//! SigV4 canonicalization and key derivation, per
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html>.
//!
//! Everything works on the request exactly as received: the raw path and
//! query, and header values as bytes.

use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub(crate) const ALGORITHM: &str = "AWS4-HMAC-SHA256";
pub(crate) const TERMINATOR: &str = "aws4_request";
/// SHA-256 of the empty string.
pub(crate) const EMPTY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
pub(crate) const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// Query parameter excluded from the canonical query of presigned URLs.
pub(crate) const SIGNATURE_PARAM: &str = "X-Amz-Signature";

type HmacSha256 = Hmac<Sha256>;

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// AWS URI encoding: unreserved `A-Za-z0-9-_.~` kept, everything else `%XX`
/// (uppercase hex), optionally keeping `/`.
pub(crate) fn uri_encode(bytes: &[u8], keep_slash: bool, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0x0f)] as char);
        }
    }
}

/// Decodes `%XX` sequences (and `+` as space, as form-encoded query strings
/// mean it). Malformed `%` sequences are kept literally.
pub(crate) fn query_decode(s: &str) -> Vec<u8> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => match (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// The canonical URI. AWS services other than S3 sign the path URI-encoded a
/// second time (botocore: `quote(path, safe='/~')`, aws-c-auth:
/// `use_double_uri_encode`), so the raw path as received, already encoded
/// once by the client, is encoded again with `/` kept. For the paths our
/// APIs use (`/putMedia`, `/describeStream`, ...) this is the path itself.
/// No dot-segment normalization is done; an empty path is `/`.
pub(crate) fn canonical_uri(raw_path: &str) -> String {
    if raw_path.is_empty() {
        return "/".to_owned();
    }
    let mut out = String::with_capacity(raw_path.len());
    uri_encode(raw_path.as_bytes(), true, &mut out);
    out
}

/// One decoded query parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryParam {
    pub(crate) key: Vec<u8>,
    pub(crate) value: Vec<u8>,
}

/// Splits the raw query on `&` and decodes each `k=v` (a key without `=` has
/// an empty value; empty pieces are skipped).
pub(crate) fn parse_query(raw_query: &str) -> Vec<QueryParam> {
    raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            QueryParam {
                key: query_decode(k),
                value: query_decode(v),
            }
        })
        .collect()
}

/// The canonical query string: each parameter re-encoded with AWS's rules,
/// sorted by encoded key then encoded value, joined with `&`. With
/// `skip_signature`, `X-Amz-Signature` is left out (presigned URLs).
pub(crate) fn canonical_query(params: &[QueryParam], skip_signature: bool) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .filter(|p| !(skip_signature && p.key == SIGNATURE_PARAM.as_bytes()))
        .map(|p| {
            let mut k = String::new();
            let mut v = String::new();
            uri_encode(&p.key, false, &mut k);
            uri_encode(&p.value, false, &mut v);
            (k, v)
        })
        .collect();
    encoded.sort();
    let mut out = String::new();
    for (i, (k, v)) in encoded.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Appends `value` trimmed, with internal runs of whitespace collapsed to a
/// single space (AWS's "Trimall").
fn push_trimmed(value: &[u8], out: &mut Vec<u8>) {
    let mut first = true;
    for word in value
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
    {
        if !first {
            out.push(b' ');
        }
        out.extend_from_slice(word);
        first = false;
    }
}

/// The parts of a received request that enter the canonical request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestView<'a> {
    pub(crate) method: &'a str,
    /// Raw path as received (`/putMedia`).
    pub(crate) raw_path: &'a str,
    /// Decoded query parameters, see [`parse_query`].
    pub(crate) params: &'a [QueryParam],
    pub(crate) headers: &'a HeaderMap,
    /// The URI authority: the host on HTTP/2 (`:authority`), used when there
    /// is no Host header.
    pub(crate) authority: Option<&'a str>,
}

impl<'a> RequestView<'a> {
    pub(crate) fn new(parts: &'a http::request::Parts, params: &'a [QueryParam]) -> Self {
        Self {
            method: parts.method.as_str(),
            raw_path: parts.uri.path(),
            params,
            headers: &parts.headers,
            authority: parts.uri.authority().map(|a| a.as_str()),
        }
    }
}

/// A header named in SignedHeaders is absent from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MissingSignedHeader(pub(crate) String);

/// Builds the canonical request:
///
/// ```text
/// METHOD \n canonical URI \n canonical query \n
/// name:value \n (for each signed header) \n
/// signed headers \n payload hash
/// ```
///
/// `signed_headers` is used verbatim (it is part of what the client signed);
/// each name is looked up case-insensitively. Several values of one header
/// are joined with `,` in the order received. `host` comes from the Host
/// header or, on HTTP/2, from `authority` (`:authority`). The JavaScript SDK signs the
/// HTTP/2 pseudo-header itself (`SignedHeaders=:authority;...`), valued as received.
pub(crate) fn canonical_request(
    req: &RequestView<'_>,
    skip_signature_param: bool,
    signed_headers: &str,
    payload_hash: &str,
) -> Result<Vec<u8>, MissingSignedHeader> {
    let RequestView {
        method,
        raw_path,
        params,
        headers,
        authority,
    } = *req;
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(method.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_uri(raw_path).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_query(params, skip_signature_param).as_bytes());
    out.push(b'\n');
    for name in signed_headers.split(';') {
        let lower = name.to_ascii_lowercase();
        out.extend_from_slice(lower.as_bytes());
        out.push(b':');
        let mut values = headers.get_all(lower.as_str()).iter().peekable();
        if values.peek().is_none() {
            match (lower.as_str(), authority) {
                ("host" | ":authority", Some(authority)) => {
                    push_trimmed(authority.as_bytes(), &mut out)
                }
                _ => return Err(MissingSignedHeader(lower)),
            }
        }
        for (i, v) in values.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_trimmed(v.as_bytes(), &mut out);
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(signed_headers.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    Ok(out)
}

/// Hex SHA-256.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// `AWS4-HMAC-SHA256 \n date \n scope \n hex(sha256(canonical request))`.
pub(crate) fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &[u8]) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request)
    )
}

fn hmac(key: &[u8], data: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    Zeroizing::new(mac.finalize().into_bytes().into())
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
pub(crate) fn signing_key(
    secret: &str,
    date: &str,
    region: &str,
    service: &str,
) -> Zeroizing<[u8; 32]> {
    let k_secret = Zeroizing::new(format!("AWS4{secret}"));
    let k_date = hmac(k_secret.as_bytes(), date.as_bytes());
    let k_region = hmac(&*k_date, region.as_bytes());
    let k_service = hmac(&*k_region, service.as_bytes());
    hmac(&*k_service, TERMINATOR.as_bytes())
}

/// Constant-time check of `provided` (raw signature bytes) against
/// HMAC(`key`, `string_to_sign`).
pub(crate) fn signature_matches(key: &[u8; 32], string_to_sign: &str, provided: &[u8]) -> bool {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(string_to_sign.as_bytes());
    mac.verify_slice(provided).is_ok()
}

/// Hex HMAC signature (for tests that sign).
#[cfg(test)]
pub(crate) fn sign_hex(key: &[u8; 32], string_to_sign: &str) -> String {
    hex::encode(*hmac(key, string_to_sign.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn encoding() {
        let mut s = String::new();
        uri_encode("a b/c~d-e_f.g+h=ሴ%".as_bytes(), false, &mut s);
        assert_eq!(s, "a%20b%2Fc~d-e_f.g%2Bh%3D%E1%88%B4%25");
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri("/putMedia"), "/putMedia");
        assert_eq!(canonical_uri("/a%20b/c"), "/a%2520b/c");
        assert_eq!(canonical_uri("/a:b@c"), "/a%3Ab%40c");
    }

    #[test]
    fn decoding() {
        assert_eq!(query_decode("a%20b+c%2B%e1%88%b4"), "a b c+ሴ".as_bytes());
        assert_eq!(query_decode("%"), b"%");
        assert_eq!(query_decode("%4"), b"%4");
        assert_eq!(query_decode("%zz%41"), b"%zzA");
        assert_eq!(query_decode("100%"), b"100%");
    }

    #[test]
    fn query_canonicalization() {
        let q = |raw: &str, skip| canonical_query(&parse_query(raw), skip);
        assert_eq!(q("", false), "");
        assert_eq!(q("b=2&a=1&a=0", false), "a=0&a=1&b=2");
        // Sort by key first: "Param" < "Param-3" although '-' < '='.
        assert_eq!(
            q("Param-3=Value3&Param=Value2&%E1%88%B4=Value1", false),
            "%E1%88%B4=Value1&Param=Value2&Param-3=Value3"
        );
        assert_eq!(q("key&x=", false), "key=&x=");
        assert_eq!(q("a=b%2fc&&c=%7e", false), "a=b%2Fc&c=~");
        assert_eq!(q("s=a b", false), "s=a%20b");
        assert_eq!(
            q("X-Amz-Signature=abc&X-Amz-Date=1&x-amz-signature=k", true),
            "X-Amz-Date=1&x-amz-signature=k"
        );
    }

    #[test]
    fn header_values() {
        let mut h = HeaderMap::new();
        h.append("host", HeaderValue::from_static("example.com"));
        h.append("my-h", HeaderValue::from_static("  a   b \t c  "));
        h.append("my-h", HeaderValue::from_static("second"));
        h.append("x-empty", HeaderValue::from_static(""));
        let view = |headers, authority| RequestView {
            method: "GET",
            raw_path: "/",
            params: &[],
            headers,
            authority,
        };
        let cr =
            canonical_request(&view(&h, None), false, "host;My-H;x-empty", EMPTY_SHA256).unwrap();
        assert_eq!(
            String::from_utf8(cr).unwrap(),
            format!(
                "GET\n/\n\nhost:example.com\nmy-h:a b c,second\nx-empty:\n\nhost;My-H;x-empty\n{EMPTY_SHA256}"
            )
        );
        let err = canonical_request(&view(&h, None), false, "host;nope", EMPTY_SHA256);
        assert_eq!(err, Err(MissingSignedHeader("nope".into())));

        // HTTP/2: no Host header, host from :authority.
        let h2 = HeaderMap::new();
        // The JavaScript SDK signs the pseudo-header itself.
        let cr = canonical_request(&view(&h2, Some("127.0.0.1:8443")), false, ":authority", "x")
            .unwrap();
        assert!(
            String::from_utf8(cr)
                .unwrap()
                .contains("\n:authority:127.0.0.1:8443\n")
        );
        let cr = canonical_request(&view(&h2, Some("127.0.0.1:8443")), false, "host", "x").unwrap();
        assert!(
            String::from_utf8(cr)
                .unwrap()
                .contains("\nhost:127.0.0.1:8443\n")
        );
        assert!(canonical_request(&view(&h2, None), false, "host", "x").is_err());
    }

    #[test]
    fn aws_documented_signing_key() {
        // From the AWS General Reference "Examples of how to derive a signing
        // key for Signature Version 4" (IAM example, 20120215/us-east-1/iam).
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20120215",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            hex::encode(*key),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }
}
