//! The PutMedia request headers: stream, timecode type, producer start timestamp, acks.

use crate::protocol::error::AwsError;
use crate::protocol::validate;

/// How Cluster timecodes map to producer timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TimecodeType {
    Absolute,
    Relative,
}

/// The validated PutMedia request headers.
pub(super) struct PutMediaHeaders {
    pub(super) stream_name: Option<String>,
    pub(super) stream_arn: Option<String>,
    pub(super) timecode_type: TimecodeType,
    pub(super) producer_start_ms: i64,
    pub(super) acks: bool,
}

fn header<'a>(parts: &'a http::request::Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

pub(super) fn parse_headers(parts: &http::request::Parts) -> Result<PutMediaHeaders, AwsError> {
    let stream_name = header(parts, "x-amzn-stream-name").map(str::to_owned);
    let stream_arn = header(parts, "x-amzn-stream-arn").map(str::to_owned);
    let mut v = validate::Validation::new();
    v.check(&validate::STREAM_NAME, stream_name.as_deref());
    v.check(&validate::STREAM_ARN, stream_arn.as_deref());
    let timecode_type = header(parts, "x-amzn-fragment-timecode-type");
    v.required("fragmentTimecodeType", timecode_type.as_ref());
    v.one_of(
        "fragmentTimecodeType",
        timecode_type,
        &["ABSOLUTE", "RELATIVE"],
    );
    v.finish()?;
    let timecode_type = match timecode_type {
        Some("RELATIVE") => TimecodeType::Relative,
        _ => TimecodeType::Absolute,
    };
    let start = header(parts, "x-amzn-producer-start-timestamp");
    let producer_start_ms = match (start, timecode_type) {
        (Some(s), _) => parse_start_timestamp(s).ok_or_else(|| {
            AwsError::invalid_argument(format!(
                "x-amzn-producer-start-timestamp '{s}' is not a number of seconds since the epoch."
            ))
        })?,
        (None, TimecodeType::Relative) => {
            return Err(AwsError::invalid_argument(
                "x-amzn-producer-start-timestamp is required with RELATIVE fragment timecodes.",
            ));
        }
        (None, TimecodeType::Absolute) => 0,
    };
    let acks =
        header(parts, "x-amzn-fragment-acknowledgment-required").is_none_or(|v| v.trim() != "0");
    Ok(PutMediaHeaders {
        stream_name,
        stream_arn,
        timecode_type,
        producer_start_ms,
        acks,
    })
}

/// Parses `x-amzn-producer-start-timestamp` into epoch milliseconds. The AWS C
/// producer prints it as `"%llu.%llu"` of (ms / 1000, ms % 1000), without zero padding,
/// so 47 ms arrives as `.47`: a fraction of one to three digits is a count of
/// milliseconds (for three digits both readings agree); longer fractions are decimal.
fn parse_start_timestamp(value: &str) -> Option<i64> {
    let (secs, frac) = value.trim().split_once('.').unwrap_or((value.trim(), ""));
    if secs.is_empty()
        || !secs.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let millis: i64 = match frac.len() {
        0 => 0,
        1..=3 => frac.parse().ok()?,
        _ => {
            let micros: i64 = frac[..6.min(frac.len())].parse().ok()?;
            let scale = 10_i64.pow(6 - 6.min(frac.len()) as u32);
            ((micros * scale) as f64 / 1000.0).round() as i64
        }
    };
    secs.checked_mul(1000)?.checked_add(millis)
}

#[cfg(test)]
mod tests {
    use super::parse_start_timestamp;

    #[test]
    fn start_timestamps_read_like_the_c_producer_writes_them() {
        assert_eq!(
            parse_start_timestamp("1700000000.47"),
            Some(1_700_000_000_047)
        );
        assert_eq!(
            parse_start_timestamp("1700000000.5"),
            Some(1_700_000_000_005)
        );
        assert_eq!(
            parse_start_timestamp("1700000000.470"),
            Some(1_700_000_000_470)
        );
        assert_eq!(parse_start_timestamp("1700000000"), Some(1_700_000_000_000));
        assert_eq!(
            parse_start_timestamp("1700000000.4705"),
            Some(1_700_000_000_471)
        );
        assert_eq!(parse_start_timestamp("-1.0"), None);
        assert_eq!(parse_start_timestamp("abc"), None);
        assert_eq!(parse_start_timestamp("99999999999999999999"), None);
    }
}
