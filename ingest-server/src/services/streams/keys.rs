//! Hash keys and sequence numbers, as AWS writes them.
//!
//! A partition key maps to the 128-bit big-endian MD5 of its UTF-8 bytes; shards own
//! inclusive ranges of that space. Sequence numbers are 56-digit decimal strings:
//! `49` + the shard's creation time (15 digits, ms) + the shard index (9 digits) + the
//! record's position in the shard log plus one (30 digits). Position 0 is the shard's
//! StartingSequenceNumber, before every record, so "after the starting sequence number"
//! is the first record. Fixed width keeps text order equal
//! to numeric order; a child shard's numbers sort after its parents' because it was
//! created later.

use md5::{Digest, Md5};

/// The largest hash key, 2^128 - 1.
pub(super) const MAX_HASH: u128 = u128::MAX;

/// The hash key of a partition key.
pub(super) fn partition_hash(partition_key: &str) -> u128 {
    let digest = Md5::digest(partition_key.as_bytes());
    u128::from_be_bytes(digest.into())
}

/// Parses a decimal hash key (the model's pattern already checked the digits); None
/// when it exceeds 2^128 - 1.
pub(super) fn parse_hash(text: &str) -> Option<u128> {
    text.parse::<u128>().ok()
}

/// `count` even, contiguous ranges over `[start, end]`, the last one taking the
/// remainder (as AWS splits a new stream's key space).
pub(super) fn even_ranges(start: u128, end: u128, count: u32) -> Vec<(u128, u128)> {
    let count = u128::from(count.max(1));
    if count == 1 {
        return vec![(start, end)];
    }
    // The width of the whole space does not fit u128 when it is the full space.
    let width = (end - start) / count + u128::from((end - start) % count == count - 1);
    (0..count)
        .map(|i| {
            let lo = start + width * i;
            let hi = if i == count - 1 {
                end
            } else {
                start + width * (i + 1) - 1
            };
            (lo, hi)
        })
        .collect()
}

/// A sequence number's parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Sequence {
    pub(super) shard_created_ms: i64,
    pub(super) shard_index: u32,
    pub(super) position: u64,
}

const PREFIX: &str = "49";
const LEN: usize = 56;

impl Sequence {
    /// The number of the record at log position `log_position`.
    pub(super) fn record(shard_created_ms: i64, shard_index: u32, log_position: u64) -> Sequence {
        Sequence {
            shard_created_ms,
            shard_index,
            position: log_position + 1,
        }
    }

    /// Log position of the record this number names (AT_SEQUENCE_NUMBER).
    pub(super) fn at(&self) -> u64 {
        self.position.saturating_sub(1)
    }

    /// Log position right after the record this number names (AFTER_SEQUENCE_NUMBER).
    pub(super) fn after(&self) -> u64 {
        self.position
    }

    /// The 56-digit decimal text.
    pub(super) fn format(&self) -> String {
        format!(
            "{PREFIX}{:015}{:09}{:030}",
            self.shard_created_ms.max(0),
            self.shard_index,
            self.position
        )
    }

    /// Parses text this server wrote; None for anything else.
    pub(super) fn parse(text: &str) -> Option<Sequence> {
        if text.len() != LEN
            || !text.starts_with(PREFIX)
            || !text.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        Some(Sequence {
            shard_created_ms: text[2..17].parse().ok()?,
            shard_index: text[17..26].parse().ok()?,
            position: text[26..].parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_aws_routing() {
        // MD5("a") = 0cc175b9c0f1b6a831c399e269772661
        assert_eq!(partition_hash("a"), 0x0cc175b9c0f1b6a831c399e269772661_u128);
    }

    #[test]
    fn even_ranges_cover_the_space() {
        let r = even_ranges(0, MAX_HASH, 4);
        assert_eq!(r[0].0, 0);
        assert_eq!(r[0].1, (1u128 << 126) - 1);
        assert_eq!(r[1].0, 1u128 << 126);
        assert_eq!(r[3].1, MAX_HASH);
        for w in r.windows(2) {
            assert_eq!(w[0].1 + 1, w[1].0);
        }
        let three = even_ranges(0, MAX_HASH, 3);
        // AWS: 2^128 / 3 = 113427455640312821154458202477256070485
        assert_eq!(three[1].0, 113427455640312821154458202477256070485);
        assert_eq!(three[2].1, MAX_HASH);
        assert_eq!(even_ranges(0, MAX_HASH, 1), vec![(0, MAX_HASH)]);
        let sub = even_ranges(10, 19, 2);
        assert_eq!(sub, vec![(10, 14), (15, 19)]);
    }

    #[test]
    fn sequences_round_trip_and_sort() {
        let a = Sequence {
            shard_created_ms: 1_700_000_000_123,
            shard_index: 3,
            position: 42,
        };
        let text = a.format();
        assert_eq!(text.len(), 56);
        assert_eq!(Sequence::parse(&text), Some(a));
        let b = Sequence { position: 43, ..a };
        assert!(b.format() > text);
        let child = Sequence {
            shard_created_ms: a.shard_created_ms + 1,
            shard_index: 9,
            position: 0,
        };
        assert!(child.format() > b.format());
        assert_eq!(Sequence::parse("123"), None);
        assert_eq!(Sequence::parse(&"4".repeat(56)), None);
    }
}
