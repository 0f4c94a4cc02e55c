//! Which fragments a session plays, and in which order: pure logic over fragment metadata
//! (no I/O), per the `kinesis-video-archived-media` docs.
//!
//! * **ON_DEMAND** (and GetClip): the first fragments *ingested* with a timestamp in the
//!   range (inclusive), up to the maximum, then ordered by timestamp. With
//!   `PRODUCER_TIMESTAMP`, fragments with the same producer timestamp are deduplicated and the
//!   newest (largest fragment number) is kept.
//! * **LIVE**: the newest fragments by ingestion; a fragment is not added if it is not newer
//!   than the newest fragment already in the session (late or re-sent fragments do not fill
//!   gaps), so the playlist only grows at its end.
//! * **LIVE_REPLAY**: fragments from the range start, released as real time passes: fragment
//!   *i* enters when the durations of the fragments released before it have elapsed since the
//!   session started (so gaps in the recording are skipped, not waited for).
//!
//! Every fragment that enters a session becomes a [`Segment`] of its [`Timeline`] with a media
//! sequence number that never changes (0, 1, 2... in session order), the number of
//! discontinuities up to it, and the fragment whose track is its init segment. LIVE playlists
//! show the last `MaxMediaPlaylistFragmentResults` segments of that timeline.

use std::collections::{HashMap, VecDeque};

use crate::storage::{FragmentRecord, TimestampKind};

/// A gap or overlap larger than this between consecutive fragments is a discontinuity
/// (`ON_DISCONTINUITY`).
pub(crate) const DISCONTINUITY_THRESHOLD_MS: i64 = 50;

/// `FragmentSelectorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Producer,
    Server,
}

impl Kind {
    pub(crate) fn parse(value: &str) -> Option<Kind> {
        match value {
            "PRODUCER_TIMESTAMP" => Some(Kind::Producer),
            "SERVER_TIMESTAMP" => Some(Kind::Server),
            _ => None,
        }
    }

    pub(crate) fn storage(self) -> TimestampKind {
        match self {
            Kind::Producer => TimestampKind::Producer,
            Kind::Server => TimestampKind::Server,
        }
    }
}

/// `DiscontinuityMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DiscontinuityMode {
    Always,
    Never,
    OnDiscontinuity,
}

impl DiscontinuityMode {
    pub(crate) fn parse(value: &str) -> Option<DiscontinuityMode> {
        match value {
            "ALWAYS" => Some(DiscontinuityMode::Always),
            "NEVER" => Some(DiscontinuityMode::Never),
            "ON_DISCONTINUITY" => Some(DiscontinuityMode::OnDiscontinuity),
            _ => None,
        }
    }
}

/// What selection needs of a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FragMeta {
    pub(crate) seq: i64,
    pub(crate) producer_ts_ms: i64,
    pub(crate) server_ts_ms: i64,
    pub(crate) duration_ms: i64,
    pub(crate) size_bytes: i64,
    /// Identifies the fragment's tracks (codec private data, picture size): a change needs a
    /// new init segment and a discontinuity.
    pub(crate) track_key: u64,
}

impl FragMeta {
    pub(crate) fn from_record(r: &FragmentRecord) -> FragMeta {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        r.tracks_json.hash(&mut hasher);
        FragMeta {
            seq: r.seq,
            producer_ts_ms: r.producer_ts_ms,
            server_ts_ms: r.server_ts_ms,
            duration_ms: r.duration_ms.max(0),
            size_bytes: r.size_bytes,
            track_key: hasher.finish(),
        }
    }

    /// The timestamp the session selects and orders by.
    pub(crate) fn ts(&self, kind: Kind) -> i64 {
        match kind {
            Kind::Producer => self.producer_ts_ms,
            Kind::Server => self.server_ts_ms,
        }
    }

    /// Where the next fragment starts if the media is continuous (producer timeline).
    pub(crate) fn media_end_ms(&self) -> i64 {
        self.producer_ts_ms.saturating_add(self.duration_ms)
    }
}

/// Collects the fragments of a fixed range (ON_DEMAND, GetClip) from pages of the index in
/// ingestion order.
pub(crate) struct RangeCollector {
    kind: Kind,
    max: usize,
    items: Vec<FragMeta>,
    /// Producer timestamp -> index in `items` (deduplication).
    by_ts: HashMap<i64, usize>,
}

impl RangeCollector {
    pub(crate) fn new(kind: Kind, max: usize) -> RangeCollector {
        RangeCollector {
            kind,
            max,
            items: Vec::new(),
            by_ts: HashMap::new(),
        }
    }

    /// Offers the next fragment in ingestion order; false once the collector is full.
    pub(crate) fn push(&mut self, meta: FragMeta) -> bool {
        if self.kind == Kind::Producer
            && let Some(&i) = self.by_ts.get(&meta.producer_ts_ms)
        {
            // Same producer timestamp: the newer fragment replaces the older one.
            if meta.seq > self.items[i].seq {
                self.items[i] = meta;
            }
            return true;
        }
        if self.items.len() >= self.max {
            return false;
        }
        if self.kind == Kind::Producer {
            self.by_ts.insert(meta.producer_ts_ms, self.items.len());
        }
        self.items.push(meta);
        self.items.len() < self.max
    }

    /// The selection in playback order (timestamp, then ingestion).
    pub(crate) fn finish(self) -> Vec<FragMeta> {
        let kind = self.kind;
        let mut items = self.items;
        items.sort_by_key(|m| (m.ts(kind), m.seq));
        items
    }
}

/// One fragment of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) meta: FragMeta,
    /// Media sequence number (HLS) / `$Number$` (DASH): its place in the session.
    pub(crate) msn: u64,
    /// EXT-X-DISCONTINUITY before this segment.
    pub(crate) discontinuity: bool,
    /// Discontinuities up to and including this segment.
    pub(crate) discontinuities: u64,
    /// The fragment whose track is this segment's init segment: the first fragment of the
    /// session's run of fragments with the same tracks.
    pub(crate) init_seq: i64,
    /// Added to the fragment's producer times on the session's media timeline (fMP4 `tfdt`,
    /// TS PTS, DASH `S@t`). 0 unless the producer clock went back (see [`Timeline::append`]).
    pub(crate) offset_ms: i64,
}

impl Segment {
    /// Where the segment starts on the session's media timeline, ms.
    pub(crate) fn media_start_ms(&self) -> i64 {
        self.meta.producer_ts_ms.saturating_add(self.offset_ms)
    }
}

/// The fragments of a session in order, with the state that keeps LIVE playlists stable
/// across reloads.
#[derive(Debug, Clone)]
pub(crate) struct Timeline {
    kind: Kind,
    mode: DiscontinuityMode,
    /// Segments kept (the window plus some history for late segment requests).
    history: usize,
    segments: VecDeque<Segment>,
    next_msn: u64,
    discontinuities: u64,
    /// Newest timestamp (of `kind`) in the session: older fragments are not added.
    newest_ts: Option<i64>,
    /// The last fragment sequence looked at in the index (LIVE / LIVE_REPLAY cursor).
    pub(crate) last_seq: i64,
    /// LIVE_REPLAY: fragments read from the index but not yet released.
    pending: VecDeque<FragMeta>,
    /// LIVE_REPLAY: the summed durations of the released fragments.
    released_ms: i64,
    /// LIVE_REPLAY: the range has been played to its end (EXT-X-ENDLIST).
    pub(crate) ended: bool,
    /// EXT-X-TARGETDURATION so far (it must not shrink between reloads).
    pub(crate) target_duration: u64,
}

impl Timeline {
    /// An empty timeline keeping at most `history` segments.
    pub(crate) fn new(kind: Kind, mode: DiscontinuityMode, history: usize) -> Timeline {
        Timeline {
            kind,
            mode,
            history: history.max(1),
            segments: VecDeque::new(),
            next_msn: 0,
            discontinuities: 0,
            newest_ts: None,
            last_seq: 0,
            pending: VecDeque::new(),
            released_ms: 0,
            ended: false,
            target_duration: 1,
        }
    }

    /// Appends a fragment unconditionally (a fixed, already ordered selection).
    ///
    /// The media timeline of a session follows the producer timestamps, gaps included, but
    /// never goes back: a fragment that would start more than
    /// [`DISCONTINUITY_THRESHOLD_MS`] before the previous one ends (a producer clock set
    /// back, or fragments selected by server timestamp whose producer times are out of order)
    /// is moved to where the previous one ends, and every later fragment keeps that offset.
    /// Players then never see time go backwards, and no frame falls before the session's
    /// timeline origin.
    pub(crate) fn append(&mut self, meta: FragMeta) -> &Segment {
        let prev = self.segments.back().copied();
        let discontinuity = match prev {
            None => false,
            Some(p) => {
                p.meta.track_key != meta.track_key
                    || match self.mode {
                        DiscontinuityMode::Always => true,
                        DiscontinuityMode::Never => false,
                        DiscontinuityMode::OnDiscontinuity => {
                            (meta.producer_ts_ms - p.meta.media_end_ms()).abs()
                                > DISCONTINUITY_THRESHOLD_MS
                        }
                    }
            }
        };
        let init_seq = match prev {
            Some(p) if p.meta.track_key == meta.track_key => p.init_seq,
            _ => meta.seq,
        };
        let offset_ms = match prev {
            None => 0,
            Some(p) => {
                let prev_end = p.meta.media_end_ms().saturating_add(p.offset_ms);
                let start = meta.producer_ts_ms.saturating_add(p.offset_ms);
                if start < prev_end - DISCONTINUITY_THRESHOLD_MS {
                    prev_end - meta.producer_ts_ms
                } else {
                    p.offset_ms
                }
            }
        };
        self.discontinuities += u64::from(discontinuity);
        let ts = meta.ts(self.kind);
        self.newest_ts = Some(self.newest_ts.map_or(ts, |n| n.max(ts)));
        self.segments.push_back(Segment {
            meta,
            msn: self.next_msn,
            discontinuity,
            discontinuities: self.discontinuities,
            init_seq,
            offset_ms,
        });
        self.next_msn += 1;
        while self.segments.len() > self.history {
            self.segments.pop_front();
        }
        self.segments.back().expect("just pushed")
    }

    /// Appends a fragment unless it is not newer than the newest one in the session (LIVE
    /// rules). Returns whether it was added.
    pub(crate) fn offer(&mut self, meta: FragMeta) -> bool {
        if self.newest_ts.is_some_and(|n| meta.ts(self.kind) <= n) {
            return false;
        }
        self.append(meta);
        true
    }

    /// LIVE_REPLAY: queues fragments read from the index (ingestion order).
    pub(crate) fn queue(&mut self, meta: FragMeta) {
        self.pending.push_back(meta);
    }

    /// LIVE_REPLAY: whether fragments are queued.
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// LIVE_REPLAY: releases the queued fragments whose turn has come `elapsed_ms` after
    /// the session started. Fragments that are not newer than the session's newest are
    /// dropped without using replay time.
    pub(crate) fn release_due(&mut self, elapsed_ms: i64) {
        while let Some(next) = self.pending.front().copied() {
            if self.newest_ts.is_some_and(|n| next.ts(self.kind) <= n) {
                self.pending.pop_front();
                continue;
            }
            if self.released_ms > elapsed_ms {
                break;
            }
            self.pending.pop_front();
            self.released_ms = self.released_ms.saturating_add(next.duration_ms.max(1));
            self.append(next);
        }
    }

    /// The last `n` segments (all of them for `n >= len`).
    pub(crate) fn window(&self, n: usize) -> Vec<Segment> {
        let skip = self.segments.len().saturating_sub(n);
        self.segments.iter().skip(skip).copied().collect()
    }

    /// The segment of fragment `seq`, if the session has it.
    pub(crate) fn by_seq(&self, seq: i64) -> Option<Segment> {
        self.segments
            .iter()
            .rev()
            .find(|s| s.meta.seq == seq)
            .copied()
    }

    /// The segment with media sequence number `msn`, if still kept.
    pub(crate) fn by_msn(&self, msn: u64) -> Option<Segment> {
        let first = self.segments.front()?.msn;
        let index = usize::try_from(msn.checked_sub(first)?).ok()?;
        self.segments.get(index).copied()
    }

    /// Whether `seq` is the init fragment of a kept segment.
    pub(crate) fn is_init(&self, seq: i64) -> bool {
        self.segments.iter().any(|s| s.init_seq == seq)
    }

    /// Number of segments kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.segments.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(seq: i64, producer_ts_ms: i64, duration_ms: i64) -> FragMeta {
        FragMeta {
            seq,
            producer_ts_ms,
            server_ts_ms: 1_000_000 + seq * 1000,
            duration_ms,
            size_bytes: 1000,
            track_key: 1,
        }
    }

    #[test]
    fn range_keeps_ingestion_order_limit_then_sorts_and_dedups() {
        let mut c = RangeCollector::new(Kind::Producer, 3);
        assert!(c.push(meta(1, 3000, 1000)));
        assert!(c.push(meta(2, 1000, 1000)));
        // Same producer timestamp as seq 2: the newer fragment wins, no slot used.
        assert!(c.push(meta(3, 1000, 1000)));
        assert!(
            !c.push(meta(4, 2000, 1000)),
            "full after the third distinct one"
        );
        assert!(!c.push(meta(5, 0, 1000)), "later fragments are not taken");
        let seqs: Vec<i64> = c.finish().iter().map(|m| m.seq).collect();
        assert_eq!(seqs, vec![3, 4, 1]);
        // Server timestamps are not deduplicated.
        let mut c = RangeCollector::new(Kind::Server, 10);
        c.push(meta(1, 1000, 1000));
        c.push(meta(2, 1000, 1000));
        assert_eq!(c.finish().len(), 2);
    }

    fn flags(mode: DiscontinuityMode, metas: &[FragMeta]) -> Vec<bool> {
        let mut t = Timeline::new(Kind::Producer, mode, 100);
        for m in metas {
            t.append(*m);
        }
        t.window(100).iter().map(|s| s.discontinuity).collect()
    }

    #[test]
    fn discontinuity_modes() {
        // Contiguous, then +50 ms (not more than 50: no), then +51 ms gap, then a 60 ms
        // overlap.
        let metas = [
            meta(1, 0, 1000),
            meta(2, 1000, 1000),
            meta(3, 2050, 1000),
            meta(4, 3101, 1000),
            meta(5, 4041, 1000),
        ];
        assert_eq!(
            flags(DiscontinuityMode::OnDiscontinuity, &metas),
            vec![false, false, false, true, true]
        );
        assert_eq!(flags(DiscontinuityMode::Never, &metas), vec![false; 5]);
        assert_eq!(
            flags(DiscontinuityMode::Always, &metas),
            vec![false, true, true, true, true]
        );
        // A track change is always a discontinuity and starts a new init run.
        let mut changed = meta(2, 1000, 1000);
        changed.track_key = 2;
        let mut t = Timeline::new(Kind::Producer, DiscontinuityMode::Never, 10);
        t.append(meta(1, 0, 1000));
        t.append(changed);
        t.append(meta(3, 2000, 1000));
        let w = t.window(10);
        assert_eq!(
            w.iter().map(|s| s.discontinuity).collect::<Vec<_>>(),
            vec![false, true, true]
        );
        assert_eq!(
            w.iter().map(|s| s.init_seq).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(w[2].discontinuities, 2);
    }

    #[test]
    fn media_timeline_never_goes_back() {
        let mut t = Timeline::new(Kind::Server, DiscontinuityMode::Never, 10);
        t.append(meta(1, 10_000, 1000));
        // A forward gap is kept.
        t.append(meta(2, 20_000, 1000));
        // The producer clock went back 1 hour: stitched to the previous end.
        t.append(meta(3, 20_000 - 3_600_000, 1000));
        // Continuous after that: the same offset.
        t.append(meta(4, 21_000 - 3_600_000, 1000));
        // A small overlap (within 50 ms) is left alone.
        t.append(meta(5, 22_000 - 3_600_000 - 40, 1000));
        let starts: Vec<i64> = t.window(10).iter().map(Segment::media_start_ms).collect();
        assert_eq!(starts, vec![10_000, 20_000, 21_000, 22_000, 22_960]);
        assert_eq!(t.window(10)[0].offset_ms, 0);
    }

    #[test]
    fn live_window_slides_with_stable_sequence_numbers() {
        let mut t = Timeline::new(Kind::Server, DiscontinuityMode::Never, 8);
        for seq in 1..=5 {
            assert!(
                t.offer(meta(seq * 2, seq * 1000, 1000)),
                "gaps in seq are fine"
            );
        }
        let w = t.window(3);
        assert_eq!(w.iter().map(|s| s.msn).collect::<Vec<_>>(), vec![2, 3, 4]);
        assert_eq!(w[0].meta.seq, 6);
        // A late fragment (older server timestamp) is not added.
        let mut late = meta(11, 0, 1000);
        late.server_ts_ms = 0;
        assert!(!t.offer(late));
        assert!(t.offer(meta(12, 6000, 1000)));
        let w = t.window(3);
        assert_eq!(w.iter().map(|s| s.msn).collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(t.by_msn(5).unwrap().meta.seq, 12);
        assert_eq!(t.by_seq(8).unwrap().msn, 3);
        for seq in 13..30 {
            t.offer(meta(seq, seq * 1000, 1000));
        }
        assert_eq!(t.len(), 8, "history is bounded");
        assert!(t.by_msn(0).is_none());
        assert!(t.by_seq(2).is_none());
        assert!(t.is_init(2), "the init fragment of the run stays known");
    }

    #[test]
    fn replay_releases_by_elapsed_durations() {
        let mut t = Timeline::new(Kind::Producer, DiscontinuityMode::Never, 100);
        // Three 2 s fragments with an hour's gap before the third.
        t.queue(meta(1, 0, 2000));
        t.queue(meta(2, 2000, 2000));
        t.queue(meta(3, 3_600_000, 2000));
        // A duplicate producer timestamp is dropped without using replay time.
        t.queue(meta(4, 2000, 2000));
        t.queue(meta(5, 3_602_000, 2000));
        t.release_due(0);
        assert_eq!(t.len(), 1, "the first fragment plays at once");
        t.release_due(1999);
        assert_eq!(t.len(), 1);
        t.release_due(2000);
        assert_eq!(t.len(), 2);
        t.release_due(4000);
        assert_eq!(t.len(), 3, "the gap is skipped, not waited for");
        t.release_due(6000);
        assert_eq!(t.len(), 4);
        assert!(!t.has_pending());
        let seqs: Vec<i64> = t.window(10).iter().map(|s| s.meta.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3, 5]);
    }
}
