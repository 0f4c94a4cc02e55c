//! The sparse index of one segment (sequence -> file offset, with arrival time) and its
//! persisted form, the `.idx` file written when a segment is sealed so that a restart
//! does not have to scan every sealed segment.
//!
//! `.idx` layout (little endian): magic `SLIX`, version u32, base u64, end u64,
//! segment length u64, last arrival i64 (`i64::MIN` = none), entry count u32, entries
//! (sequence u64, offset u64, arrival i64), then a CRC-32 of everything before it.

/// One index entry per this many bytes of segment: a lookup reads at most this much
/// before the wanted record, and a full 64 MiB segment costs 24 KiB of memory.
pub(crate) const INDEX_INTERVAL: u64 = 64 * 1024;

const MAGIC: &[u8; 4] = b"SLIX";
const VERSION: u32 = 1;
const FIXED_LEN: usize = 4 + 4 + 8 + 8 + 8 + 8 + 4;
const ENTRY_LEN: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub(crate) sequence: u64,
    pub(crate) offset: u64,
    pub(crate) arrival_ms: i64,
}

/// Entries in file order; the first record of a non-empty segment always has one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SparseIndex {
    entries: Vec<IndexEntry>,
}

impl SparseIndex {
    /// Whether a record starting at `offset` gets an entry.
    pub(crate) fn due(&self, offset: u64) -> bool {
        next_due(self.entries.last(), offset)
    }

    pub(crate) fn push(&mut self, entry: IndexEntry) {
        self.entries.push(entry);
    }

    pub(crate) fn extend(&mut self, entries: impl IntoIterator<Item = IndexEntry>) {
        self.entries.extend(entries);
    }

    pub(crate) fn last(&self) -> Option<&IndexEntry> {
        self.entries.last()
    }

    pub(crate) fn first(&self) -> Option<&IndexEntry> {
        self.entries.first()
    }

    /// Drops spare capacity once the segment is sealed and the index stops growing.
    pub(crate) fn shrink(&mut self) {
        self.entries.shrink_to_fit();
    }

    /// The entry to start scanning from to find `sequence`: the last one at or before it.
    pub(crate) fn at_or_before(&self, sequence: u64) -> Option<IndexEntry> {
        let n = self.entries.partition_point(|e| e.sequence <= sequence);
        self.entries.get(n.checked_sub(1)?).copied()
    }

    /// The entry to start scanning from to find the first record arriving at or after
    /// `ms`: the last one arriving before it (arrivals never decrease), else the first.
    pub(crate) fn before_time(&self, ms: i64) -> Option<IndexEntry> {
        let n = self.entries.partition_point(|e| e.arrival_ms < ms);
        self.entries.get(n.saturating_sub(1)).copied()
    }
}

/// The rule behind [`SparseIndex::due`], for writers that collect new entries before
/// they are published.
pub(crate) fn next_due(last: Option<&IndexEntry>, offset: u64) -> bool {
    last.is_none_or(|e| offset >= e.offset.saturating_add(INDEX_INTERVAL))
}

/// What is known about a segment's durable contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Summary {
    /// First sequence of the segment (from its file name).
    pub(crate) base: u64,
    /// One past the last record's sequence (= base when empty).
    pub(crate) end: u64,
    /// Bytes of valid frames.
    pub(crate) len: u64,
    pub(crate) last_arrival: Option<i64>,
    pub(crate) index: SparseIndex,
}

impl Summary {
    pub(crate) fn empty(base: u64) -> Summary {
        Summary {
            base,
            end: base,
            len: 0,
            last_arrival: None,
            index: SparseIndex::default(),
        }
    }

    /// The `.idx` file contents.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let entries = &self.index.entries;
        let mut out = Vec::with_capacity(FIXED_LEN + entries.len() * ENTRY_LEN + 4);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.base.to_le_bytes());
        out.extend_from_slice(&self.end.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.last_arrival.unwrap_or(i64::MIN).to_le_bytes());
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for e in entries {
            out.extend_from_slice(&e.sequence.to_le_bytes());
            out.extend_from_slice(&e.offset.to_le_bytes());
            out.extend_from_slice(&e.arrival_ms.to_le_bytes());
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses an `.idx` file and checks it against the segment it claims to describe.
    /// `None` means "rebuild by scanning": damaged, stale or from another segment.
    pub(crate) fn decode(bytes: &[u8], base: u64, segment_len: u64) -> Option<Summary> {
        let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
        if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().ok()?) {
            return None;
        }
        let mut r = Reader(body);
        if r.take(4)? != MAGIC || r.u64_from(4)? != u64::from(VERSION) {
            return None;
        }
        let summary_base = r.u64()?;
        let end = r.u64()?;
        let len = r.u64()?;
        let last_arrival = Some(r.u64()? as i64).filter(|&a| a != i64::MIN);
        let count = r.u64_from(4)? as usize;
        if summary_base != base || len != segment_len || end < base {
            return None;
        }
        if r.0.len() != count.checked_mul(ENTRY_LEN)? {
            return None;
        }
        let mut index = SparseIndex::default();
        for _ in 0..count {
            let entry = IndexEntry {
                sequence: r.u64()?,
                offset: r.u64()?,
                arrival_ms: r.u64()? as i64,
            };
            let ordered = index
                .last()
                .is_none_or(|p| p.sequence < entry.sequence && p.offset < entry.offset);
            if !ordered || entry.sequence >= end || entry.offset >= len {
                return None;
            }
            index.push(entry);
        }
        let first_ok = match index.first() {
            Some(e) => e.sequence == base && e.offset == 0,
            None => end == base,
        };
        first_ok.then_some(Summary {
            base,
            end,
            len,
            last_arrival,
            index,
        })
    }
}

/// Little-endian field reader over a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.0.split_at_checked(n)?;
        self.0 = tail;
        Some(head)
    }

    /// An unsigned field of `n` (4 or 8) bytes.
    fn u64_from(&mut self, n: usize) -> Option<u64> {
        let mut b = [0; 8];
        b[..n].copy_from_slice(self.take(n)?);
        Some(u64::from_le_bytes(b))
    }

    fn u64(&mut self) -> Option<u64> {
        self.u64_from(8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Summary {
        let mut s = Summary::empty(100);
        for i in 0..5u64 {
            s.index.push(IndexEntry {
                sequence: 100 + i * 10,
                offset: i * INDEX_INTERVAL,
                arrival_ms: 1_000 + i as i64,
            });
        }
        s.end = 150;
        s.len = 5 * INDEX_INTERVAL;
        s.last_arrival = Some(1_004);
        s
    }

    #[test]
    fn idx_round_trip() {
        let s = sample();
        let bytes = s.encode();
        assert_eq!(Summary::decode(&bytes, 100, s.len), Some(s.clone()));
        // Stale (segment length changed) or another segment's file: rebuild.
        assert_eq!(Summary::decode(&bytes, 100, s.len + 1), None);
        assert_eq!(Summary::decode(&bytes, 0, s.len), None);
        for cut in 0..bytes.len() {
            assert_eq!(Summary::decode(&bytes[..cut], 100, s.len), None);
        }
        let mut bad = bytes.clone();
        bad[30] ^= 1;
        assert_eq!(Summary::decode(&bad, 100, s.len), None);
    }

    #[test]
    fn lookups() {
        let s = sample();
        assert_eq!(s.index.at_or_before(99), None);
        assert_eq!(s.index.at_or_before(100).map(|e| e.sequence), Some(100));
        assert_eq!(s.index.at_or_before(129).map(|e| e.sequence), Some(120));
        assert_eq!(s.index.at_or_before(1_000).map(|e| e.sequence), Some(140));
        assert_eq!(s.index.before_time(0).map(|e| e.sequence), Some(100));
        assert_eq!(s.index.before_time(1_002).map(|e| e.sequence), Some(110));
        assert_eq!(s.index.before_time(9_999).map(|e| e.sequence), Some(140));
        assert!(s.index.due(5 * INDEX_INTERVAL));
        assert!(!s.index.due(5 * INDEX_INTERVAL - 1));
    }
}
