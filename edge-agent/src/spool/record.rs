//! The on-disk form of one spooled fragment: a fixed prefix, the session header (Info + Tracks)
//! and the fragment bytes, all covered by a CRC-32 so that a record torn by a power cut or a
//! `kill -9` mid-write is recognised and discarded instead of being sent.
//!
//! Layout (little endian): magic `EAFR`, version 1, 3 zero bytes, timecode ms (u64), header
//! length (u32), data length (u32), CRC-32 (u32) over the first 24 bytes, the header and the
//! data.

const MAGIC: &[u8; 4] = b"EAFR";
const VERSION: u8 = 1;
/// Length of the fixed prefix.
pub(crate) const PREFIX_LEN: usize = 28;
/// Largest header or fragment a record may claim: more than any PutMedia fragment (50 MB).
const MAX_PART_LEN: usize = 64 << 20;

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) timecode_ms: u64,
    pub(crate) header: Vec<u8>,
    pub(crate) data: Vec<u8>,
}

/// Why a record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RecordError {
    #[error("record is shorter than its {PREFIX_LEN}-byte prefix ({0} bytes)")]
    ShortPrefix(usize),
    #[error("not a spool record (bad magic or version)")]
    BadMagic,
    #[error("record claims {claimed} bytes but the file holds {actual}")]
    Truncated { claimed: usize, actual: usize },
    #[error("checksum mismatch")]
    Checksum,
}

/// The prefix for a record; write it, then `header`, then `data`.
pub(crate) fn encode_prefix(timecode_ms: u64, header: &[u8], data: &[u8]) -> [u8; PREFIX_LEN] {
    let mut prefix = [0u8; PREFIX_LEN];
    prefix[..4].copy_from_slice(MAGIC);
    prefix[4] = VERSION;
    prefix[8..16].copy_from_slice(&timecode_ms.to_le_bytes());
    prefix[16..20].copy_from_slice(&(header.len() as u32).to_le_bytes());
    prefix[20..24].copy_from_slice(&(data.len() as u32).to_le_bytes());
    let crc = checksum(&prefix[..24], header, data);
    prefix[24..28].copy_from_slice(&crc.to_le_bytes());
    prefix
}

/// Decodes and verifies a whole record file.
pub(crate) fn decode(bytes: &[u8]) -> Result<Record, RecordError> {
    if bytes.len() < PREFIX_LEN {
        return Err(RecordError::ShortPrefix(bytes.len()));
    }
    if &bytes[..4] != MAGIC || bytes[4] != VERSION {
        return Err(RecordError::BadMagic);
    }
    let u32_at =
        |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let mut tc = [0u8; 8];
    tc.copy_from_slice(&bytes[8..16]);
    let header_len = u32_at(16) as usize;
    let data_len = u32_at(20) as usize;
    if header_len > MAX_PART_LEN || data_len > MAX_PART_LEN {
        return Err(RecordError::BadMagic);
    }
    let claimed = PREFIX_LEN + header_len + data_len;
    if bytes.len() != claimed {
        return Err(RecordError::Truncated {
            claimed,
            actual: bytes.len(),
        });
    }
    let header = &bytes[PREFIX_LEN..PREFIX_LEN + header_len];
    let data = &bytes[PREFIX_LEN + header_len..];
    if checksum(&bytes[..24], header, data) != u32_at(24) {
        return Err(RecordError::Checksum);
    }
    Ok(Record {
        timecode_ms: u64::from_le_bytes(tc),
        header: header.to_vec(),
        data: data.to_vec(),
    })
}

fn checksum(prefix: &[u8], header: &[u8], data: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(prefix);
    hasher.update(header);
    hasher.update(data);
    hasher.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(tc: u64, header: &[u8], data: &[u8]) -> Vec<u8> {
        let mut out = encode_prefix(tc, header, data).to_vec();
        out.extend_from_slice(header);
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn round_trip_and_torn_records() {
        let bytes = encode(1_700_000_000_123, b"hdr", b"cluster bytes");
        let record = decode(&bytes).unwrap();
        assert_eq!(record.timecode_ms, 1_700_000_000_123);
        assert_eq!(record.header, b"hdr");
        assert_eq!(record.data, b"cluster bytes");
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "torn at {cut} accepted");
        }
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(decode(&flipped), Err(RecordError::Checksum));
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn any_single_corruption_is_caught(pos in 0usize..60, bit in 0u8..8) {
            let mut bytes = encode(42, b"header", b"some fragment data here");
            let pos = pos % bytes.len();
            bytes[pos] ^= 1 << bit;
            prop_assert!(decode(&bytes).is_err());
        }
    }
}
