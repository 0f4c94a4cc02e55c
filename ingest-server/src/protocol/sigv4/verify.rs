//! Verification of a received request's SigV4 signature.

use http::header::{AUTHORIZATION, DATE};
use http::request::Parts;
use time::format_description::well_known::Rfc2822;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use super::canonical::{
    self, ALGORITHM, EMPTY_SHA256, QueryParam, SIGNATURE_PARAM, TERMINATOR, UNSIGNED_PAYLOAD,
};
use super::{AuthError, PayloadHash, VerifiedRequest};
use crate::credentials::CredentialStore;

/// Maximum clock difference between client and server, either direction.
const MAX_SKEW: Duration = Duration::minutes(15);
/// Maximum `X-Amz-Expires` (7 days), as AWS.
const MAX_EXPIRES: u32 = 604_800;

const X_AMZ_DATE: &str = "x-amz-date";
const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";

/// Longest client-supplied text echoed back in an error message.
const ECHO_LIMIT: usize = 128;

/// What the client presented, from either the header or the query.
struct Presented<'a> {
    access_key_id: &'a str,
    scope_date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
    /// The request timestamp as it appears in the string to sign.
    amz_date: String,
    date: OffsetDateTime,
    /// `Some(expires)` for presigned URLs.
    presigned_expires: Option<u32>,
}

/// Verifies the SigV4 signature of a request (Authorization header or presigned
/// query form) against `creds`. See the module documentation for the rules.
pub fn verify(
    parts: &Parts,
    payload: PayloadHash<'_>,
    creds: &CredentialStore,
    allowed_services: &[&str],
    now: OffsetDateTime,
) -> Result<VerifiedRequest, AuthError> {
    let params = canonical::parse_query(parts.uri.query().unwrap_or(""));
    let presigned = params.iter().any(|p| {
        [
            b"X-Amz-Algorithm".as_slice(),
            b"X-Amz-Credential",
            SIGNATURE_PARAM.as_bytes(),
        ]
        .contains(&p.key.as_slice())
    });
    let mut auth_headers = parts.headers.get_all(AUTHORIZATION).iter();
    let auth_header = auth_headers.next();
    if auth_headers.next().is_some() {
        return Err(AuthError::IncompleteSignature(
            "Only one Authorization header may be specified.".to_owned(),
        ));
    }

    let presented = match (auth_header, presigned) {
        (None, false) => return Err(AuthError::MissingAuthenticationToken),
        (Some(_), true) => {
            return Err(AuthError::IncompleteSignature(
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, \
                 Signature query string parameter or the Authorization header should be \
                 specified."
                    .to_owned(),
            ));
        }
        (Some(value), false) => {
            let value = value.to_str().map_err(|_| {
                AuthError::IncompleteSignature(
                    "Authorization header contains characters that are not visible ASCII."
                        .to_owned(),
                )
            })?;
            from_authorization_header(value, parts)?
        }
        (None, true) => from_query(&params)?,
    };

    // Credential scope.
    if !allowed_services.contains(&presented.service) {
        return Err(AuthError::WrongService {
            expected: allowed_services.first().copied().unwrap_or("").to_owned(),
        });
    }
    if presented.region.is_empty() {
        return Err(AuthError::InvalidScope(
            "Credential should be scoped to a valid region. ".to_owned(),
        ));
    }
    let request_day = &presented.amz_date[..8];
    if presented.scope_date != request_day {
        return Err(AuthError::InvalidScope(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
             from HTTP: '{}' != '{request_day}', from '{}'.",
            echo(presented.scope_date),
            presented.amz_date
        )));
    }

    let secret = creds
        .secret_for(presented.access_key_id)
        .ok_or(AuthError::UnrecognizedClient)?;

    check_time(&presented, now)?;

    let view = canonical::RequestView::new(parts, &params);
    let candidates = payload_candidates(payload, parts, presented.presigned_expires.is_some());
    let scope = format!(
        "{}/{}/{}/{TERMINATOR}",
        presented.scope_date, presented.region, presented.service
    );
    let key = canonical::signing_key(
        secret.expose(),
        presented.scope_date,
        presented.region,
        presented.service,
    );
    // A malformed signature simply cannot match.
    let provided = hex::decode(presented.signature.as_bytes()).unwrap_or_default();
    let mut matched = false;
    for payload_hash in &candidates {
        let canonical_request = canonical::canonical_request(
            &view,
            presented.presigned_expires.is_some(),
            presented.signed_headers,
            payload_hash,
        )
        .map_err(|_| AuthError::SignatureMismatch)?;
        let sts = canonical::string_to_sign(&presented.amz_date, &scope, &canonical_request);
        if canonical::signature_matches(&key, &sts, &provided) {
            matched = true;
            break;
        }
    }
    if !matched {
        return Err(AuthError::SignatureMismatch);
    }
    Ok(VerifiedRequest {
        access_key_id: presented.access_key_id.to_owned(),
        region: presented.region.to_owned(),
        service: presented.service.to_owned(),
        date: presented.date,
    })
}

/// Client text for an error message: at most [`ECHO_LIMIT`] characters.
fn echo(s: &str) -> String {
    s.chars().take(ECHO_LIMIT).collect()
}

fn amz_date_string(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parses ISO-8601 basic format `YYYYMMDDTHHMMSSZ`.
fn parse_amz_date(s: &str) -> Option<OffsetDateTime> {
    if s.len() != 16 || !s.is_ascii() {
        return None;
    }
    let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
    PrimitiveDateTime::parse(s, fmt)
        .ok()
        .map(|t| t.assume_utc())
}

/// Parses an HTTP `Date` header: RFC 1123 (`... GMT`) or RFC 2822 with a
/// numeric zone (botocore sends `-0000`).
fn parse_http_date(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc2822) {
        return Some(t);
    }
    let base = s
        .strip_suffix(" GMT")
        .or_else(|| s.strip_suffix(" UTC"))
        .or_else(|| s.strip_suffix(" -0000"))?;
    OffsetDateTime::parse(&format!("{base} +0000"), &Rfc2822).ok()
}

/// Splits `AKID/YYYYMMDD/region/service/aws4_request`.
fn parse_credential(credential: &str) -> Result<(&str, &str, &str, &str), AuthError> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [akid, date, region, service, terminator] = parts[..] else {
        return Err(AuthError::IncompleteSignature(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. \
             keyid/date/region/service/term, got '{}'",
            echo(credential)
        )));
    };
    if terminator != TERMINATOR {
        return Err(AuthError::InvalidScope(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{}'.",
            echo(terminator)
        )));
    }
    if akid.is_empty() {
        return Err(AuthError::IncompleteSignature(
            "Credential must contain an access key id.".to_owned(),
        ));
    }
    Ok((akid, date, region, service))
}

fn check_signed_headers(signed_headers: &str) -> Result<(), AuthError> {
    if signed_headers.split(';').any(|h| h.is_empty()) {
        return Err(AuthError::IncompleteSignature(format!(
            "SignedHeaders must be a non-empty ';'-separated list of header names, got '{}'.",
            echo(signed_headers)
        )));
    }
    if !signed_headers
        .split(';')
        .any(|h| h.eq_ignore_ascii_case("host") || h == ":authority")
    {
        return Err(AuthError::IncompleteSignature(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".to_owned(),
        ));
    }
    Ok(())
}

fn from_authorization_header<'a>(
    value: &'a str,
    parts: &'a Parts,
) -> Result<Presented<'a>, AuthError> {
    let value = value.trim();
    let (algorithm, rest) = value
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((value, ""));

    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    let mut malformed = false;
    for item in rest.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            malformed = true;
            continue;
        };
        let slot = match k.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => {
                malformed = true;
                continue;
            }
        };
        if slot.replace(v.trim()).is_some() {
            malformed = true;
        }
    }

    let date_header = parts
        .headers
        .get(X_AMZ_DATE)
        .map(|v| (true, v))
        .or_else(|| parts.headers.get(DATE).map(|v| (false, v)));

    let mut missing = Vec::new();
    if credential.is_none() {
        missing.push("Authorization header requires 'Credential' parameter.");
    }
    if signature.is_none() {
        missing.push("Authorization header requires 'Signature' parameter.");
    }
    if signed_headers.is_none() {
        missing.push("Authorization header requires 'SignedHeaders' parameter.");
    }
    if date_header.is_none() {
        missing.push(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        );
    }
    if !missing.is_empty() {
        return Err(AuthError::IncompleteSignature(missing.join(" ")));
    }
    if algorithm != ALGORITHM {
        return Err(AuthError::IncompleteSignature(format!(
            "Unsupported authorization algorithm '{}': only '{ALGORITHM}' is supported.",
            echo(algorithm)
        )));
    }
    if malformed {
        return Err(AuthError::IncompleteSignature(
            "Authorization header is malformed: expected 'AWS4-HMAC-SHA256 \
             Credential=..., SignedHeaders=..., Signature=...' with each parameter once."
                .to_owned(),
        ));
    }
    let (Some(credential), Some(signed_headers), Some(signature), Some((is_amz, date_value))) =
        (credential, signed_headers, signature, date_header)
    else {
        unreachable!("checked above");
    };

    let (access_key_id, scope_date, region, service) = parse_credential(credential)?;
    check_signed_headers(signed_headers)?;

    let date_str = date_value.to_str().unwrap_or("");
    let (date, amz_date) = if is_amz {
        let date = parse_amz_date(date_str).ok_or_else(|| bad_amz_date(date_str))?;
        (date, date_str.to_owned())
    } else {
        let date = parse_http_date(date_str).ok_or_else(|| {
            AuthError::IncompleteSignature(format!(
                "Date must be in RFC 1123 format ('Sun, 30 Aug 2015 12:36:00 GMT'). Got '{}'.",
                echo(date_str)
            ))
        })?;
        (date, amz_date_string(date))
    };

    Ok(Presented {
        access_key_id,
        scope_date,
        region,
        service,
        signed_headers,
        signature,
        amz_date,
        date,
        presigned_expires: None,
    })
}

fn bad_amz_date(s: &str) -> AuthError {
    AuthError::IncompleteSignature(format!(
        "Date must be in ISO-8601 'basic format'. Got '{}'. See \
         http://en.wikipedia.org/wiki/ISO_8601",
        echo(s)
    ))
}

fn from_query(params: &[QueryParam]) -> Result<Presented<'_>, AuthError> {
    const NAMES: [&str; 6] = [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
    ];
    let mut values: [Option<&str>; 6] = [None; 6];
    for p in params {
        if let Some(i) = NAMES.iter().position(|n| n.as_bytes() == p.key) {
            let value = std::str::from_utf8(&p.value).map_err(|_| {
                AuthError::IncompleteSignature(format!(
                    "AWS query-string parameter '{}' is not valid UTF-8.",
                    NAMES[i]
                ))
            })?;
            if values[i].replace(value).is_some() {
                return Err(AuthError::IncompleteSignature(format!(
                    "AWS query-string parameter '{}' must appear only once.",
                    NAMES[i]
                )));
            }
        }
    }
    let missing: Vec<String> = NAMES
        .iter()
        .zip(values)
        .filter(|(_, v)| v.is_none())
        .map(|(n, _)| format!("AWS query-string parameters must include '{n}'."))
        .collect();
    let [
        Some(algorithm),
        Some(credential),
        Some(date_str),
        Some(expires),
        Some(signed_headers),
        Some(signature),
    ] = values
    else {
        return Err(AuthError::IncompleteSignature(format!(
            "{} Re-examine the query-string parameters.",
            missing.join(" ")
        )));
    };
    if algorithm != ALGORITHM {
        return Err(AuthError::IncompleteSignature(format!(
            "X-Amz-Algorithm only supports '{ALGORITHM}', got '{}'.",
            echo(algorithm)
        )));
    }
    let (access_key_id, scope_date, region, service) = parse_credential(credential)?;
    check_signed_headers(signed_headers)?;
    let date = parse_amz_date(date_str).ok_or_else(|| bad_amz_date(date_str))?;
    let expires = expires
        .parse::<u32>()
        .ok()
        .filter(|e| *e <= MAX_EXPIRES && expires.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            AuthError::IncompleteSignature(format!(
                "X-Amz-Expires must be a whole number of seconds from 0 to {MAX_EXPIRES} \
                 (7 days), got '{}'.",
                echo(expires)
            ))
        })?;
    Ok(Presented {
        access_key_id,
        scope_date,
        region,
        service,
        signed_headers,
        signature,
        amz_date: date_str.to_owned(),
        date,
        presigned_expires: Some(expires),
    })
}

fn check_time(p: &Presented<'_>, now: OffsetDateTime) -> Result<(), AuthError> {
    if p.date > now + MAX_SKEW {
        return Err(AuthError::SignatureNotYetCurrent {
            request: p.amz_date.clone(),
            limit: amz_date_string(now + MAX_SKEW),
            now: amz_date_string(now),
        });
    }
    match p.presigned_expires {
        None if p.date < now - MAX_SKEW => Err(AuthError::SignatureExpired {
            request: p.amz_date.clone(),
            limit: amz_date_string(now - MAX_SKEW),
            now: amz_date_string(now),
        }),
        Some(expires) if p.date + Duration::seconds(i64::from(expires)) < now => {
            Err(AuthError::PresignedUrlExpired {
                request: p.amz_date.clone(),
                limit: amz_date_string(now - Duration::seconds(i64::from(expires))),
                now: amz_date_string(now),
                expires,
            })
        }
        _ => Ok(()),
    }
}

/// Payload hashes to try, in order. Each is one a legitimate client could have
/// signed for this very request, so trying several does not weaken anything.
fn payload_candidates(payload: PayloadHash<'_>, parts: &Parts, presigned: bool) -> Vec<String> {
    let header = parts
        .headers
        .get(X_AMZ_CONTENT_SHA256)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    match payload {
        // JSON APIs: the body is what it is; a client claiming another hash
        // in x-amz-content-sha256 fails to verify.
        PayloadHash::Body(body) => {
            let hash = canonical::sha256_hex(body);
            if presigned && header.is_none() {
                // botocore's SigV4QueryAuth hashes the body; S3-style
                // presigners use UNSIGNED-PAYLOAD.
                vec![hash, UNSIGNED_PAYLOAD.to_owned()]
            } else {
                vec![hash]
            }
        }
        // PutMedia: the body streams in and is not hashed here.
        PayloadHash::Streaming => match header {
            Some(h) => vec![h.to_owned()],
            None if presigned => vec![UNSIGNED_PAYLOAD.to_owned(), EMPTY_SHA256.to_owned()],
            None => vec![EMPTY_SHA256.to_owned()],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn dates() {
        assert_eq!(
            parse_amz_date("20150830T123600Z"),
            Some(datetime!(2015-08-30 12:36:00 UTC))
        );
        for bad in [
            "20150830T123600",
            "2015-08-30T12:36:00Z",
            "20151330T123600Z",
            "",
            "20150830T123600Z ",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
        for ok in [
            "Sun, 30 Aug 2015 12:36:00 GMT",
            "Sun, 30 Aug 2015 12:36:00 -0000",
            "Sun, 30 Aug 2015 12:36:00 +0000",
            "Sun, 30 Aug 2015 14:36:00 +0200",
        ] {
            assert_eq!(
                parse_http_date(ok),
                Some(datetime!(2015-08-30 12:36:00 UTC)),
                "{ok}"
            );
        }
        assert_eq!(parse_http_date("yesterday"), None);
        assert_eq!(
            amz_date_string(datetime!(2015-08-30 14:36:00 +2)),
            "20150830T123600Z"
        );
    }

    #[test]
    fn credentials() {
        assert_eq!(
            parse_credential("AKID/20150830/us-east-1/kinesisvideo/aws4_request"),
            Ok(("AKID", "20150830", "us-east-1", "kinesisvideo"))
        );
        assert!(matches!(
            parse_credential("AKID/20150830/us-east-1/kinesisvideo"),
            Err(AuthError::IncompleteSignature(_))
        ));
        assert!(matches!(
            parse_credential("AKID/20150830/us-east-1/kinesisvideo/aws5_request"),
            Err(AuthError::InvalidScope(_))
        ));
        assert!(matches!(
            parse_credential("/20150830/us-east-1/kinesisvideo/aws4_request"),
            Err(AuthError::IncompleteSignature(_))
        ));
    }
}
