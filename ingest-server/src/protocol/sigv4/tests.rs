//! Tests against independent signers: AWS's published SigV4 test suite and
//! requests signed by botocore (see `testdata/README.md`), plus negative cases.

use http::request::Parts;
use http::{HeaderName, HeaderValue, Method, Request, Version};
use proptest::prelude::*;
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::datetime;

use super::canonical;
use super::*;
use crate::credentials::{CredentialStore, SecretKey};

const SUITE_AKID: &str = "AKIDEXAMPLE";
const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SUITE_NOW: OffsetDateTime = datetime!(2015-08-30 12:36:00 UTC);

fn store(akid: &str, secret: &str) -> CredentialStore {
    let mut s = CredentialStore::default();
    s.insert(akid, SecretKey::new(secret.to_owned()));
    s
}

fn suite_store() -> CredentialStore {
    store(SUITE_AKID, SUITE_SECRET)
}

/// Percent-encodes bytes a real client could not put on the wire raw.
fn wire_target(target: &str) -> String {
    let mut out = String::new();
    for b in target.bytes() {
        if b.is_ascii_graphic() {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn build_parts(
    method: &str,
    target: &str,
    headers: &[(String, String)],
    version: Version,
) -> Parts {
    let mut req = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(wire_target(target))
        .version(version)
        .body(())
        .unwrap();
    for (name, value) in headers {
        req.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    req.into_parts().0
}

/// Parses a raw HTTP/1.1 request from the test suite the way hyper would
/// (header values with surrounding whitespace trimmed).
fn parse_raw(raw: &str) -> (Parts, Vec<u8>) {
    let (head, body) = raw.split_once("\n\n").unwrap_or((raw, ""));
    let mut lines = head.lines();
    let request_line = lines.next().unwrap();
    let (method, rest) = request_line.split_once(' ').unwrap();
    let (target, version) = rest.rsplit_once(' ').unwrap();
    assert_eq!(version, "HTTP/1.1");
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.to_owned(), v.trim().to_owned())
        })
        .collect();
    (
        build_parts(method, target, &headers, Version::HTTP_11),
        body.as_bytes().to_vec(),
    )
}

fn signed_headers_of_authorization(parts: &Parts) -> String {
    let auth = parts.headers["authorization"].to_str().unwrap();
    let start = auth.find("SignedHeaders=").unwrap() + "SignedHeaders=".len();
    auth[start..].split(',').next().unwrap().trim().to_owned()
}

struct SuiteCase {
    name: &'static str,
    header_signed: &'static str,
    header_canonical: &'static str,
    query_signed: &'static str,
    query_canonical: &'static str,
}

macro_rules! suite {
    ($($name:literal),* $(,)?) => {
        [$(SuiteCase {
            name: $name,
            header_signed: include_str!(concat!("testdata/aws-signing-test-suite/", $name, "/header-signed-request.txt")),
            header_canonical: include_str!(concat!("testdata/aws-signing-test-suite/", $name, "/header-canonical-request.txt")),
            query_signed: include_str!(concat!("testdata/aws-signing-test-suite/", $name, "/query-signed-request.txt")),
            query_canonical: include_str!(concat!("testdata/aws-signing-test-suite/", $name, "/query-canonical-request.txt")),
        }),*]
    };
}

fn suite_cases() -> [SuiteCase; 27] {
    suite![
        "get-vanilla",
        "get-vanilla-query",
        "get-vanilla-query-order-key-case",
        "get-vanilla-query-order-encoded",
        "get-vanilla-query-unreserved",
        "get-vanilla-utf8-query",
        "get-vanilla-empty-query-key",
        "get-vanilla-with-session-token",
        "get-header-key-duplicate",
        "get-header-value-order",
        "get-header-value-trim",
        "get-unreserved",
        "get-relative-unnormalized",
        "get-slashes-unnormalized",
        "get-slash-unnormalized",
        "get-slash-dot-slash-unnormalized",
        "get-slash-pointless-dot-unnormalized",
        "post-vanilla",
        "post-vanilla-query",
        "post-vanilla-empty-query-value",
        "post-header-key-case",
        "post-header-key-sort",
        "post-header-value-case",
        "post-sts-header-after",
        "post-sts-header-before",
        "post-x-www-form-urlencoded",
        "post-x-www-form-urlencoded-parameters",
    ]
}

/// No error message may carry a secret or anything shaped like a signature.
fn assert_clean_message(err: &AuthError, secrets: &[&str]) {
    let msg = err.message();
    for s in secrets {
        assert!(!msg.contains(s), "message leaks secret: {msg}");
    }
    let mut run = 0;
    for c in msg.chars() {
        run = if c.is_ascii_hexdigit() { run + 1 } else { 0 };
        assert!(run < 64, "message contains a 64-hex-char run: {msg}");
    }
    assert_eq!(err.http_status(), 403);
}

#[test]
fn aws_test_suite_header_form() {
    let creds = suite_store();
    for case in suite_cases() {
        let (parts, body) = parse_raw(case.header_signed);
        let verified = verify(
            &parts,
            PayloadHash::Body(&body),
            &creds,
            &["service"],
            SUITE_NOW,
        )
        .unwrap_or_else(|e| panic!("{}: {e:?}", case.name));
        assert_eq!(
            verified,
            VerifiedRequest {
                access_key_id: SUITE_AKID.into(),
                region: "us-east-1".into(),
                service: "service".into(),
                date: SUITE_NOW,
            },
            "{}",
            case.name
        );

        // Our canonical request is byte-for-byte AWS's.
        let params = canonical::parse_query(parts.uri.query().unwrap_or(""));
        let cr = canonical::canonical_request(
            &canonical::RequestView::new(&parts, &params),
            false,
            &signed_headers_of_authorization(&parts),
            &canonical::sha256_hex(&body),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(cr).unwrap(),
            case.header_canonical,
            "{}",
            case.name
        );

        // Any change to the date breaks the signature, even within the skew.
        let mut moved = parts.clone();
        moved
            .headers
            .insert("x-amz-date", HeaderValue::from_static("20150830T123601Z"));
        assert_eq!(
            verify(
                &moved,
                PayloadHash::Body(&body),
                &creds,
                &["service"],
                SUITE_NOW
            ),
            Err(AuthError::SignatureMismatch),
            "{}",
            case.name
        );
    }
}

#[test]
fn aws_test_suite_presigned_form() {
    let creds = suite_store();
    for case in suite_cases() {
        if case.name == "post-sts-header-after" {
            // The session token is appended to the URL after signing (a
            // convention of some services); we do not support session tokens.
            continue;
        }
        let (parts, body) = parse_raw(case.query_signed);
        let verified = verify(
            &parts,
            PayloadHash::Body(&body),
            &creds,
            &["service"],
            SUITE_NOW,
        )
        .unwrap_or_else(|e| panic!("{}: {e:?}", case.name));
        assert_eq!(verified.access_key_id, SUITE_AKID);
        assert_eq!(verified.date, SUITE_NOW);

        {
            let expected = case.query_canonical;
            let params = canonical::parse_query(parts.uri.query().unwrap_or(""));
            let signed = params
                .iter()
                .find(|p| p.key == b"X-Amz-SignedHeaders")
                .map(|p| String::from_utf8(p.value.clone()).unwrap())
                .unwrap();
            let cr = canonical::canonical_request(
                &canonical::RequestView::new(&parts, &params),
                true,
                &signed,
                &canonical::sha256_hex(&body),
            )
            .unwrap();
            assert_eq!(String::from_utf8(cr).unwrap(), expected, "{}", case.name);
        }

        // Valid for X-Amz-Expires=3600 seconds, not one more.
        let at = |now| verify(&parts, PayloadHash::Body(&body), &creds, &["service"], now);
        assert!(at(SUITE_NOW + time::Duration::seconds(3600)).is_ok());
        let err = at(SUITE_NOW + time::Duration::seconds(3601)).unwrap_err();
        assert_eq!(
            err,
            AuthError::PresignedUrlExpired {
                request: "20150830T123600Z".into(),
                limit: "20150830T123601Z".into(),
                now: "20150830T133601Z".into(),
                expires: 3600,
            }
        );
        assert_eq!(err.aws_code(), "InvalidSignatureException");
        assert!(err.message().starts_with("Signature expired: "));
        // Signed in the future beyond the allowed skew.
        assert!(matches!(
            at(SUITE_NOW - time::Duration::minutes(16)),
            Err(AuthError::SignatureNotYetCurrent { .. })
        ));
    }
}

// ---------------------------------------------------------------------------
// botocore vectors

struct BotoVector {
    name: String,
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    streaming: bool,
    service: String,
    region: String,
    access_key_id: String,
    secret: String,
    now: OffsetDateTime,
}

impl BotoVector {
    fn parts(&self) -> Parts {
        build_parts(&self.method, &self.target, &self.headers, Version::HTTP_11)
    }

    fn payload(&self) -> PayloadHash<'_> {
        if self.streaming {
            PayloadHash::Streaming
        } else {
            PayloadHash::Body(&self.body)
        }
    }

    fn store(&self) -> CredentialStore {
        store(&self.access_key_id, &self.secret)
    }

    fn verify_parts(&self, parts: &Parts) -> Result<VerifiedRequest, AuthError> {
        verify(
            parts,
            self.payload(),
            &self.store(),
            &[self.service.as_str()],
            self.now,
        )
    }
}

fn boto_vectors() -> Vec<BotoVector> {
    let doc: Value = serde_json::from_str(include_str!("testdata/botocore_vectors.json")).unwrap();
    doc["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap().to_owned();
            BotoVector {
                name: s("name"),
                method: s("method"),
                target: s("target"),
                headers: v["headers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| {
                        (
                            h[0].as_str().unwrap().to_owned(),
                            h[1].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect(),
                body: s("body").into_bytes(),
                streaming: s("payload") == "streaming",
                service: s("service"),
                region: s("region"),
                access_key_id: s("access_key_id"),
                secret: s("secret_access_key"),
                now: time::PrimitiveDateTime::parse(
                    &s("now"),
                    time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"),
                )
                .unwrap()
                .assume_utc(),
            }
        })
        .collect()
}

fn boto(name: &str) -> BotoVector {
    boto_vectors()
        .into_iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no vector {name}"))
}

#[test]
fn botocore_vectors_verify() {
    let vectors = boto_vectors();
    assert_eq!(vectors.len(), 8);
    for v in &vectors {
        let verified = v
            .verify_parts(&v.parts())
            .unwrap_or_else(|e| panic!("{}: {e:?}", v.name));
        assert_eq!(verified.access_key_id, v.access_key_id, "{}", v.name);
        assert_eq!(verified.region, v.region, "{}", v.name);
        assert_eq!(verified.service, "kinesisvideo", "{}", v.name);
        assert_eq!(verified.date, v.now, "{}", v.name);
    }
}

#[test]
fn http2_uses_authority_for_host() {
    for name in [
        "describe-stream-json",
        "list-fragments-local-port",
        "presigned-generic",
    ] {
        let v = boto(name);
        let host = v
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("host"))
            .unwrap()
            .1
            .clone();
        let headers: Vec<_> = v
            .headers
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("host"))
            .cloned()
            .collect();
        let target = format!("https://{host}{}", v.target);
        let parts = build_parts(&v.method, &target, &headers, Version::HTTP_2);
        assert!(parts.headers.get("host").is_none());
        v.verify_parts(&parts)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));

        // A different authority is a different request.
        let target = format!("https://evil.example{}", v.target);
        let parts = build_parts(&v.method, &target, &headers, Version::HTTP_2);
        assert_eq!(v.verify_parts(&parts), Err(AuthError::SignatureMismatch));
    }
}

#[test]
fn put_media_host_is_taken_as_sent() {
    let v = boto("put-media-c-producer");
    let parts = v.parts();
    assert_eq!(parts.headers["host"], "127.0.0.1");
    v.verify_parts(&parts).unwrap();

    // Rebuilding the host with the port (as connected) would break it: the
    // verifier must not do that, and a request carrying it fails.
    let mut with_port = parts.clone();
    with_port
        .headers
        .insert("host", HeaderValue::from_static("127.0.0.1:8443"));
    assert_eq!(
        v.verify_parts(&with_port),
        Err(AuthError::SignatureMismatch)
    );

    // Streaming body: whatever follows is not part of the signature...
    assert!(
        verify(
            &parts,
            PayloadHash::Streaming,
            &v.store(),
            &["kinesisvideo"],
            v.now
        )
        .is_ok()
    );
    // ...but a client-declared payload hash is, when present.
    let mut declared = parts.clone();
    declared.headers.insert(
        "x-amz-content-sha256",
        HeaderValue::from_static("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
    );
    assert_eq!(v.verify_parts(&declared), Err(AuthError::SignatureMismatch));

    // Each signed header matters.
    for (name, value) in [
        ("x-amzn-stream-name", "other-stream"),
        ("x-amzn-fragment-timecode-type", "RELATIVE"),
        ("user-agent", "curl/8"),
        ("transfer-encoding", "identity"),
        ("connection", "close"),
    ] {
        let mut p = parts.clone();
        p.headers
            .insert(name, HeaderValue::from_str(value).unwrap());
        assert_eq!(
            v.verify_parts(&p),
            Err(AuthError::SignatureMismatch),
            "{name}"
        );
        let mut p = parts.clone();
        p.headers.remove(name);
        assert_eq!(
            v.verify_parts(&p),
            Err(AuthError::SignatureMismatch),
            "{name}"
        );
    }
    // Unsigned headers do not.
    let mut p = parts.clone();
    p.headers
        .insert("x-unsigned", HeaderValue::from_static("anything"));
    assert!(v.verify_parts(&p).is_ok());
}

#[test]
fn streaming_with_declared_payload_hash() {
    // A client that signs `x-amz-content-sha256: STREAMING-...` (and the header
    // itself): the value is used as the payload hash. Signed here with the
    // canonical module since botocore's SigV4Auth cannot produce it.
    let v = boto("put-media-c-producer");
    let mut parts = v.parts();
    parts.headers.remove("authorization");
    parts.headers.insert(
        "x-amz-content-sha256",
        HeaderValue::from_static("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
    );
    let signed = "host;x-amz-content-sha256;x-amz-date;x-amzn-stream-name";
    let cr = canonical::canonical_request(
        &canonical::RequestView::new(&parts, &[]),
        false,
        signed,
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    )
    .unwrap();
    let scope = "20150830/us-west-2/kinesisvideo/aws4_request";
    let key = canonical::signing_key(&v.secret, "20150830", "us-west-2", "kinesisvideo");
    let sig = canonical::sign_hex(
        &key,
        &canonical::string_to_sign("20150830T123600Z", scope, &cr),
    );
    parts.headers.insert(
        "authorization",
        HeaderValue::from_str(&format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={sig}",
            v.access_key_id
        ))
        .unwrap(),
    );
    v.verify_parts(&parts).unwrap();
}

#[test]
fn tampering_is_detected() {
    let v = boto("describe-stream-json");
    let parts = v.parts();
    let creds = v.store();
    let ok = |p: &Parts, body: &[u8]| {
        verify(p, PayloadHash::Body(body), &creds, &["kinesisvideo"], v.now)
    };
    assert!(ok(&parts, &v.body).is_ok());

    // Body.
    let err = ok(&parts, br#"{"StreamName":"my-streaM"}"#).unwrap_err();
    assert_eq!(err, AuthError::SignatureMismatch);
    assert_eq!(err.aws_code(), "InvalidSignatureException");
    assert_eq!(
        err.message(),
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. Consult the service \
         documentation for details."
    );
    assert_clean_message(&err, &[&v.secret]);

    // Signed header value, including whitespace-insignificant changes.
    let mut p = parts.clone();
    p.headers.insert(
        "content-type",
        HeaderValue::from_static("application/json2"),
    );
    assert_eq!(ok(&p, &v.body), Err(AuthError::SignatureMismatch));
    let mut p = parts.clone();
    p.headers.insert(
        "content-type",
        HeaderValue::from_static("  application/json "),
    );
    assert!(ok(&p, &v.body).is_ok(), "surrounding whitespace is trimmed");
    // A second value for a signed header.
    let mut p = parts.clone();
    p.headers
        .append("content-type", HeaderValue::from_static("text/plain"));
    assert_eq!(ok(&p, &v.body), Err(AuthError::SignatureMismatch));

    // Method, path, query.
    let mut p = parts.clone();
    p.method = Method::PUT;
    assert_eq!(ok(&p, &v.body), Err(AuthError::SignatureMismatch));
    let mut p = parts.clone();
    p.uri = "/deleteStream".parse().unwrap();
    assert_eq!(ok(&p, &v.body), Err(AuthError::SignatureMismatch));
    let mut p = parts.clone();
    p.uri = "/describeStream?x=1".parse().unwrap();
    assert_eq!(ok(&p, &v.body), Err(AuthError::SignatureMismatch));

    // Signature itself: flipped, truncated, not hex, uppercase hex.
    let auth = parts.headers["authorization"].to_str().unwrap().to_owned();
    let sig_at = auth.find("Signature=").unwrap() + "Signature=".len();
    let sig = &auth[sig_at..];
    let mut flipped = sig.to_owned();
    let last = flipped.pop().unwrap();
    flipped.push(if last == '0' { '1' } else { '0' });
    for bad in [flipped.as_str(), &sig[..63], &sig[..62], "zz", ""] {
        let mut p = parts.clone();
        p.headers.insert(
            "authorization",
            HeaderValue::from_str(&format!("{}{bad}", &auth[..sig_at])).unwrap(),
        );
        let err = ok(&p, &v.body).unwrap_err();
        assert_eq!(err, AuthError::SignatureMismatch, "{bad:?}");
    }

    // Secret mismatch.
    let other = store(&v.access_key_id, "another secret");
    assert_eq!(
        verify(
            &parts,
            PayloadHash::Body(&v.body),
            &other,
            &["kinesisvideo"],
            v.now
        ),
        Err(AuthError::SignatureMismatch)
    );
}

#[test]
fn unknown_access_key() {
    let v = boto("describe-stream-json");
    let creds = store("AKIAOTHER", "s");
    let err = verify(&v.parts(), v.payload(), &creds, &["kinesisvideo"], v.now).unwrap_err();
    assert_eq!(err, AuthError::UnrecognizedClient);
    assert_eq!(err.aws_code(), "UnrecognizedClientException");
    assert_eq!(
        err.message(),
        "The security token included in the request is invalid."
    );
    // Access key ids are case-sensitive.
    let creds = store(&v.access_key_id.to_lowercase(), &v.secret);
    assert_eq!(
        verify(&v.parts(), v.payload(), &creds, &["kinesisvideo"], v.now),
        Err(AuthError::UnrecognizedClient)
    );
}

#[test]
fn clock_skew() {
    for name in [
        "describe-stream-json",
        "date-header",
        "put-media-c-producer",
    ] {
        let v = boto(name);
        let parts = v.parts();
        let at = |now| verify(&parts, v.payload(), &v.store(), &["kinesisvideo"], now);
        for minutes in [-15, -14, 0, 14, 15] {
            assert!(
                at(v.now + time::Duration::minutes(minutes)).is_ok(),
                "{name} {minutes}"
            );
        }
        // Server clock 16 minutes ahead: the request is too old.
        let err = at(v.now + time::Duration::minutes(16)).unwrap_err();
        assert_eq!(
            err.message(),
            "Signature expired: 20150830T123600Z is now earlier than 20150830T123700Z \
             (20150830T125200Z - 15 min.)"
        );
        assert_eq!(err.aws_code(), "InvalidSignatureException");
        // Server clock 16 minutes behind: the request is from the future.
        let err = at(v.now - time::Duration::minutes(16)).unwrap_err();
        assert_eq!(
            err.message(),
            "Signature not yet current: 20150830T123600Z is still later than 20150830T123500Z \
             (20150830T122000Z + 15 min.)"
        );
        assert_eq!(err.aws_code(), "InvalidSignatureException");
        // One second over.
        assert!(at(v.now + time::Duration::seconds(15 * 60 + 1)).is_err());
        assert!(at(v.now - time::Duration::seconds(15 * 60 + 1)).is_err());
    }
}

#[test]
fn presigned_expiry_and_limits() {
    let v = boto("presigned-generic"); // X-Amz-Expires=300
    let parts = v.parts();
    let at = |p: &Parts, now| verify(p, v.payload(), &v.store(), &["kinesisvideo"], now);
    assert!(at(&parts, v.now + time::Duration::seconds(300)).is_ok());
    let err = at(&parts, v.now + time::Duration::seconds(301)).unwrap_err();
    assert!(matches!(
        err,
        AuthError::PresignedUrlExpired { expires: 300, .. }
    ));
    assert!(
        err.message()
            .starts_with("Signature expired: 20150830T123600Z")
    );
    // Presigned requests are not subject to the 15-minute "too old" rule...
    let long = boto("presigned-unsigned-payload"); // X-Amz-Expires=604800
    let lp = long.parts();
    assert!(
        verify(
            &lp,
            long.payload(),
            &long.store(),
            &["kinesisvideo"],
            long.now + time::Duration::days(7)
        )
        .is_ok()
    );
    assert!(
        verify(
            &lp,
            long.payload(),
            &long.store(),
            &["kinesisvideo"],
            long.now + time::Duration::days(7) + time::Duration::seconds(1)
        )
        .is_err()
    );

    // Tampered query parameters.
    let tamper = |from: &str, to: &str| {
        let mut p = parts.clone();
        let pq = p.uri.path_and_query().unwrap().as_str().replace(from, to);
        assert_ne!(pq, p.uri.path_and_query().unwrap().as_str(), "{from}");
        p.uri = pq.parse().unwrap();
        at(&p, v.now)
    };
    assert_eq!(
        tamper("X-Amz-Expires=300", "X-Amz-Expires=301"),
        Err(AuthError::SignatureMismatch)
    );
    assert_eq!(
        tamper("SessionToken=abc", "SessionToken=abd"),
        Err(AuthError::SignatureMismatch)
    );
    assert_eq!(
        tamper("X-Amz-Signature=4", "X-Amz-Signature=5"),
        Err(AuthError::SignatureMismatch)
    );
    assert!(matches!(
        tamper("X-Amz-Expires=300", "X-Amz-Expires=604801"),
        Err(AuthError::IncompleteSignature(_))
    ));
    assert!(matches!(
        tamper("X-Amz-Expires=300", "X-Amz-Expires=-1"),
        Err(AuthError::IncompleteSignature(_))
    ));
    assert!(matches!(
        tamper(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Algorithm=AWS4-HMAC-SHA512"
        ),
        Err(AuthError::IncompleteSignature(_))
    ));
    let err = tamper("&X-Amz-SignedHeaders=host", "").unwrap_err();
    assert_eq!(
        err.message(),
        "AWS query-string parameters must include 'X-Amz-SignedHeaders'. \
         Re-examine the query-string parameters."
    );
    assert_eq!(err.aws_code(), "IncompleteSignatureException");
    assert!(matches!(
        tamper("X-Amz-Date=", "X-Amz-Date=2&X-Amz-Date="),
        Err(AuthError::IncompleteSignature(_))
    ));

    // The host is signed.
    let mut p = parts.clone();
    p.headers
        .insert("host", HeaderValue::from_static("127.0.0.1:4444"));
    assert_eq!(at(&p, v.now), Err(AuthError::SignatureMismatch));

    // Both mechanisms at once.
    let mut p = parts.clone();
    p.headers.insert(
        "authorization",
        HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=x"),
    );
    assert!(matches!(
        at(&p, v.now),
        Err(AuthError::IncompleteSignature(_))
    ));
}

#[test]
fn presigned_payload_hash_choices() {
    // Generic presigner signed the empty-body hash, S3-style signed
    // UNSIGNED-PAYLOAD; both verify with either PayloadHash.
    for name in ["presigned-generic", "presigned-unsigned-payload"] {
        let v = boto(name);
        let parts = v.parts();
        for payload in [PayloadHash::Streaming, PayloadHash::Body(b"")] {
            verify(&parts, payload, &v.store(), &["kinesisvideo"], v.now)
                .unwrap_or_else(|e| panic!("{name} {payload:?}: {e:?}"));
        }
        // A non-empty body is not what the generic signer hashed.
        let r = verify(
            &parts,
            PayloadHash::Body(b"x"),
            &v.store(),
            &["kinesisvideo"],
            v.now,
        );
        assert_eq!(r.is_ok(), name == "presigned-unsigned-payload", "{name}");
    }
}

#[test]
fn wrong_service_and_scope() {
    let v = boto("describe-stream-json");
    let err = verify(&v.parts(), v.payload(), &v.store(), &["s3"], v.now).unwrap_err();
    assert_eq!(err.aws_code(), "InvalidSignatureException");
    assert_eq!(
        err.message(),
        "Credential should be scoped to correct service: 's3'. "
    );
    // Several allowed services.
    assert!(
        verify(
            &v.parts(),
            v.payload(),
            &v.store(),
            &["s3", "kinesisvideo"],
            v.now
        )
        .is_ok()
    );

    let suite_case = &suite_cases()[0];
    let (parts, body) = parse_raw(suite_case.header_signed);
    let err = verify(
        &parts,
        PayloadHash::Body(&body),
        &suite_store(),
        &["kinesisvideo"],
        SUITE_NOW,
    )
    .unwrap_err();
    assert_eq!(
        err,
        AuthError::WrongService {
            expected: "kinesisvideo".into()
        }
    );

    // Scope date must be the request's day.
    let with_auth = |auth: &str| {
        let mut p = parts.clone();
        p.headers
            .insert("authorization", HeaderValue::from_str(auth).unwrap());
        verify(
            &p,
            PayloadHash::Body(&body),
            &suite_store(),
            &["service"],
            SUITE_NOW,
        )
    };
    let sig = "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
    let err = with_auth(&format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150831/us-east-1/service/aws4_request, \
         SignedHeaders=host;x-amz-date, {sig}"
    ))
    .unwrap_err();
    assert_eq!(
        err.message(),
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
         HTTP: '20150831' != '20150830', from '20150830T123600Z'."
    );
    let err = with_auth(&format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws5_request, \
         SignedHeaders=host;x-amz-date, {sig}"
    ))
    .unwrap_err();
    assert_eq!(err.aws_code(), "InvalidSignatureException");
    let err = with_auth(&format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830//service/aws4_request, \
         SignedHeaders=host;x-amz-date, {sig}"
    ))
    .unwrap_err();
    assert_eq!(err.aws_code(), "InvalidSignatureException");
    // Another region is a different signature (but any region is accepted).
    assert_eq!(
        with_auth(&format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-west-2/service/aws4_request, \
             SignedHeaders=host;x-amz-date, {sig}"
        )),
        Err(AuthError::SignatureMismatch)
    );
    // Original is fine (sanity).
    assert!(
        with_auth(&format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, {sig}"
        ))
        .is_ok()
    );
    // Extra whitespace around separators is tolerated.
    assert!(
        with_auth(&format!(
            "AWS4-HMAC-SHA256   Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request ,\
             SignedHeaders=host;x-amz-date,{sig}"
        ))
        .is_ok()
    );
}

#[test]
fn missing_and_malformed_authorization() {
    let v = boto("describe-stream-json");
    let mut bare = v.parts();
    bare.headers.remove("authorization");
    let creds = v.store();
    let run = |p: &Parts| verify(p, v.payload(), &creds, &["kinesisvideo"], v.now);

    let err = run(&bare).unwrap_err();
    assert_eq!(err, AuthError::MissingAuthenticationToken);
    assert_eq!(err.aws_code(), "MissingAuthenticationTokenException");
    assert_eq!(err.message(), "Missing Authentication Token");

    let with = |auth: &str, date: bool| {
        let mut p = bare.clone();
        p.headers
            .insert("authorization", HeaderValue::from_str(auth).unwrap());
        if !date {
            p.headers.remove("x-amz-date");
        }
        run(&p).unwrap_err()
    };
    let cred = format!(
        "Credential={}/20150830/us-west-2/kinesisvideo/aws4_request",
        v.access_key_id
    );
    let cases: Vec<(String, bool, &str)> = vec![
        (
            "foo".into(),
            false,
            "Authorization header requires 'Credential' parameter. Authorization header \
             requires 'Signature' parameter. Authorization header requires 'SignedHeaders' \
             parameter. Authorization header requires existence of either a 'X-Amz-Date' or \
             a 'Date' header.",
        ),
        (
            format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;x-amz-date"),
            true,
            "Authorization header requires 'Signature' parameter.",
        ),
        (
            format!("AWS4-HMAC-SHA256 {cred}, Signature=abcd"),
            true,
            "Authorization header requires 'SignedHeaders' parameter.",
        ),
        (
            "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=abcd".into(),
            true,
            "Authorization header requires 'Credential' parameter.",
        ),
        (
            format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host, Signature=ab"),
            false,
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKIA/20150830/kinesisvideo/aws4_request, \
             SignedHeaders=host, Signature=ab"
                .into(),
            true,
            "Credential must have exactly 5 slash-delimited elements, e.g. \
             keyid/date/region/service/term, got 'AKIA/20150830/kinesisvideo/aws4_request'",
        ),
        (
            format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=x-amz-date, Signature=ab"),
            true,
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ),
    ];
    for (auth, date, expected) in cases {
        let err = with(&auth, date);
        assert_eq!(err.message(), expected, "{auth}");
        assert_eq!(err.aws_code(), "IncompleteSignatureException", "{auth}");
        assert_clean_message(&err, &[&v.secret]);
    }
    for auth in [
        format!("AWS4-HMAC-SHA512 {cred}, SignedHeaders=host, Signature=ab"),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host, Signature=ab, Signature=cd"),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;;x-amz-date, Signature=ab"),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=, Signature=ab"),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host, Signature=ab, Bogus"),
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host, Signature=ab, Other=1"),
        format!("AWS4-HMAC-SHA256 {cred},, SignedHeaders=host Signature=ab"),
    ] {
        let err = with(&auth, true);
        assert_eq!(
            err.aws_code(),
            "IncompleteSignatureException",
            "{auth}: {err}"
        );
    }

    // Bad dates.
    let mut p = v.parts();
    p.headers.insert(
        "x-amz-date",
        HeaderValue::from_static("2015-08-30T12:36:00Z"),
    );
    let err = run(&p).unwrap_err();
    assert_eq!(
        err.message(),
        "Date must be in ISO-8601 'basic format'. Got '2015-08-30T12:36:00Z'. See \
         http://en.wikipedia.org/wiki/ISO_8601"
    );
    let d = boto("date-header");
    let mut p = d.parts();
    p.headers
        .insert("date", HeaderValue::from_static("tomorrow"));
    assert!(matches!(
        d.verify_parts(&p),
        Err(AuthError::IncompleteSignature(_))
    ));

    // Two Authorization headers.
    let mut p = v.parts();
    let auth = p.headers["authorization"].clone();
    p.headers.append("authorization", auth);
    assert!(matches!(run(&p), Err(AuthError::IncompleteSignature(_))));

    // Non-ASCII Authorization header.
    let mut p = v.parts();
    p.headers.insert(
        "authorization",
        HeaderValue::from_bytes(b"AWS4-HMAC-SHA256 Credential=\xff").unwrap(),
    );
    assert!(matches!(run(&p), Err(AuthError::IncompleteSignature(_))));

    // Client text echoed in messages is bounded.
    let long = format!(
        "AWS4-HMAC-SHA256 Credential={}, SignedHeaders=host, Signature=a",
        "A".repeat(10_000)
    );
    assert!(with(&long, true).message().len() < 400);
}

#[test]
fn signature_error_messages_never_leak() {
    // Every error path over the vectors, checked for secrets and signatures.
    for v in boto_vectors() {
        let parts = v.parts();
        let mut errors = vec![
            verify(
                &parts,
                PayloadHash::Body(b"tampered"),
                &v.store(),
                &["kinesisvideo"],
                v.now,
            ),
            verify(&parts, v.payload(), &v.store(), &["other"], v.now),
            verify(
                &parts,
                v.payload(),
                &v.store(),
                &["kinesisvideo"],
                v.now + time::Duration::days(8),
            ),
            verify(
                &parts,
                v.payload(),
                &v.store(),
                &["kinesisvideo"],
                v.now - time::Duration::hours(1),
            ),
            verify(
                &parts,
                v.payload(),
                &store(&v.access_key_id, "wrong"),
                &["kinesisvideo"],
                v.now,
            ),
        ];
        let mut p = parts.clone();
        p.headers.remove("host");
        errors.push(verify(
            &p,
            v.payload(),
            &v.store(),
            &["kinesisvideo"],
            v.now,
        ));
        for e in errors.into_iter().filter_map(Result::err) {
            assert_clean_message(&e, &[&v.secret]);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_authorization_never_panics(
        raw in proptest::collection::vec(
            prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff], 0..200),
        date in proptest::option::of("[0-9TZ]{0,20}"),
    ) {
        let v = boto("describe-stream-json");
        let mut p = v.parts();
        p.headers.insert("authorization", HeaderValue::from_bytes(&raw).unwrap());
        match date {
            Some(d) => { p.headers.insert("x-amz-date", HeaderValue::from_str(&d).unwrap()); }
            None => { p.headers.remove("x-amz-date"); }
        }
        if let Err(e) = verify(&p, v.payload(), &v.store(), &["kinesisvideo"], v.now) {
            assert_clean_message(&e, &[&v.secret]);
        }
    }

    #[test]
    fn structured_authorization_never_panics(
        alg in prop_oneof![Just("AWS4-HMAC-SHA256".to_owned()), "[ -~]{0,20}"],
        cred in "[ -~]{0,60}",
        signed in "[ -~]{0,40}",
        sig in "[ -~]{0,70}",
        sep in prop_oneof![Just(", "), Just(","), Just(" "), Just(";")],
    ) {
        let v = boto("describe-stream-json");
        let mut p = v.parts();
        let value = format!("{alg} Credential={cred}{sep}SignedHeaders={signed}{sep}Signature={sig}");
        if let Ok(h) = HeaderValue::from_str(&value) {
            p.headers.insert("authorization", h);
            if let Err(e) = verify(&p, v.payload(), &v.store(), &["kinesisvideo"], v.now) {
                assert_clean_message(&e, &[&v.secret]);
            }
        }
    }

    #[test]
    fn arbitrary_query_never_panics(
        q in "([A-Za-z0-9%&=+._~-]|X-Amz-(Algorithm|Credential|Date|Expires|SignedHeaders|Signature)=){0,20}",
    ) {
        let v = boto("presigned-generic");
        let mut p = v.parts();
        if let Ok(uri) = format!("/x?{q}").parse() {
            p.uri = uri;
            if let Err(e) = verify(&p, v.payload(), &v.store(), &["kinesisvideo"], v.now) {
                assert_clean_message(&e, &[&v.secret]);
            }
        }
    }
}
