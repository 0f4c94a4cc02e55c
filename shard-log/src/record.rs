//! Record framing: how one record is laid out in a segment file and how a frame is
//! checked when it is read back.
//!
//! ```text
//! offset  size  field
//!      0     4  body_len     u32 LE, bytes after this 8-byte prefix
//!      4     4  crc          u32 LE, CRC-32 of body_len's 4 bytes followed by the body
//!      8     8  sequence     u64 LE
//!     16     8  arrival_ms   i64 LE
//!     24     2  key_len      u16 LE
//!     26     …  partition key (key_len bytes, UTF-8), then data (the rest of the body)
//! ```
//!
//! The CRC covers the length too, so a damaged length is caught like damaged data and
//! a torn write (the file ends inside a frame) is told apart from garbage.

use std::ops::Range;

/// Bytes before the partition key: the prefix (length, CRC) plus the fixed body fields.
pub(crate) const HEADER_LEN: usize = 26;
const PREFIX_LEN: usize = 8;
const MIN_BODY: usize = HEADER_LEN - PREFIX_LEN;

/// Largest partition key: its length is stored in 16 bits.
pub(crate) const MAX_KEY_LEN: usize = u16::MAX as usize;

/// Largest data blob of one record. Kinesis allows far less (1 to 10 MiB); the bound
/// keeps a damaged length field from asking for gigabytes during recovery.
pub const MAX_DATA_BYTES: usize = 32 << 20;

const MAX_BODY: usize = MIN_BODY + MAX_KEY_LEN + MAX_DATA_BYTES;

/// Size of the frame of a record with this key and data.
pub(crate) fn frame_len(key_len: usize, data_len: usize) -> usize {
    HEADER_LEN + key_len + data_len
}

/// Appends one frame to `buf`. The caller has checked the key and data sizes.
pub(crate) fn encode(buf: &mut Vec<u8>, sequence: u64, arrival_ms: i64, key: &[u8], data: &[u8]) {
    let start = buf.len();
    let body_len = (MIN_BODY + key.len() + data.len()) as u32;
    buf.extend_from_slice(&body_len.to_le_bytes());
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&sequence.to_le_bytes());
    buf.extend_from_slice(&arrival_ms.to_le_bytes());
    buf.extend_from_slice(&(key.len() as u16).to_le_bytes());
    buf.extend_from_slice(key);
    buf.extend_from_slice(data);
    let crc = checksum(&buf[start..start + 4], &buf[start + PREFIX_LEN..]);
    buf[start + 4..start + PREFIX_LEN].copy_from_slice(&crc.to_le_bytes());
}

fn checksum(len_bytes: &[u8], body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(len_bytes);
    hasher.update(body);
    hasher.finalize()
}

/// A verified frame; ranges are relative to the slice given to [`parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) sequence: u64,
    pub(crate) arrival_ms: i64,
    pub(crate) key: Range<usize>,
    pub(crate) data: Range<usize>,
    /// Whole frame length, prefix included.
    pub(crate) len: usize,
}

impl Frame {
    /// The same frame with its ranges moved by `by` bytes.
    pub(crate) fn shifted(mut self, by: usize) -> Frame {
        self.key = self.key.start + by..self.key.end + by;
        self.data = self.data.start + by..self.data.end + by;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed {
    Frame(Frame),
    /// More bytes are needed: at least this many from the frame's start.
    Incomplete(usize),
    /// The bytes here are not a frame.
    Corrupt(&'static str),
}

/// Parses and verifies the frame at the start of `buf`.
pub(crate) fn parse(buf: &[u8]) -> Parsed {
    let Some(prefix) = buf.get(..PREFIX_LEN) else {
        return Parsed::Incomplete(PREFIX_LEN);
    };
    let body_len = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    if !(MIN_BODY..=MAX_BODY).contains(&body_len) {
        return Parsed::Corrupt("impossible record length");
    }
    let len = PREFIX_LEN + body_len;
    let Some(frame) = buf.get(..len) else {
        return Parsed::Incomplete(len);
    };
    let stored_crc = u32::from_le_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]);
    if checksum(&frame[..4], &frame[PREFIX_LEN..]) != stored_crc {
        return Parsed::Corrupt("checksum mismatch");
    }
    let u64_at = |at: usize| {
        let mut b = [0; 8];
        b.copy_from_slice(&frame[at..at + 8]);
        b
    };
    let sequence = u64::from_le_bytes(u64_at(8));
    let arrival_ms = i64::from_le_bytes(u64_at(16));
    let key_len = u16::from_le_bytes([frame[24], frame[25]]) as usize;
    let key = HEADER_LEN..HEADER_LEN + key_len;
    if key.end > len {
        return Parsed::Corrupt("partition key longer than the record");
    }
    if std::str::from_utf8(&frame[key.clone()]).is_err() {
        return Parsed::Corrupt("partition key is not UTF-8");
    }
    Parsed::Frame(Frame {
        sequence,
        arrival_ms,
        data: key.end..len,
        key,
        len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(seq: u64, key: &str, data: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        encode(&mut buf, seq, 1_700_000_000_000, key.as_bytes(), data);
        buf
    }

    #[test]
    fn round_trip() {
        let buf = one(7, "pk", b"hello");
        assert_eq!(buf.len(), frame_len(2, 5));
        let Parsed::Frame(f) = parse(&buf) else {
            panic!("not a frame")
        };
        assert_eq!(f.sequence, 7);
        assert_eq!(f.arrival_ms, 1_700_000_000_000);
        assert_eq!(&buf[f.key.clone()], b"pk");
        assert_eq!(&buf[f.data.clone()], b"hello");
        assert_eq!(f.len, buf.len());
    }

    #[test]
    fn every_prefix_is_incomplete() {
        let buf = one(1, "key", b"some data");
        for cut in 0..buf.len() {
            assert!(
                matches!(parse(&buf[..cut]), Parsed::Incomplete(n) if n > cut),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn every_bit_flip_is_caught() {
        let buf = one(3, "key", b"payload");
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut bad = buf.clone();
                bad[i] ^= 1 << bit;
                assert!(
                    !matches!(parse(&bad), Parsed::Frame(_)),
                    "flip of bit {bit} in byte {i} not detected"
                );
            }
        }
    }

    #[test]
    fn zeros_are_corrupt() {
        assert_eq!(parse(&[0; 64]), Parsed::Corrupt("impossible record length"));
    }
}
