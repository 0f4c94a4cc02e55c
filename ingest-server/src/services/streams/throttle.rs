//! AWS's per-shard throughput limits, enforced only with `--kinesis-throughput-limits`
//! (an appliance should not throttle what its disk can take; people who test their
//! producers' backoff turn this on). One-second windows, as AWS meters them.

/// Writes: 1 MiB/s or 1000 records/s per shard.
pub(super) const WRITE_BYTES_PER_SEC: u64 = 1024 * 1024;
pub(super) const WRITE_RECORDS_PER_SEC: u64 = 1000;
/// Reads: 5 GetRecords calls/s and 2 MiB/s per shard.
pub(super) const READ_CALLS_PER_SEC: u64 = 5;
pub(super) const READ_BYTES_PER_SEC: u64 = 2 * 1024 * 1024;

/// Usage of one shard in the current one-second window.
#[derive(Debug, Default)]
pub(super) struct Throughput {
    window_sec: i64,
    write_bytes: u64,
    write_records: u64,
    read_calls: u64,
    read_bytes: u64,
}

impl Throughput {
    fn roll(&mut self, now_ms: i64) {
        let sec = now_ms.div_euclid(1000);
        if sec != self.window_sec {
            *self = Throughput {
                window_sec: sec,
                ..Throughput::default()
            };
        }
    }

    /// Takes one record of `bytes` from the write budget; false when over it.
    pub(super) fn admit_write(&mut self, now_ms: i64, bytes: u64) -> bool {
        self.roll(now_ms);
        if self.write_records + 1 > WRITE_RECORDS_PER_SEC
            || self.write_bytes + bytes > WRITE_BYTES_PER_SEC
        {
            return false;
        }
        self.write_records += 1;
        self.write_bytes += bytes;
        true
    }

    /// Takes one GetRecords call from the read budget; false when over it (the call
    /// rate, or the bytes already read this second).
    pub(super) fn admit_read(&mut self, now_ms: i64) -> bool {
        self.roll(now_ms);
        if self.read_calls + 1 > READ_CALLS_PER_SEC || self.read_bytes >= READ_BYTES_PER_SEC {
            return false;
        }
        self.read_calls += 1;
        true
    }

    /// Counts bytes a read returned.
    pub(super) fn count_read(&mut self, bytes: u64) {
        self.read_bytes += bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_limited_per_second() {
        let mut t = Throughput::default();
        for _ in 0..1000 {
            assert!(t.admit_write(5_000, 10));
        }
        assert!(!t.admit_write(5_999, 10));
        assert!(t.admit_write(6_000, 10));
        let mut t = Throughput::default();
        assert!(t.admit_write(0, WRITE_BYTES_PER_SEC));
        assert!(!t.admit_write(1, 1));
    }

    #[test]
    fn reads_are_limited_per_second() {
        let mut t = Throughput::default();
        for _ in 0..5 {
            assert!(t.admit_read(0));
        }
        assert!(!t.admit_read(10));
        assert!(t.admit_read(1000));
        t.count_read(READ_BYTES_PER_SEC);
        assert!(!t.admit_read(1001));
    }
}
