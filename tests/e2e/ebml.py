"""A small, independent EBML / Matroska walker and a kvssink-style MKV writer.

This is deliberately written from the Matroska/EBML specifications and the
notes in docs (section 1a/2 of kvs-wire-protocol.md), without looking at or
reusing the server's Rust MKV code, so the tests check the server against an
independent implementation.

Reading:
  * ``read_vint`` / ``iter_elements``: elements at one level, including
    unknown-size Segment and Cluster elements (their end is found by scanning
    for the next element that cannot be one of their children).
  * ``parse_stream``: a whole MKV byte stream (one or more EBML+Segment
    pairs, as GetMedia returns) into ``Segment`` objects holding their level-1
    children, with helpers to decode Clusters (timecode + SimpleBlocks) and
    Tags.
  * ``getmedia_fragments``: the GetMedia view: one ``Fragment`` per Cluster,
    with the AWS tags before it, user tags and the AWS tags after it.

Writing:
  * ``to_kvs_mkv``: converts a GStreamer ``matroskamux`` file into the MKV the
    AWS producer SDK (kvssink) sends: unknown-size Segment (1-byte 0xFF) and
    Clusters, Info with a 1 ms TimecodeScale, Tracks with a 4-byte size, one
    Cluster per key frame with an 8-byte Timecode and Position 0, SimpleBlocks
    with 8-byte sizes, optional user Tags before chosen clusters, and a final
    ``AWS_KINESISVIDEO_END_OF_FRAGMENT`` Tags element.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

# ---------------------------------------------------------------- element IDs
EBML = 0x1A45DFA3
SEGMENT = 0x18538067
SEEKHEAD = 0x114D9B74
INFO = 0x1549A966
TRACKS = 0x1654AE6B
TRACK_ENTRY = 0xAE
TRACK_NUMBER = 0xD7
CODEC_ID = 0x86
CODEC_PRIVATE = 0x63A2
CLUSTER = 0x1F43B675
CUES = 0x1C53BB6B
CHAPTERS = 0x1043A770
ATTACHMENTS = 0x1941A469
TAGS = 0x1254C367
TAG = 0x7373
TARGETS = 0x63C0
SIMPLE_TAG = 0x67C8
TAG_NAME = 0x45A3
TAG_STRING = 0x4487
TAG_BINARY = 0x4485
TIMECODE = 0xE7
POSITION = 0xA7
PREV_SIZE = 0xAB
SIMPLE_BLOCK = 0xA3
BLOCK_GROUP = 0xA0
BLOCK = 0xA1
VOID = 0xEC
CRC32 = 0xBF
TIMECODE_SCALE = 0x2AD7B1
SEGMENT_UID = 0x73A4
TITLE = 0x7BA9
MUXING_APP = 0x4D80
WRITING_APP = 0x5741

# Level-1 (children of Segment) IDs, plus the top-level IDs: any of these ends
# an unknown-size Cluster.
LEVEL1_IDS = {SEEKHEAD, INFO, TRACKS, CLUSTER, CUES, CHAPTERS, ATTACHMENTS, TAGS}
TOP_IDS = {EBML, SEGMENT}

END_OF_FRAGMENT = "AWS_KINESISVIDEO_END_OF_FRAGMENT"


class EbmlError(ValueError):
    pass


class Truncated(EbmlError):
    """The data ends in the middle of an element."""


# ------------------------------------------------------------------- reading
def read_vint(buf: bytes, pos: int, *, keep_marker: bool = False) -> tuple[int, int, bool]:
    """Read a variable-size integer at ``pos``.

    Returns ``(value, length, all_ones)``; ``all_ones`` marks the reserved
    "unknown size" value. IDs keep their length marker (``keep_marker``).
    """
    if pos >= len(buf):
        raise Truncated(f"vint at {pos} past end {len(buf)}")
    first = buf[pos]
    if first == 0:
        raise EbmlError(f"invalid vint (0x00) at offset {pos}")
    length = 1
    mask = 0x80
    while not first & mask:
        mask >>= 1
        length += 1
    if pos + length > len(buf):
        raise Truncated(f"vint at {pos} needs {length} bytes")
    value = first if keep_marker else first & (mask - 1)
    all_ones = (first & (mask - 1)) == mask - 1
    for b in buf[pos + 1 : pos + length]:
        value = (value << 8) | b
        all_ones = all_ones and b == 0xFF
    return value, length, all_ones


@dataclass
class Element:
    id: int
    start: int  # offset of the ID
    data_start: int  # offset of the payload
    size: int | None  # declared size; None = unknown
    end: int  # offset just past the element (resolved for unknown sizes)
    buf: bytes = field(repr=False)

    @property
    def data(self) -> bytes:
        return self.buf[self.data_start : self.end]

    @property
    def raw(self) -> bytes:
        return self.buf[self.start : self.end]

    @property
    def header_len(self) -> int:
        return self.data_start - self.start

    def children(self) -> list["Element"]:
        return list(iter_elements(self.buf, self.data_start, self.end, parent=self.id))

    def uint(self) -> int:
        return int.from_bytes(self.data, "big") if self.data else 0

    def string(self) -> str:
        return self.data.rstrip(b"\x00").decode("utf-8")


def _read_header(buf: bytes, pos: int) -> tuple[int, int, int | None]:
    eid, idlen, _ = read_vint(buf, pos, keep_marker=True)
    if idlen > 4:
        raise EbmlError(f"element ID longer than 4 bytes at {pos}")
    size, slen, unknown = read_vint(buf, pos + idlen)
    return eid, pos + idlen + slen, (None if unknown else size)


def _unknown_size_end(buf: bytes, pos: int, end: int, eid: int) -> tuple[int, bool]:
    """End of an unknown-size master element whose payload starts at ``pos``,
    and whether the data ended inside it (truncated)."""
    if eid == SEGMENT:
        stop_ids = TOP_IDS
    elif eid == CLUSTER:
        stop_ids = LEVEL1_IDS | TOP_IDS
    else:
        raise EbmlError(f"unknown size is only supported for Segment/Cluster, not 0x{eid:X}")
    truncated = False
    while pos < end:
        try:
            cid, cdata, csize = _read_header(buf, pos)
        except Truncated:
            return end, True
        if cid in stop_ids:
            return pos, truncated
        if csize is None:
            if cid in (SEGMENT, CLUSTER):
                pos, truncated = _unknown_size_end(buf, cdata, end, cid)
                continue
            raise EbmlError(f"unknown-size child 0x{cid:X} at {pos}")
        pos = cdata + csize
        if pos > end:
            return end, True
    return min(pos, end), truncated


def iter_elements(buf: bytes, pos: int = 0, end: int | None = None, *, parent: int | None = None, strict: bool = True):
    """Yield the elements at one level between ``pos`` and ``end``.

    With ``strict=False`` a truncated trailing element is silently dropped
    (useful for a stream cut off mid-fragment); otherwise ``Truncated`` is
    raised.
    """
    end = len(buf) if end is None else end
    while pos < end:
        try:
            eid, data_start, size = _read_header(buf, pos)
        except Truncated:
            if strict:
                raise
            return
        if size is None:
            elem_end, truncated = _unknown_size_end(buf, data_start, end, eid)
            if truncated and strict and eid != SEGMENT:
                raise Truncated(f"unknown-size element 0x{eid:X} at {pos} is cut off")
        else:
            elem_end = data_start + size
            if elem_end > end:
                if strict:
                    raise Truncated(f"element 0x{eid:X} at {pos} size {size} exceeds parent end {end}")
                return
        yield Element(eid, pos, data_start, size, elem_end, buf)
        # An unknown-size Segment contains everything up to the next EBML
        # header / Segment, so the loop naturally continues there.
        pos = elem_end


@dataclass
class Block:
    track: int
    timecode: int  # relative to the cluster timecode (signed 16 bit)
    keyframe: bool
    flags: int
    frame: bytes

    def key(self):
        return (self.track, self.timecode, self.keyframe, self.frame)


def parse_simple_block(data: bytes, *, simple: bool = True) -> Block:
    track, tlen, _ = read_vint(data, 0)
    if len(data) < tlen + 3:
        raise EbmlError("block too short")
    (rel,) = struct.unpack(">h", data[tlen : tlen + 2])
    flags = data[tlen + 2]
    if flags & 0x06:
        raise EbmlError("laced blocks are not supported by this walker")
    return Block(track, rel, bool(flags & 0x80) if simple else False, flags, data[tlen + 3 :])


@dataclass
class Cluster:
    timecode: int
    blocks: list[Block]
    element: Element
    has_known_size: bool

    @property
    def frames(self) -> list[bytes]:
        return [b.frame for b in self.blocks]


def parse_cluster(el: Element) -> Cluster:
    timecode = None
    blocks: list[Block] = []
    for c in el.children():
        if c.id == TIMECODE:
            timecode = c.uint()
        elif c.id == SIMPLE_BLOCK:
            blocks.append(parse_simple_block(c.data))
        elif c.id == BLOCK_GROUP:
            for g in c.children():
                if g.id == BLOCK:
                    b = parse_simple_block(g.data, simple=False)
                    # A Block in a BlockGroup without ReferenceBlock is a key frame.
                    b.keyframe = not any(x.id == 0xFB for x in c.children())
                    blocks.append(b)
    if timecode is None:
        raise EbmlError(f"Cluster at {el.start} has no Timecode")
    return Cluster(timecode, blocks, el, el.size is not None)


def _simple_tags(el: Element, out: list[tuple[str, str]]):
    name = None
    value = ""
    nested = []
    for c in el.children():
        if c.id == TAG_NAME:
            name = c.string()
        elif c.id == TAG_STRING:
            value = c.string()
        elif c.id == TAG_BINARY:
            value = c.data.hex()
        elif c.id == SIMPLE_TAG:
            nested.append(c)
    if name is not None:
        out.append((name, value))
    for n in nested:
        _simple_tags(n, out)


def parse_tags(el: Element) -> list[tuple[str, str]]:
    """Flatten a Tags element into ``[(TagName, TagString), ...]`` in order."""
    out: list[tuple[str, str]] = []
    for tag in el.children():
        if tag.id != TAG:
            continue
        for st in tag.children():
            if st.id == SIMPLE_TAG:
                _simple_tags(st, out)
    return out


@dataclass
class Segment:
    ebml_header: Element | None
    element: Element
    children: list[Element]
    complete: bool  # False when the data ended inside this segment's last child

    def of(self, eid: int) -> list[Element]:
        return [c for c in self.children if c.id == eid]

    def timecode_scale(self) -> int:
        for info in self.of(INFO):
            for c in info.children():
                if c.id == TIMECODE_SCALE:
                    return c.uint()
        return 1_000_000


def parse_stream(buf: bytes, *, strict: bool = True) -> list[Segment]:
    """Parse a byte stream of (EBML header, Segment) pairs.

    With ``strict=False`` a truncated tail (e.g. a live GetMedia response cut
    off) is dropped: the last Segment is returned with the children that are
    complete and ``complete=False``.
    """
    segments: list[Segment] = []
    header = None
    for el in iter_elements(buf, 0, len(buf), strict=strict):
        if el.id == EBML:
            header = el
        elif el.id == SEGMENT:
            children = []
            complete = True
            pos = el.data_start
            while pos < el.end:
                try:
                    cid, cdata, csize = _read_header(buf, pos)
                except Truncated:
                    if strict:
                        raise
                    complete = False
                    break
                if csize is None:
                    cend, truncated = _unknown_size_end(buf, cdata, el.end, cid)
                    if truncated:
                        if strict:
                            raise Truncated(f"child 0x{cid:X} at {pos} is cut off")
                        complete = False
                        break
                else:
                    cend = cdata + csize
                if cend > el.end:
                    if strict:
                        raise Truncated(f"child 0x{cid:X} at {pos} exceeds the data")
                    complete = False
                    break
                children.append(Element(cid, pos, cdata, csize, cend, buf))
                pos = cend
            segments.append(Segment(header, el, children, complete))
            header = None
        elif el.id == VOID:
            continue
        else:
            raise EbmlError(f"unexpected top-level element 0x{el.id:X} at {el.start}")
    return segments


def clusters(buf: bytes) -> list[Cluster]:
    """All Clusters of all Segments in ``buf``, in order."""
    out = []
    for seg in parse_stream(buf):
        out.extend(parse_cluster(c) for c in seg.of(CLUSTER))
    return out


# --------------------------------------------------------- GetMedia fragments
@dataclass
class Fragment:
    """One fragment (Cluster) as GetMedia / GetMediaForFragmentList emit it."""

    pre_tags: list[tuple[str, str]]  # all tags before the Cluster (AWS + user)
    post_tags: list[tuple[str, str]]  # tags after the Cluster
    cluster: Cluster
    segment: Segment

    def _get(self, tags, name):
        vals = [v for n, v in tags if n == name]
        return vals[-1] if vals else None

    @property
    def fragment_number(self) -> str | None:
        return self._get(self.pre_tags, "AWS_KINESISVIDEO_FRAGMENT_NUMBER")

    @property
    def server_timestamp(self) -> float | None:
        v = self._get(self.pre_tags, "AWS_KINESISVIDEO_SERVER_TIMESTAMP")
        return None if v is None else float(v)

    @property
    def producer_timestamp(self) -> float | None:
        v = self._get(self.pre_tags, "AWS_KINESISVIDEO_PRODUCER_TIMESTAMP")
        return None if v is None else float(v)

    @property
    def raw_server_timestamp(self) -> str | None:
        return self._get(self.pre_tags, "AWS_KINESISVIDEO_SERVER_TIMESTAMP")

    @property
    def raw_producer_timestamp(self) -> str | None:
        return self._get(self.pre_tags, "AWS_KINESISVIDEO_PRODUCER_TIMESTAMP")

    @property
    def continuation_token(self) -> str | None:
        return self._get(self.post_tags, "AWS_KINESISVIDEO_CONTINUATION_TOKEN")

    @property
    def millis_behind_now(self) -> str | None:
        return self._get(self.post_tags, "AWS_KINESISVIDEO_MILLIS_BEHIND_NOW")

    @property
    def user_tags(self) -> list[tuple[str, str]]:
        return [(n, v) for n, v in self.pre_tags if not n.startswith("AWS_KINESISVIDEO")]

    @property
    def frames(self) -> list[bytes]:
        return self.cluster.frames

    @property
    def segment_bytes(self) -> bytes:
        """The bytes from the EBML header to the end of the Segment."""
        start = self.segment.ebml_header.start if self.segment.ebml_header else self.segment.element.start
        return self.segment.element.buf[start : self.segment.element.end]


def getmedia_fragments(buf: bytes, *, strict: bool = True) -> list[Fragment]:
    """Decode a GetMedia-style stream into fragments.

    Each Segment may hold header elements, Tags, a Cluster and trailing Tags.
    With ``strict=False`` a trailing incomplete fragment is dropped.
    """
    out: list[Fragment] = []
    segments = parse_stream(buf, strict=strict)
    for si, seg in enumerate(segments):
        last = si == len(segments) - 1
        pre: list[tuple[str, str]] = []
        current: Fragment | None = None
        for c in seg.children:
            if c.id == TAGS:
                tags = parse_tags(c)
                if current is None:
                    pre.extend(tags)
                else:
                    current.post_tags.extend(tags)
            elif c.id == CLUSTER:
                if current is not None:
                    out.append(current)
                    pre = []
                current = Fragment(pre, [], parse_cluster(c), seg)
        if current is not None:
            if strict or not last:
                out.append(current)
            elif seg.complete and current.post_tags:
                # The tail of a live stream: count the fragment once its trailing
                # Tags (MILLIS_BEHIND_NOW / CONTINUATION_TOKEN) arrived.
                out.append(current)
    return out


# ------------------------------------------------------------------- writing
def encode_id(eid: int) -> bytes:
    n = (eid.bit_length() + 7) // 8
    return eid.to_bytes(n, "big")


def encode_size(size: int, width: int | None = None) -> bytes:
    """Encode a size vint, minimal width unless ``width`` is given."""
    if width is None:
        width = 1
        while size >= (1 << (7 * width)) - 1:
            width += 1
    if size >= (1 << (7 * width)) - 1:
        raise ValueError(f"size {size} does not fit in {width} bytes")
    return ((1 << (7 * width)) | size).to_bytes(width, "big")


UNKNOWN_SIZE_1 = b"\xff"


def element(eid: int, payload: bytes, size_width: int | None = None) -> bytes:
    return encode_id(eid) + encode_size(len(payload), size_width) + payload


def uint_element(eid: int, value: int, width: int | None = None) -> bytes:
    if width is None:
        width = max(1, (value.bit_length() + 7) // 8)
    return element(eid, value.to_bytes(width, "big"))


def str_element(eid: int, value: str) -> bytes:
    return element(eid, value.encode("utf-8"))


def tags_element(pairs: list[tuple[str, str]], size_width: int = 8) -> bytes:
    """A level-1 Tags element with one Tag holding one SimpleTag per pair
    (the layout the producer SDK uses for fragment metadata)."""
    simple = b"".join(
        element(SIMPLE_TAG, str_element(TAG_NAME, n) + str_element(TAG_STRING, v), size_width) for n, v in pairs
    )
    return element(TAGS, element(TAG, simple, size_width), size_width)


def simple_block(track: int, rel_tc: int, keyframe: bool, frame: bytes, size_width: int = 8) -> bytes:
    payload = encode_size(track) + struct.pack(">h", rel_tc) + bytes([0x80 if keyframe else 0x00]) + frame
    return element(SIMPLE_BLOCK, payload, size_width)


def ebml_header() -> bytes:
    # Matches the producer SDK's template (35 bytes of payload).
    payload = (
        uint_element(0x4286, 1)
        + uint_element(0x42F7, 1)
        + uint_element(0x42F2, 4)
        + uint_element(0x42F3, 8)
        + str_element(0x4282, "matroska")
        + uint_element(0x4287, 2)
        + uint_element(0x4285, 2)
    )
    return element(EBML, payload)


@dataclass
class FrameSpec:
    track: int
    abs_ms: int  # absolute time in ms from the start of the clip
    keyframe: bool
    frame: bytes


@dataclass
class FragmentSpec:
    """What one Cluster of a generated body contains (for assertions)."""

    timecode: int  # raw Cluster Timecode written in the body
    frames: list[bytes]
    blocks: list[tuple[int, int, bool, bytes]]  # (track, rel tc, key, frame)
    user_tags: list[tuple[str, str]]
    duration_ms: int  # until the next cluster (or last frame + frame duration)
    data: bytes  # the bytes of this cluster, including preceding user Tags


@dataclass
class KvsMkv:
    header: bytes  # EBML header + Segment start + Info + Tracks
    fragments: list[FragmentSpec]
    trailer: bytes  # END_OF_FRAGMENT Tags (or b"")
    timecode_base: int

    def body(self) -> bytes:
        return self.header + b"".join(f.data for f in self.fragments) + self.trailer

    def parts(self) -> list[bytes]:
        """Header+first cluster, then one part per further cluster, then the trailer
        (the natural unit for paced, live-like sending)."""
        if not self.fragments:
            return [self.header + self.trailer]
        parts = [self.header + self.fragments[0].data]
        parts += [f.data for f in self.fragments[1:]]
        if self.trailer:
            parts.append(self.trailer)
        return parts


def source_frames(src: bytes) -> tuple[Segment, list[FrameSpec], int]:
    """Frames of a matroskamux file with absolute ms times; also the frame duration."""
    segs = parse_stream(src)
    if len(segs) != 1:
        raise EbmlError(f"expected one Segment in the source, got {len(segs)}")
    seg = segs[0]
    scale = seg.timecode_scale()
    frames: list[FrameSpec] = []
    for cel in seg.of(CLUSTER):
        cl = parse_cluster(cel)
        for b in cl.blocks:
            t_ns = (cl.timecode + b.timecode) * scale
            frames.append(FrameSpec(b.track, round(t_ns / 1_000_000), b.keyframe, b.frame))
    if not frames:
        raise EbmlError("source has no frames")
    times = sorted({f.abs_ms for f in frames})
    frame_ms = min((b - a for a, b in zip(times, times[1:])), default=33)
    return seg, frames, frame_ms


def make_cluster(timecode: int, blocks: list[tuple[int, int, bool, bytes]], user_tags=None) -> bytes:
    """A kvssink-style Cluster (unknown size, 8-byte Timecode, Position 0),
    preceded by a level-1 Tags element if ``user_tags`` is given."""
    out = b""
    if user_tags:
        out += tags_element(list(user_tags))
    out += encode_id(CLUSTER) + UNKNOWN_SIZE_1
    out += uint_element(TIMECODE, timecode, 8)
    out += uint_element(POSITION, 0, 1)
    for track, rel, key, frame in blocks:
        out += simple_block(track, rel, key, frame)
    return out


def kvs_header(src_seg: Segment, *, title: str = "Kinesis Video SDK") -> bytes:
    segment_uid = b"\x55" * 16
    info = (
        element(SEGMENT_UID, segment_uid)
        + uint_element(TIMECODE_SCALE, 1_000_000, 8)
        + str_element(TITLE, title)
        + str_element(MUXING_APP, "Kinesis Video SDK 1.1.0 e2e")
        + str_element(WRITING_APP, "Kinesis Video SDK 1.1.0 e2e")
    )
    tracks = src_seg.of(TRACKS)
    if len(tracks) != 1:
        raise EbmlError("source needs exactly one Tracks element")
    tracks_payload = tracks[0].data  # TrackEntry elements as matroskamux wrote them
    return (
        ebml_header()
        + encode_id(SEGMENT)
        + UNKNOWN_SIZE_1
        + element(INFO, info, 2)
        + element(TRACKS, tracks_payload, 4)
    )


def to_kvs_mkv(
    src: bytes,
    *,
    timecode_base: int,
    user_tags: dict[int, list[tuple[str, str]]] | None = None,
    end_of_fragment: bool = True,
) -> KvsMkv:
    """Rewrite a matroskamux file into the MKV the AWS producer SDK sends.

    ``timecode_base`` is added (in ms) to every frame time: pass an absolute
    epoch-ms value for ABSOLUTE mode or a small offset (e.g. 0) for RELATIVE
    mode. A new Cluster starts at every key frame (the source's own cluster
    boundaries are ignored). ``user_tags`` maps a cluster index to the tags
    written in a level-1 Tags element just before that Cluster.
    """
    seg, frames, frame_ms = source_frames(src)
    if not frames[0].keyframe:
        raise EbmlError("source does not start with a key frame")
    groups: list[list[FrameSpec]] = []
    for f in frames:
        if f.keyframe and f.track == frames[0].track or not groups:
            groups.append([])
        groups[-1].append(f)
    user_tags = user_tags or {}
    frags: list[FragmentSpec] = []
    for i, g in enumerate(groups):
        cluster_ms = g[0].abs_ms
        tc = timecode_base + cluster_ms
        blocks = [(f.track, f.abs_ms - cluster_ms, f.keyframe, f.frame) for f in g]
        if i + 1 < len(groups):
            duration = groups[i + 1][0].abs_ms - cluster_ms
        else:
            duration = g[-1].abs_ms - cluster_ms + frame_ms
        tags = user_tags.get(i, [])
        frags.append(
            FragmentSpec(
                timecode=tc,
                frames=[f.frame for f in g],
                blocks=blocks,
                user_tags=list(tags),
                duration_ms=duration,
                data=make_cluster(tc, blocks, tags),
            )
        )
    trailer = tags_element([(END_OF_FRAGMENT, "")]) if end_of_fragment else b""
    return KvsMkv(kvs_header(seg), frags, trailer, timecode_base)


def describe(buf: bytes) -> str:
    """A compact human-readable dump (for debugging failing tests)."""
    lines = []
    for seg in parse_stream(buf, strict=False):
        lines.append(f"Segment @{seg.element.start} size={seg.element.size} complete={seg.complete}")
        for c in seg.children:
            extra = ""
            if c.id == CLUSTER:
                cl = parse_cluster(c)
                extra = f" tc={cl.timecode} blocks={len(cl.blocks)} keys={sum(b.keyframe for b in cl.blocks)}"
            elif c.id == TAGS:
                extra = f" {parse_tags(c)}"
            lines.append(f"  0x{c.id:X} @{c.start} size={c.size}{extra}")
    return "\n".join(lines)
