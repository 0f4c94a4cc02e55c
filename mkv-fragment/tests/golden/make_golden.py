#!/usr/bin/env python3
"""Builds the expected JSON for the GetMedia golden tests from mkvinfo (MKVToolNix) output.

Why: the golden tests must not compare our parser against itself. Everything in the JSON comes
from `mkvinfo`, an independent Matroska implementation:

1. `mkvinfo -a -P FILE` on the whole capture. mkvinfo does not understand several EBML headers in
   one stream: at each new GetMedia chunk it reports "Error in the Matroska file structure at
   position N. Resyncing". Those positions (plus 0) split the capture into chunks; the script
   checks that each one starts with the EBML header id 1A 45 DF A3.
2. Each chunk is written to a temporary file and dumped with `mkvinfo -a -z -P -c CHUNK`
   (all elements, sizes, decimal positions, Adler-32 of every frame). The script reads the
   element tree from the indentation and takes: the tags (Name/String pairs of each Simple),
   the DocType, TimecodeScale, tracks, the Cluster timestamp, every block with its track,
   timestamp, key flag, frame size and Adler-32, and element positions/sizes.

The only bytes the script reads itself are the id+size header length of an unknown-size
Cluster (mkvinfo prints "size is unknown"), needed to turn positions into the body length.

Usage: python3 make_golden.py FIXTURE_DIR OUT_DIR   (writes OUT_DIR/<fixture>.json)
Regenerate with: python3 mkv-fragment/tests/golden/make_golden.py ../shared/fixtures/kvs-getmedia \
    mkv-fragment/tests/golden
"""

import json
import os
import re
import subprocess
import sys
import tempfile
from decimal import Decimal, ROUND_CEILING

AWS = {
    "AWS_KINESISVIDEO_FRAGMENT_NUMBER": "fragment_number",
    "AWS_KINESISVIDEO_SERVER_TIMESTAMP": "server_timestamp_ms",
    "AWS_KINESISVIDEO_PRODUCER_TIMESTAMP": "producer_timestamp_ms",
    "AWS_KINESISVIDEO_MILLIS_BEHIND_NOW": "millis_behind_now",
    "AWS_KINESISVIDEO_CONTINUATION_TOKEN": "continuation_token",
    "AWS_KINESISVIDEO_ERROR_CODE": "error_code",
    "AWS_KINESISVIDEO_ERROR_ID": "error_id",
}

LINE = re.compile(r"^(?P<indent>\|?\s*)\+ (?P<body>.*)$")
TAIL = re.compile(r" at (?P<pos>\d+)(?: size (?P<size>\d+)(?: data size (?P<dsize>\d+))?| size is unknown)?$")
TS = re.compile(r"(\d+):(\d+):(\d+)\.(\d{9})")


def mkvinfo(args):
    out = subprocess.run(["mkvinfo", *args], capture_output=True, text=True, check=False)
    return out.stdout + out.stderr


def chunk_offsets(path):
    data = open(path, "rb").read()
    offsets = [0]
    for m in re.finditer(r"Error in the Matroska file structure at position (\d+)", mkvinfo(["-a", "-P", path])):
        offsets.append(int(m.group(1)))
    for off in offsets:
        assert data[off:off + 4] == b"\x1a\x45\xdf\xa3", f"{path}: no EBML header at {off}"
    return data, sorted(set(offsets))


def parse_tree(text):
    """Returns a list of (level, label, value, pos, size, data_size) from mkvinfo output."""
    nodes = []
    for raw in text.split("\n"):
        m = LINE.match(raw)
        if not m:
            continue
        level = len(m.group("indent"))
        body = m.group("body")
        t = TAIL.search(body)
        pos = size = dsize = None
        if t:
            pos = int(t.group("pos"))
            size = int(t.group("size")) if t.group("size") else None
            dsize = int(t.group("dsize")) if t.group("dsize") else None
            body = body[: t.start()]
        label, _, value = body.partition(": ")
        nodes.append((level, label, value, pos, size, dsize))
    return nodes


def ns(ts):
    h, m, s, frac = TS.search(ts).groups()
    return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1_000_000_000 + int(frac)


def ms(seconds):
    # Same rule as the AWS Java parser: ceil(seconds * 1000).
    return int((Decimal(seconds) * 1000).to_integral_value(rounding=ROUND_CEILING))


def vint_len(first):
    for n in range(8):
        if first & (0x80 >> n):
            return n + 1
    raise ValueError("bad vint")


def describe_chunk(chunk):
    with tempfile.NamedTemporaryFile(suffix=".mkv") as tmp:
        tmp.write(chunk)
        tmp.flush()
        nodes = parse_tree(mkvinfo(["-a", "-z", "-P", "-c", tmp.name]))
    out = {"doc_type": None}
    for key in AWS.values():
        out[key] = None
    out["user_tags"] = []
    scale = 1_000_000
    tracks = []
    level1 = [n for n in nodes if n[0] == 1]  # "|+ ..." lines: children of the Segment
    segment = next(n for n in nodes if n[0] == 0 and n[1].startswith("Segment"))
    segment_data = segment[3] + 4 + vint_len(chunk[segment[3] + 4])
    cluster = None
    current_simple = None
    in_tracks = False
    for i, (level, label, value, pos, size, dsize) in enumerate(nodes):
        if level == 1:
            in_tracks = label == "Tracks"
        if label == "Document type":
            out["doc_type"] = value
        elif label == "Timestamp scale":
            scale = int(value)
        elif label == "Track" and level == 2:
            tracks.append({})
        elif in_tracks and tracks and level >= 3 and label in ("Track number", "Track UID", "Track type", "Codec ID",
                                                  "Pixel width", "Pixel height", "Name",
                                                  "Codec's private data"):
            t = tracks[-1]
            if label == "Track number":
                t["number"] = int(value.split()[0])
            elif label == "Track UID":
                t["uid"] = int(value)
            elif label == "Track type":
                t["track_type"] = {"video": 1, "audio": 2, "subtitles": 17}[value]
            elif label == "Codec ID":
                t["codec_id"] = value
            elif label == "Pixel width":
                t["pixel_width"] = int(value)
            elif label == "Pixel height":
                t["pixel_height"] = int(value)
            elif label == "Name":
                t["name"] = value
            elif label == "Codec's private data":
                t["codec_private_len"] = dsize
        elif label == "Simple":
            current_simple = {"name": None, "value": ""}
            # Name/String follow as children of this Simple.
            for child in nodes[i + 1:]:
                if child[0] <= level:
                    break
                if child[0] == level + 1 and child[1] == "Name":
                    current_simple["name"] = child[2]
                elif child[0] == level + 1 and child[1] == "String":
                    current_simple["value"] = child[2]
            name, val = current_simple["name"], current_simple["value"]
            key = AWS.get(name)
            if key in ("server_timestamp_ms", "producer_timestamp_ms"):
                out[key] = ms(val)
            elif key in ("millis_behind_now", "error_id"):
                out[key] = int(val)
            elif key:
                out[key] = val
            else:
                out["user_tags"].append([name, val])
        elif label == "Cluster" and level == 1:
            cluster = {"pos": pos, "size": size, "dsize": dsize, "blocks": []}
        elif label == "Cluster timestamp":
            cluster["timecode"] = ns(value) // scale
        elif label.startswith("Simple block") and cluster is not None:
            key = label.startswith("Simple block: key") or value.startswith("key")
            cluster["blocks"].append({"key": key, "text": label + ": " + value, "frames": []})
        elif label.startswith("Block group") and cluster is not None:
            cluster["blocks"].append({"key": True, "text": "", "frames": [], "group": True})
        elif label.startswith("Block") and not label.startswith("Block group") and cluster is not None:
            cluster["blocks"][-1]["text"] = label + ": " + value
        elif label == "Reference block" and cluster is not None:
            cluster["blocks"][-1]["key"] = False
        elif label.startswith("Frame") and cluster is not None:
            adler = re.search(r"adler: 0x([0-9a-f]+)", label + ": " + value).group(1)
            cluster["blocks"][-1]["frames"].append({"size": size, "adler32": int(adler, 16)})

    # Header bytes: every level-1 element before the first Cluster/Cues, except Tags. Positions
    # of consecutive level-1 elements give the extents (this includes elements mkvinfo hides,
    # such as CRC-32).
    first_stop = next((n[3] for n in level1 if n[1] in ("Cluster", "Cues")), len(chunk))
    tags_before = sum(n[4] for n in level1 if n[1] == "Tags" and n[3] < first_stop)
    header_raw_len = first_stop - segment_data - tags_before
    out["header"] = None
    if header_raw_len > 0 or tracks:
        out["header"] = {"raw_len": header_raw_len, "timecode_scale_ns": scale, "tracks": tracks}
    out["cluster"] = None
    if cluster is not None:
        if cluster["dsize"] is not None:
            body_len = cluster["dsize"]
        else:
            header_len = 4 + vint_len(chunk[cluster["pos"] + 4])
            after = [n[3] for n in level1 if n[3] > cluster["pos"]]
            end = after[0] if after else len(chunk)
            body_len = end - cluster["pos"] - header_len
        blocks = []
        for b in cluster["blocks"]:
            m = re.search(r"track number (\d+).*timestamp (\S+)", b["text"])
            assert len(b["frames"]) == 1, "laced blocks are not expected in the fixtures"
            blocks.append({
                "track": int(m.group(1)),
                "timecode": ns(m.group(2)) // scale,
                "keyframe": b["key"],
                "size": b["frames"][0]["size"],
                "adler32": b["frames"][0]["adler32"],
            })
        out["cluster"] = {
            "timecode": cluster["timecode"],
            "body_len": body_len,
            "block_count": len(blocks),
            "keyframe_count": sum(1 for b in blocks if b["keyframe"]),
            "blocks": blocks,
        }
    return out


def main():
    src, dst = sys.argv[1], sys.argv[2]
    version = mkvinfo(["--version"]).strip()
    for name in sorted(os.listdir(src)):
        if not name.endswith(".mkv"):
            continue
        data, offsets = chunk_offsets(os.path.join(src, name))
        bounds = offsets + [len(data)]
        chunks = []
        for start, end in zip(bounds, bounds[1:]):
            c = describe_chunk(data[start:end])
            c["offset"] = start
            chunks.append(c)
        doc = {
            "_how": "generated by make_golden.py from `" + version + "` output; do not edit by hand",
            "fixture": name,
            "size": len(data),
            "chunks": chunks,
        }
        with open(os.path.join(dst, name + ".json"), "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        print(f"{name}: {len(chunks)} chunks")


if __name__ == "__main__":
    main()
