// A tiny EBML (Matroska) walker that finds the metadata tags of Kinesis Video fragments, as
// GetMediaForFragmentList and GetMedia return them: per fragment an EBML header and a Segment
// (usually of unknown size) holding header elements, Tags, one Cluster and more Tags.
//
// Only Segment -> Tags -> Tag -> SimpleTag (TagName, TagString/TagBinary, nested SimpleTags) is
// read; Clusters and everything else are skipped by their sizes (an unknown-size Cluster ends at
// the next element that cannot be one of its children). Every read is bounds-checked and every
// step moves forward, so bad input ends the walk early instead of throwing or hanging: the tags
// found before the damage are returned.

const ID = {
  EBML: 0x1a45dfa3,
  SEGMENT: 0x18538067,
  CLUSTER: 0x1f43b675,
  TAGS: 0x1254c367,
  TAG: 0x7373,
  SIMPLE_TAG: 0x67c8,
  TAG_NAME: 0x45a3,
  TAG_STRING: 0x4487,
  TAG_BINARY: 0x4485,
  CUES: 0x1c53bb6b,
  INFO: 0x1549a966,
  TRACKS: 0x1654ae6b,
  SEEK_HEAD: 0x114d9b74,
  CHAPTERS: 0x1043a770,
  ATTACHMENTS: 0x1941a469,
};

/** Ids that end an unknown-size Cluster: level-1 elements, a new Segment or EBML header. */
const ENDS_CLUSTER = new Set([
  ID.CLUSTER, ID.TAGS, ID.CUES, ID.INFO, ID.TRACKS, ID.SEEK_HEAD, ID.CHAPTERS, ID.ATTACHMENTS,
  ID.EBML, ID.SEGMENT,
]);

const MAX_NESTING = 8; // SimpleTags may nest; real ones nest once at most
const MAX_TAGS = 10000;
const decoder = new TextDecoder('utf-8', { fatal: false });

/**
 * Reads an element header at `pos` (not beyond `end`): `{ id, size, dataStart }`, `size` null
 * for "unknown", or null when the bytes there are not a valid header.
 */
export function readHeader(buf, pos, end) {
  const id = readVint(buf, pos, end, true);
  if (!id || id.length > 4) return null;
  const size = readVint(buf, pos + id.length, end, false);
  if (!size) return null;
  return { id: id.value, size: size.unknown ? null : size.value, dataStart: pos + id.length + size.length };
}

/**
 * An EBML variable-length integer at `pos`: `{ value, length, unknown }` or null (past `end`, a
 * zero first byte, or a value beyond 2^53). `keepMarker` keeps the length marker bit (ids).
 */
export function readVint(buf, pos, end, keepMarker) {
  if (!Number.isInteger(pos) || pos < 0 || pos >= end || end > buf.length) return null;
  const first = buf[pos];
  if (first === 0) return null;
  let length = 1;
  while (!(first & (0x80 >> (length - 1)))) length++;
  if (pos + length > end) return null;
  const mask = 0xff >> length;
  let value = keepMarker ? first : first & mask;
  let allOnes = (first & mask) === mask;
  for (let i = 1; i < length; i++) {
    const b = buf[pos + i];
    value = value * 256 + b;
    if (b !== 0xff) allOnes = false;
  }
  if (!keepMarker && allOnes) return { value: null, length, unknown: true };
  if (!Number.isSafeInteger(value)) return null;
  return { value, length, unknown: false };
}

/**
 * The SimpleTags of every Tags element in `bytes` (Uint8Array or ArrayBuffer), in order:
 * `[{ name, value, binary }]` (`value` is the TagString, or the TagBinary in hex with
 * `binary: true`). Nested SimpleTags follow their parent, named `parent/child`.
 */
export function mkvTags(bytes) {
  return scanTags(bytes).tags;
}

/**
 * Like mkvTags; with `stopAtCluster` the walk ends where the first Cluster starts, and
 * `clusterReached` tells whether it got there. GetMedia writes a fragment's own tags (number,
 * timestamps, user tags) before its Cluster, so a reader of a streamed response can stop
 * downloading the media once `clusterReached` is true.
 */
export function scanTags(bytes, { stopAtCluster = false } = {}) {
  const buf = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const walk = { tags: [], stopAtCluster, clusterReached: false };
  let pos = 0;
  // Top level: EBML headers and Segments, one after the other.
  while (pos < buf.length && walk.tags.length < MAX_TAGS && !walk.clusterReached) {
    const h = readHeader(buf, pos, buf.length);
    if (!h) break;
    if (h.id === ID.SEGMENT) {
      const end = h.size === null ? buf.length : Math.min(buf.length, h.dataStart + h.size);
      pos = walkSegment(buf, h.dataStart, end, walk);
    } else if (h.size !== null) {
      pos = h.dataStart + h.size; // the EBML header, Void, anything else
    } else {
      break;
    }
  }
  return { tags: walk.tags, clusterReached: walk.clusterReached };
}

/** Walks a Segment's children; returns where the top level goes on. */
function walkSegment(buf, pos, end, walk) {
  const tags = walk.tags;
  while (pos < end && tags.length < MAX_TAGS) {
    const h = readHeader(buf, pos, end);
    if (!h) return buf.length;
    if (h.id === ID.EBML || h.id === ID.SEGMENT) return pos; // the next fragment's
    if (h.id === ID.CLUSTER && walk.stopAtCluster) {
      walk.clusterReached = true;
      return buf.length;
    }
    if (h.id === ID.CLUSTER && h.size === null) {
      pos = skipUnknownCluster(buf, h.dataStart, end);
      continue;
    }
    if (h.size === null) return buf.length; // only Segment and Cluster may be of unknown size
    const dataEnd = h.dataStart + h.size;
    if (dataEnd > end) {
      // Truncated (or lying) element: read the tags that are there, then stop.
      if (h.id === ID.TAGS) walkTags(buf, h.dataStart, end, tags);
      return buf.length;
    }
    if (h.id === ID.TAGS) walkTags(buf, h.dataStart, dataEnd, tags);
    pos = dataEnd;
  }
  return end;
}

/** Skips the children of an unknown-size Cluster; returns the position of what ends it. */
function skipUnknownCluster(buf, pos, end) {
  while (pos < end) {
    const h = readHeader(buf, pos, end);
    if (!h) return end;
    if (ENDS_CLUSTER.has(h.id)) return pos;
    if (h.size === null) return end;
    pos = h.dataStart + h.size;
  }
  return end;
}

function walkTags(buf, pos, end, tags) {
  forChildren(buf, pos, end, (id, start, stop) => {
    if (id === ID.TAG) {
      forChildren(buf, start, stop, (cid, cstart, cstop) => {
        if (cid === ID.SIMPLE_TAG) simpleTag(buf, cstart, cstop, tags, '', 0);
      });
    }
  });
}

function simpleTag(buf, pos, end, tags, prefix, depth) {
  let name = '';
  let value = '';
  let binary = false;
  const nested = [];
  forChildren(buf, pos, end, (id, start, stop) => {
    if (id === ID.TAG_NAME) name = text(buf, start, stop);
    else if (id === ID.TAG_STRING) value = text(buf, start, stop);
    else if (id === ID.TAG_BINARY) {
      value = hex(buf, start, stop);
      binary = true;
    } else if (id === ID.SIMPLE_TAG && depth < MAX_NESTING) nested.push([start, stop]);
  });
  if (tags.length >= MAX_TAGS) return;
  const fullName = prefix ? `${prefix}/${name}` : name;
  tags.push({ name: fullName, value, binary });
  for (const [start, stop] of nested) simpleTag(buf, start, stop, tags, fullName, depth + 1);
}

/** Calls `visit(id, dataStart, dataEnd)` for each known-size child in [pos, end). */
function forChildren(buf, pos, end, visit) {
  while (pos < end) {
    const h = readHeader(buf, pos, end);
    if (!h || h.size === null) return;
    const stop = h.dataStart + h.size;
    if (stop > end) return;
    visit(h.id, h.dataStart, stop);
    pos = stop;
  }
}

function text(buf, start, stop) {
  return decoder.decode(buf.subarray(start, stop)).replace(/\0+$/, '');
}

function hex(buf, start, stop) {
  const n = Math.min(stop - start, 256);
  let s = '';
  for (let i = 0; i < n; i++) s += buf[start + i].toString(16).padStart(2, '0');
  return stop - start > n ? `${s}…` : s;
}

/** The prefix of the tags Kinesis Video writes itself (fragment number, timestamps, ...). */
export const AWS_PREFIX = 'AWS_KINESISVIDEO_';

/**
 * The metadata of one fragment from its tags: `{ fragmentNumber, producerTimestamp,
 * serverTimestamp, user }`, timestamps as epoch milliseconds (or null), `user` the tags not
 * starting with AWS_KINESISVIDEO_ (the last value of each name wins, as the AWS parser does).
 */
export function fragmentMetadata(tags) {
  const aws = new Map();
  const user = new Map();
  for (const t of tags) {
    if (t.name.startsWith(AWS_PREFIX)) aws.set(t.name.slice(AWS_PREFIX.length), t.value);
    else if (t.name) user.set(t.name, t.value);
  }
  const ms = (v) => {
    const n = Number.parseFloat(v);
    return Number.isFinite(n) ? Math.round(n * 1000) : null;
  };
  return {
    fragmentNumber: aws.get('FRAGMENT_NUMBER') ?? null,
    producerTimestamp: ms(aws.get('PRODUCER_TIMESTAMP')),
    serverTimestamp: ms(aws.get('SERVER_TIMESTAMP')),
    user: [...user].map(([name, value]) => ({ name, value })),
  };
}
