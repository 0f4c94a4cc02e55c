//! Request bodies built once and re-sent: PutRecords batches and PutRecord calls with distinct
//! partition keys, and the timestamp each record can carry in its first 12 bytes.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::http::sha256_hex;

/// Leading bytes of a timestamped record: magic, then microseconds since the epoch (u64 BE).
const MAGIC: &[u8; 4] = b"KBN1";
/// Bytes of the stamp; a multiple of 3, so it is the first 16 base64 characters of `Data`.
pub(crate) const STAMP_BYTES: usize = 12;
const STAMP_B64: usize = 16;

/// Microseconds since the Unix epoch.
pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// A request body, its SigV4 payload hash, and where the records' stamps are.
pub(crate) struct Body {
    pub(crate) op: &'static str,
    pub(crate) bytes: Vec<u8>,
    pub(crate) sha256: String,
    pub(crate) records: usize,
    /// Offsets of each record's base64 `Data` in `bytes`.
    stamp_at: Vec<usize>,
}

impl Body {
    /// PutRecords of `count` records of `size` bytes (`count` 1 gives PutRecord), partition
    /// keys `{key_prefix}-{i}`; the data is pseudo-random after a zero stamp.
    pub(crate) fn new(
        stream: &str,
        key_prefix: &str,
        count: usize,
        size: usize,
        seed: u64,
    ) -> Self {
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut data = vec![0u8; size];
        let mut b64 = String::new();
        let mut bytes = Vec::with_capacity(count * (size * 4 / 3 + 64) + 64);
        let mut stamp_at = Vec::with_capacity(count);
        let stream = serde_json::to_string(stream).unwrap_or_default();
        let mut record = |bytes: &mut Vec<u8>, stamp_at: &mut Vec<usize>, i: usize| {
            for chunk in data.chunks_mut(8) {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let n = chunk.len();
                chunk.copy_from_slice(&rng.to_le_bytes()[..n]);
            }
            if size >= STAMP_BYTES {
                data[..4].copy_from_slice(MAGIC);
                data[4..STAMP_BYTES].fill(0);
            }
            b64.clear();
            STANDARD.encode_string(&data, &mut b64);
            bytes.extend_from_slice(b"\"Data\":\"");
            stamp_at.push(bytes.len());
            bytes.extend_from_slice(b64.as_bytes());
            bytes.extend_from_slice(b"\",\"PartitionKey\":\"");
            bytes.extend_from_slice(format!("{key_prefix}-{i}").as_bytes());
            bytes.push(b'"');
        };
        let op = if count == 1 {
            bytes.extend_from_slice(format!("{{\"StreamName\":{stream},").as_bytes());
            record(&mut bytes, &mut stamp_at, 0);
            bytes.push(b'}');
            "PutRecord"
        } else {
            bytes.extend_from_slice(format!("{{\"StreamName\":{stream},\"Records\":[").as_bytes());
            for i in 0..count {
                if i > 0 {
                    bytes.push(b',');
                }
                bytes.push(b'{');
                record(&mut bytes, &mut stamp_at, i);
                bytes.push(b'}');
            }
            bytes.extend_from_slice(b"]}");
            "PutRecords"
        };
        let sha256 = sha256_hex(&bytes);
        if size < STAMP_BYTES {
            stamp_at.clear();
        }
        Self {
            op,
            bytes,
            sha256,
            records: count,
            stamp_at,
        }
    }

    /// Writes `ts_us` into every record's stamp and re-hashes the body. False when the records
    /// are too small to carry one.
    pub(crate) fn stamp(&mut self, ts_us: u64) -> bool {
        if self.stamp_at.is_empty() {
            return false;
        }
        let mut raw = [0u8; STAMP_BYTES];
        raw[..4].copy_from_slice(MAGIC);
        raw[4..].copy_from_slice(&ts_us.to_be_bytes());
        let mut enc = [0u8; STAMP_B64];
        let n = STANDARD
            .encode_slice(raw, &mut enc)
            .expect("16 bytes hold 12 encoded");
        debug_assert_eq!(n, STAMP_B64);
        for &at in &self.stamp_at {
            self.bytes[at..at + STAMP_B64].copy_from_slice(&enc);
        }
        self.sha256 = sha256_hex(&self.bytes);
        true
    }
}

/// The stamp of a record from its base64 `Data`, if it carries one.
pub(crate) fn stamp_of(data_b64: &str) -> Option<u64> {
    let head = data_b64.as_bytes().get(..STAMP_B64)?;
    let mut raw = [0u8; STAMP_BYTES];
    STANDARD.decode_slice(head, &mut raw).ok()?;
    if &raw[..4] != MAGIC {
        return None;
    }
    let ts = u64::from_be_bytes(raw[4..].try_into().ok()?);
    (ts > 0).then_some(ts)
}

/// Decoded length of a base64 string.
pub(crate) fn decoded_len(b64: &str) -> usize {
    let pad = b64.bytes().rev().take_while(|&b| b == b'=').count();
    (b64.len() / 4 * 3).saturating_sub(pad)
}

/// `FailedRecordCount` of a PutRecords response body, without parsing the per-record array.
pub(crate) fn failed_record_count(body: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"FailedRecordCount\"";
    let at = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let rest = &body[at..];
    let rest = &rest[rest.iter().position(|&b| b != b' ' && b != b':')?..];
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// The first `ErrorCode` of a PutRecords response (a sample for the report).
pub(crate) fn first_record_error(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v["Records"].as_array()?.iter().find_map(|r| {
        r["ErrorCode"]
            .as_str()
            .map(|c| format!("{c}: {}", r["ErrorMessage"].as_str().unwrap_or("")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_records_body_is_json_with_distinct_keys_and_stamps() {
        let mut b = Body::new("s-1", "p3", 5, 1024, 7);
        assert_eq!(b.op, "PutRecords");
        assert!(b.stamp(1_700_000_000_123_456));
        let v: serde_json::Value = serde_json::from_slice(&b.bytes).unwrap();
        assert_eq!(v["StreamName"], "s-1");
        let recs = v["Records"].as_array().unwrap();
        assert_eq!(recs.len(), 5);
        let keys: std::collections::BTreeSet<&str> = recs
            .iter()
            .map(|r| r["PartitionKey"].as_str().unwrap())
            .collect();
        assert_eq!(keys.len(), 5);
        for r in recs {
            let data = r["Data"].as_str().unwrap();
            assert_eq!(STANDARD.decode(data).unwrap().len(), 1024);
            assert_eq!(decoded_len(data), 1024);
            assert_eq!(stamp_of(data), Some(1_700_000_000_123_456));
        }
        assert_eq!(b.sha256, sha256_hex(&b.bytes));
    }

    #[test]
    fn put_record_body() {
        let b = Body::new("x", "k", 1, 100, 1);
        assert_eq!(b.op, "PutRecord");
        let v: serde_json::Value = serde_json::from_slice(&b.bytes).unwrap();
        assert_eq!(v["PartitionKey"], "k-0");
        assert_eq!(stamp_of(v["Data"].as_str().unwrap()), None);
    }

    #[test]
    fn failed_count_scan() {
        assert_eq!(
            failed_record_count(br#"{"FailedRecordCount":3,"Records":[]}"#),
            Some(3)
        );
        assert_eq!(
            failed_record_count(br#"{"FailedRecordCount": 0, "Records": []}"#),
            Some(0)
        );
        assert_eq!(failed_record_count(br#"{"Records":[]}"#), None);
    }
}
