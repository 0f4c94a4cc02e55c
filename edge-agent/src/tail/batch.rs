//! Lines waiting for PutRecords, cut into batches within the service's limits, and per-file
//! acknowledgement tracking: the checkpoint may only move past a line once it and every line
//! before it in that file were acknowledged.

use std::collections::VecDeque;
use std::time::Instant;

use base64::Engine;
use serde_json::json;

use super::follow::Position;

/// PutRecords limits (AWS Kinesis Data Streams).
pub(crate) const MAX_BATCH_RECORDS: usize = 500;
pub(crate) const MAX_BATCH_BYTES: usize = 5 << 20;
/// A record's data plus its partition key.
pub(crate) const MAX_RECORD_BYTES: usize = 1 << 20;

/// One record to put.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    /// Index of the file it comes from.
    pub(crate) file: usize,
    /// Its number in that file's [`Acks`].
    pub(crate) n: u64,
    pub(crate) key: String,
    pub(crate) data: Vec<u8>,
    pub(crate) queued_at: Instant,
}

impl Record {
    fn size(&self) -> usize {
        self.data.len() + self.key.len()
    }
}

/// Records in the order they were read; refused ones go back to the front.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    records: VecDeque<Record>,
    bytes: usize,
}

impl Queue {
    pub(crate) fn push(&mut self, record: Record) {
        self.bytes += record.size();
        self.records.push_back(record);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// When the oldest waiting record was read: the front one (records are read in order,
    /// and refused ones go back in front of younger ones).
    pub(crate) fn oldest(&self) -> Option<Instant> {
        self.records.front().map(|r| r.queued_at)
    }

    /// A whole batch is waiting: no reason to wait for the flush interval.
    pub(crate) fn batch_full(&self) -> bool {
        self.records.len() >= MAX_BATCH_RECORDS || self.bytes >= MAX_BATCH_BYTES
    }

    /// The longest prefix within the PutRecords limits.
    pub(crate) fn take_batch(&mut self) -> Vec<Record> {
        let (mut count, mut bytes) = (0, 0);
        for record in &self.records {
            if count == MAX_BATCH_RECORDS || (count > 0 && bytes + record.size() > MAX_BATCH_BYTES)
            {
                break;
            }
            count += 1;
            bytes += record.size();
        }
        self.bytes -= bytes;
        self.records.drain(..count).collect()
    }

    /// Puts records back in front, in their order: they are retried before newer lines.
    pub(crate) fn requeue_front(&mut self, records: Vec<Record>) {
        for record in records.into_iter().rev() {
            self.bytes += record.size();
            self.records.push_front(record);
        }
    }
}

/// The PutRecords request body.
pub(crate) fn request_body(stream: &str, records: &[Record]) -> serde_json::Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    let records: Vec<_> = records
        .iter()
        .map(|r| json!({ "Data": b64.encode(&r.data), "PartitionKey": r.key }))
        .collect();
    json!({ "StreamName": stream, "Records": records })
}

/// One file's records from the oldest unacknowledged one on.
#[derive(Debug, Default)]
pub(crate) struct Acks {
    /// Number of the record in `slots[0]`.
    base: u64,
    /// The end of its line (None for a piece of a long line) and whether it was acknowledged.
    slots: VecDeque<(Option<Position>, bool)>,
}

impl Acks {
    /// Registers the next record; returns its number.
    pub(crate) fn push(&mut self, end: Option<Position>) -> u64 {
        self.slots.push_back((end, false));
        self.base + self.slots.len() as u64 - 1
    }

    pub(crate) fn ack(&mut self, n: u64) {
        if let Some(slot) = n
            .checked_sub(self.base)
            .and_then(|i| self.slots.get_mut(i as usize))
        {
            slot.1 = true;
        }
    }

    /// Drops the acknowledged prefix; returns the end of the last whole line in it, which is
    /// where the checkpoint may move.
    pub(crate) fn advance(&mut self) -> Option<Position> {
        let mut end = None;
        while let Some((line_end, true)) = self.slots.front().copied() {
            end = line_end.or(end);
            self.slots.pop_front();
            self.base += 1;
        }
        end
    }

    /// Records read but not acknowledged yet.
    pub(crate) fn pending(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tail::follow::FileId;

    fn rec(n: u64, len: usize) -> Record {
        Record {
            file: 0,
            n,
            key: "k".into(),
            data: vec![b'x'; len],
            queued_at: Instant::now(),
        }
    }

    fn at(offset: u64) -> Option<Position> {
        Some(Position {
            file: FileId { dev: 1, inode: 2 },
            offset,
        })
    }

    #[test]
    fn batches_stop_at_500_records_and_5_mib() {
        let mut q = Queue::default();
        for n in 0..1200 {
            q.push(rec(n, 10));
        }
        assert!(q.batch_full());
        assert_eq!(q.take_batch().len(), 500);
        assert_eq!(q.take_batch().len(), 500);
        assert_eq!(q.take_batch().len(), 200);
        assert!(q.is_empty() && q.bytes() == 0);
        for n in 0..8 {
            q.push(rec(n, MAX_RECORD_BYTES - 1));
        }
        let batch = q.take_batch();
        assert_eq!(batch.len(), 5);
        assert!(batch.iter().map(Record::size).sum::<usize>() <= MAX_BATCH_BYTES);
    }

    #[test]
    fn refused_records_go_back_in_front_in_order() {
        let mut q = Queue::default();
        for n in 0..5 {
            q.push(rec(n, 1));
        }
        let batch = q.take_batch();
        q.push(rec(5, 1));
        let refused: Vec<_> = batch.into_iter().filter(|r| r.n % 2 == 1).collect();
        q.requeue_front(refused);
        let order: Vec<_> = q.take_batch().iter().map(|r| r.n).collect();
        assert_eq!(order, [1, 3, 5]);
    }

    #[test]
    fn the_checkpoint_moves_only_over_an_acknowledged_prefix_of_whole_lines() {
        let mut acks = Acks::default();
        let a = acks.push(at(10));
        let b = acks.push(None); // first piece of a long line
        let c = acks.push(at(30)); // its last piece
        let d = acks.push(at(40));
        acks.ack(b);
        assert_eq!(acks.advance(), None);
        acks.ack(d);
        acks.ack(a);
        assert_eq!(acks.advance(), at(10));
        acks.ack(c);
        assert_eq!(acks.advance(), at(40));
        assert_eq!(acks.pending(), 0);
        let e = acks.push(at(50));
        assert_eq!(e, 4);
        acks.ack(e);
        acks.ack(e + 7); // unknown: ignored
        assert_eq!(acks.advance(), at(50));
    }

    #[test]
    fn request_body_is_base64_with_keys() {
        let body = request_body("s", &[rec(0, 3)]);
        assert_eq!(body["StreamName"], "s");
        assert_eq!(body["Records"][0]["Data"], "eHh4");
        assert_eq!(body["Records"][0]["PartitionKey"], "k");
    }
}
