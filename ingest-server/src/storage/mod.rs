//! Where streams and fragments live. The [`VideoStore`] trait is the only thing
//! services see, so the embedded default (fragment files + SQLite index) and a
//! scale-out backend (object storage + PostgreSQL) are interchangeable.
//!
//! The durability protocol is written down in `design/storage-lifecycle.md`.

mod embedded;
mod files;
mod index;

use std::collections::BTreeMap;

pub use embedded::EmbeddedStore;

/// A stream's control-plane record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    /// Internal id, never reused (fragment numbers and media paths embed it).
    pub id: i64,
    /// `StreamName`.
    pub name: String,
    /// `StreamARN`.
    pub arn: String,
    /// `DeviceName`.
    pub device_name: Option<String>,
    /// `MediaType`.
    pub media_type: Option<String>,
    /// `KmsKeyId`.
    pub kms_key_id: Option<String>,
    /// `Version`: changes on every update, checked by `CurrentVersion`.
    pub version: String,
    /// `CreationTime` in epoch milliseconds.
    pub creation_time_ms: i64,
    /// `DataRetentionInHours`; 0 keeps nothing.
    pub retention_hours: i64,
    /// Stream tags.
    pub tags: BTreeMap<String, String>,
}

/// A stream to create.
#[derive(Debug, Clone)]
pub struct NewStream {
    /// `StreamName`.
    pub name: String,
    /// `DeviceName`.
    pub device_name: Option<String>,
    /// `MediaType`.
    pub media_type: Option<String>,
    /// `KmsKeyId`.
    pub kms_key_id: Option<String>,
    /// `DataRetentionInHours`.
    pub retention_hours: i64,
    /// Initial tags.
    pub tags: BTreeMap<String, String>,
    /// Account and region used to build the ARN.
    pub arn_prefix: String,
    /// Creation time, epoch milliseconds.
    pub now_ms: i64,
}

/// A change to a stream's mutable fields, applied only if `CurrentVersion` matches.
#[derive(Debug, Clone, Default)]
pub struct StreamUpdate {
    /// New `DeviceName`.
    pub device_name: Option<String>,
    /// New `MediaType`.
    pub media_type: Option<String>,
    /// New `DataRetentionInHours`.
    pub retention_hours: Option<i64>,
}

/// How a stream is named in a request.
#[derive(Debug, Clone, Copy)]
pub enum StreamKey<'a> {
    /// By `StreamName`.
    Name(&'a str),
    /// By `StreamARN`.
    Arn(&'a str),
}

/// A fragment ready to be made durable.
#[derive(Debug, Clone)]
pub struct NewFragment {
    /// Owning stream.
    pub stream_id: i64,
    /// Sequence within the stream, from [`VideoStore::allocate_fragment_seq`].
    pub seq: i64,
    /// Producer timestamp, epoch milliseconds.
    pub producer_ts_ms: i64,
    /// Server timestamp (arrival), epoch milliseconds.
    pub server_ts_ms: i64,
    /// `FragmentLengthInMilliseconds`.
    pub duration_ms: i64,
    /// Size of the fragment's Cluster as received (`FragmentSizeInBytes`).
    pub size_bytes: i64,
    /// Hash of the fragment's frames and their timecodes, to recognise re-sent fragments.
    pub content_hash: [u8; 32],
    /// Tracks of the fragment's upload session, as JSON (codec, CodecPrivate, size).
    pub tracks_json: String,
    /// The fragment's user metadata tags, in order.
    pub user_tags: Vec<(String, String)>,
    /// The bytes GetMedia serves for this fragment, up to and including the Cluster
    /// (the trailing MILLIS_BEHIND_NOW / CONTINUATION_TOKEN tags are added per read).
    pub media: Vec<u8>,
}

/// An indexed fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragmentRecord {
    /// Owning stream.
    pub stream_id: i64,
    /// Sequence within the stream.
    pub seq: i64,
    /// Producer timestamp, epoch milliseconds.
    pub producer_ts_ms: i64,
    /// Server timestamp, epoch milliseconds.
    pub server_ts_ms: i64,
    /// `FragmentLengthInMilliseconds`.
    pub duration_ms: i64,
    /// `FragmentSizeInBytes`.
    pub size_bytes: i64,
    /// Tracks as JSON.
    pub tracks_json: String,
    /// User metadata tags.
    pub user_tags: Vec<(String, String)>,
}

impl FragmentRecord {
    /// The fragment's AWS-style number.
    pub fn number(&self) -> String {
        fragment_number(self.stream_id, self.seq)
    }
}

/// Which timestamp a query or selector refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampKind {
    /// The producer's timestamp (Cluster timecode).
    Producer,
    /// The server's arrival timestamp.
    Server,
}

/// A `ListFragments` query.
#[derive(Debug, Clone)]
pub struct FragmentQuery {
    /// Optional timestamp range: (kind, start ms inclusive, end ms inclusive).
    pub range: Option<(TimestampKind, i64, i64)>,
    /// Resume after this sequence (pagination).
    pub after_seq: Option<i64>,
    /// Page size.
    pub limit: usize,
}

/// Storage failures, by kind; services map them to AWS errors in one place.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stream or fragment does not exist.
    #[error("not found")]
    NotFound,
    /// A stream with this name already exists.
    #[error("stream {0} already exists")]
    AlreadyExists(String),
    /// A tag change would leave more tags than allowed.
    #[error("a stream can have at most {max} tags; this change would leave {count}")]
    TooManyTags {
        /// Tags the change would leave.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// `CurrentVersion` did not match.
    #[error("version mismatch: current version is {current}")]
    VersionMismatch {
        /// The stream's actual version.
        current: String,
    },
    /// The SQLite index failed.
    #[error("index: {0}")]
    Index(#[from] rusqlite::Error),
    /// A media file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The store's files are not in a state this version understands.
    #[error("{0}")]
    Incompatible(String),
}

/// The storage interface of the video service. Methods block (file and database I/O);
/// async callers run them on the blocking pool.
pub trait VideoStore: Send + Sync + 'static {
    /// Creates a stream; `AlreadyExists` if the name is taken.
    fn create_stream(&self, new: NewStream) -> Result<StreamRecord, StoreError>;
    /// Looks a stream up by name or ARN.
    fn stream(&self, key: StreamKey<'_>) -> Result<Option<StreamRecord>, StoreError>;
    /// Streams in name order, optionally with a name prefix, after a name, at most `limit`.
    fn list_streams(
        &self,
        prefix: Option<&str>,
        after_name: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StreamRecord>, StoreError>;
    /// Applies `update` if the stream's version is `expected_version`; returns the new record.
    fn update_stream(
        &self,
        id: i64,
        expected_version: &str,
        update: StreamUpdate,
    ) -> Result<StreamRecord, StoreError>;
    /// Adds (or overwrites) `add` and removes `remove` in the stream's tags, atomically,
    /// unless the result would hold more than `max` tags (`TooManyTags`).
    fn modify_stream_tags(
        &self,
        id: i64,
        add: BTreeMap<String, String>,
        remove: Vec<String>,
        max: usize,
    ) -> Result<(), StoreError>;
    /// Deletes a stream and all its fragments (if `expected_version` matches when given).
    fn delete_stream(&self, id: i64, expected_version: Option<&str>) -> Result<(), StoreError>;

    /// Reserves the next fragment sequence of a stream (numbers are never reused).
    fn allocate_fragment_seq(&self, stream_id: i64) -> Result<i64, StoreError>;
    /// A stored fragment with the same producer timestamp and content, if any.
    fn find_duplicate(
        &self,
        stream_id: i64,
        producer_ts_ms: i64,
        content_hash: &[u8; 32],
    ) -> Result<Option<FragmentRecord>, StoreError>;
    /// Makes a fragment durable: when this returns `Ok`, a crash cannot lose it.
    fn put_fragment(&self, fragment: NewFragment) -> Result<FragmentRecord, StoreError>;
    /// One fragment by sequence.
    fn fragment(&self, stream_id: i64, seq: i64) -> Result<Option<FragmentRecord>, StoreError>;
    /// Fragments in sequence order after `after_seq` (exclusive), at most `limit`.
    fn fragments_after(
        &self,
        stream_id: i64,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<FragmentRecord>, StoreError>;
    /// The sequence of the fragment containing `ts_ms` (or the first one after it).
    fn seek(
        &self,
        stream_id: i64,
        kind: TimestampKind,
        ts_ms: i64,
    ) -> Result<Option<i64>, StoreError>;
    /// The highest stored sequence of a stream.
    fn latest_seq(&self, stream_id: i64) -> Result<Option<i64>, StoreError>;
    /// `ListFragments`.
    fn list_fragments(
        &self,
        stream_id: i64,
        query: &FragmentQuery,
    ) -> Result<Vec<FragmentRecord>, StoreError>;
    /// The stored GetMedia bytes of a fragment.
    fn read_fragment_media(&self, fragment: &FragmentRecord) -> Result<Vec<u8>, StoreError>;
    /// Deletes fragments older than their stream's retention; returns how many.
    fn expire(&self, now_ms: i64) -> Result<usize, StoreError>;
}

/// Width of the per-stream sequence part of a fragment number.
const SEQ_DIGITS: usize = 35;

/// The AWS-style fragment number of `(stream_id, seq)`: 47 decimal digits, "91", the
/// stream id (10 digits) and the sequence (35 digits), so numbers increase with the
/// sequence within a stream and are unique across streams.
pub fn fragment_number(stream_id: i64, seq: i64) -> String {
    format!("91{stream_id:010}{seq:0SEQ_DIGITS$}")
}

/// The `(stream_id, seq)` of a fragment number made by [`fragment_number`].
pub fn parse_fragment_number(number: &str) -> Option<(i64, i64)> {
    if number.len() != 47
        || !number.starts_with("91")
        || !number.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let stream_id = number[2..12].parse().ok()?;
    let seq = number[12..].parse().ok()?;
    Some((stream_id, seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_numbers_round_trip_and_order() {
        let a = fragment_number(7, 41);
        let b = fragment_number(7, 1_000);
        assert_eq!(a.len(), 47);
        assert!(a < b, "same-length decimal strings order like numbers");
        assert_eq!(parse_fragment_number(&a), Some((7, 41)));
        assert_eq!(parse_fragment_number("123"), None);
        assert_eq!(parse_fragment_number(&a.replace('9', "x")), None);
    }
}
