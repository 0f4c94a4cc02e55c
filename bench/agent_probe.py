#!/usr/bin/env python3
"""Measurement helper for bench/agent.sh (the shell script runs the processes, this
samples them and does the arithmetic). Subcommands, each writing one JSON file:

  proc       CPU (utime+stime from /proc/PID/stat) over a steady window and peak RSS
             (VmHWM from /proc/PID/status) of one process
  status     one `edge-agent status --json` snapshot, stamped with the wall clock
  drain      poll `edge-agent status --json` from a server restart until the spool is back
             to <= 1 fragment; records the drain time and the drop counters
  fragments  ListFragments of a stream (boto3 against ingest-server): order, gaps,
             duplicates, and the media bytes of fragments captured in a time window
  pipeline   the GStreamer pipeline the agent logged, as a gst-launch-1.0 description
             ending in fakesink (empty output when the log has none)
  summary    the Markdown summary of one run directory (PASS/FAIL against the targets)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def write_json(path: str, obj):
    Path(path).write_text(json.dumps(obj, indent=2, default=str) + "\n")


# ---------------------------------------------------------------------- proc
def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of the line)


def status_kib(pid: int, key: str) -> int | None:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def cmd_proc(a):
    """Waits --warmup s, then measures CPU over the following (duration - warmup) s;
    peak RSS is the process's VmHWM at the end (whole lifetime)."""
    pid = a.pid
    out = {"pid": pid, "label": a.label, "warmup_s": a.warmup, "duration_s": a.duration}
    try:
        time.sleep(a.warmup)
        t0, c0 = time.monotonic(), cpu_ticks(pid)
        rss = []
        end = t0 + max(1.0, a.duration - a.warmup)
        while time.monotonic() < end:
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
            rss.append(status_kib(pid, "VmRSS"))
        t1, c1 = time.monotonic(), cpu_ticks(pid)
        out.update(
            window_s=round(t1 - t0, 3),
            cpu_s=(c1 - c0) / CLK_TCK,
            cpu_pct_one_core=round(100.0 * (c1 - c0) / CLK_TCK / (t1 - t0), 2),
            vmhwm_kib=status_kib(pid, "VmHWM"),
            vmrss_kib_last=rss[-1] if rss else None,
            vmrss_kib_max=max((r for r in rss if r), default=None),
            alive=True,
        )
    except (FileNotFoundError, ProcessLookupError) as e:
        out.update(alive=False, error=f"process {pid} went away during the measurement: {e}")
    write_json(a.out, out)
    print(json.dumps(out))
    return 0 if out.get("alive") else 1


# -------------------------------------------------------------------- status
def agent_status(agent: str, spool: str, timeout: float = 10) -> dict | None:
    try:
        res = subprocess.run([agent, "status", "--spool-dir", spool, "--json"], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if res.returncode != 0:
        return None
    try:
        st = json.loads(res.stdout)
    except ValueError:
        return None
    st["_wall"] = time.time()
    return st


def cmd_status(a):
    deadline = time.monotonic() + a.wait
    while True:
        st = agent_status(a.agent, a.spool_dir)
        if st is not None or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if st is None:
        print(f"edge-agent status failed for {a.spool_dir}", file=sys.stderr)
        return 1
    write_json(a.out, st)
    print(json.dumps(st))
    return 0


def cmd_drain(a):
    """From --t0 (the server restart, epoch s) poll until spool.fragments <= 1 (and the
    agent reports connected)."""
    samples = []
    t_end = None
    deadline = time.time() + a.timeout
    while time.time() < deadline:
        st = agent_status(a.agent, a.spool_dir)
        if st is not None:
            samples.append(
                {
                    "t": round(st["_wall"] - a.t0, 3),
                    "state": st["state"],
                    "spool_fragments": st["spool"]["fragments"],
                    "spool_bytes": st["spool"]["bytes"],
                    "disk_fragments": st["spool"]["disk_fragments"],
                    "frames_dropped": st["frames"]["dropped"],
                    "fragments_dropped": st["fragments"]["dropped"],
                    "acked": st["fragments"]["acked"],
                    "captured": st["fragments"]["captured"],
                    "disk_write_bytes": st["disk_write_bytes"],
                }
            )
            if st["spool"]["fragments"] <= 1 and st["state"] == "connected":
                t_end = st["_wall"]
                break
        time.sleep(a.interval)
    acked0 = samples[0]["acked"] if samples else None
    first_ack = next((x["t"] for x in samples if x["acked"] > acked0), None) if samples else None
    out = {
        "t0": a.t0,
        "drained": t_end is not None,
        "drain_s": round(t_end - a.t0, 3) if t_end else None,
        # restart -> the first new acknowledgement: reconnection (backoff) delay, not transfer
        "first_ack_s": first_ack,
        "max_spool_fragments": max((s["spool_fragments"] for s in samples), default=None),
        "frames_dropped_start": samples[0]["frames_dropped"] if samples else None,
        "frames_dropped_end": samples[-1]["frames_dropped"] if samples else None,
        "fragments_dropped_start": samples[0]["fragments_dropped"] if samples else None,
        "fragments_dropped_end": samples[-1]["fragments_dropped"] if samples else None,
        "samples": samples,
    }
    write_json(a.out, out)
    print(json.dumps({k: v for k, v in out.items() if k != "samples"}))
    return 0 if out["drained"] else 1


# ----------------------------------------------------------------- fragments
def cmd_fragments(a):
    import configparser

    import boto3
    from botocore.config import Config

    cp = configparser.ConfigParser()
    cp.read(a.credentials)
    sec = cp["default"]
    kw = dict(
        region_name="us-west-2",
        aws_access_key_id=sec["aws_access_key_id"].strip(),
        aws_secret_access_key=sec["aws_secret_access_key"].strip(),
        verify=a.ca,
        config=Config(retries={"total_max_attempts": 3}, read_timeout=60),
    )
    kv = boto3.session.Session().client("kinesisvideo", endpoint_url=a.endpoint, **kw)
    data_ep = kv.get_data_endpoint(StreamName=a.stream, APIName="LIST_FRAGMENTS")["DataEndpoint"]
    arch = boto3.session.Session().client("kinesis-video-archived-media", endpoint_url=data_ep, **kw)
    frags = []
    for page in arch.get_paginator("list_fragments").paginate(StreamName=a.stream, PaginationConfig={"PageSize": 1000}):
        frags.extend(page["Fragments"])
    frags.sort(key=lambda f: int(f["FragmentNumber"]))
    pts = [f["ProducerTimestamp"].timestamp() for f in frags]
    increasing = all(b > x for x, b in zip(pts, pts[1:]))
    ordered = sorted(pts)
    gaps = [b - x for x, b in zip(ordered, ordered[1:])]
    out = {
        "stream": a.stream,
        "count": len(frags),
        "bytes": sum(f["FragmentSizeInBytes"] for f in frags),
        "first_producer_ts": ordered[0] if ordered else None,
        "last_producer_ts": ordered[-1] if ordered else None,
        "strictly_increasing_by_number": increasing,
        "duplicates": len(pts) - len(set(pts)),
        "max_gap_s": round(max(gaps), 3) if gaps else None,
        "gaps_over_3s": [[round(ordered[i] - ordered[0], 3), round(g, 3)] for i, g in enumerate(gaps) if g > 3.0],
        # per fragment (by number): producer ts offset from the first, gap to the previous,
        # size, duration, server - producer timestamp
        "fragments": [
            [
                f["FragmentNumber"],
                round(t - (ordered[0] if ordered else 0), 3),
                round(t - pts[i - 1], 3) if i else None,
                f["FragmentSizeInBytes"],
                f["FragmentLengthInMilliseconds"],
                round(f["ServerTimestamp"].timestamp() - t, 3),
            ]
            for i, (f, t) in enumerate(zip(frags, pts))
        ],
    }
    for spec in a.window or []:
        name, lo, hi = spec.split(":")
        lo, hi = float(lo), float(hi)
        sel = [f for f, t in zip(frags, pts) if lo <= t < hi]
        out[f"window_{name}"] = {"from": lo, "to": hi, "count": len(sel), "bytes": sum(f["FragmentSizeInBytes"] for f in sel)}
    write_json(a.out, out)
    print(json.dumps({k: v for k, v in out.items() if k != "fragments"}))
    return 0


# ------------------------------------------------------------------ pipeline
def cmd_pipeline(a):
    """Finds the first log line that holds a pipeline description (``src ! ... ! appsink``)
    and prints it with the appsink replaced by fakesink."""
    import re

    ansi = re.compile(r"\x1b\[[0-9;]*m")
    for line in Path(a.log).read_text(errors="replace").splitlines():
        line = ansi.sub("", line)
        # The agent logs `capture pipeline pipeline=<description>` (text) as its last field.
        logged = re.search(r"capture pipeline pipeline=(.*)$", line)
        if logged:
            desc = re.sub(r"!\s*appsink\b.*$", "! fakesink", logged.group(1).strip())
            Path(a.raw_out).write_text(line.strip() + "\n") if a.raw_out else None
            print(desc)
            return 0
        m = re.search(r"((?:videotestsrc|v4l2src|filesrc|rtspsrc|uridecodebin)\b[^\"]*?!\s*[^\"]*)", line)
        if not m or "!" not in m.group(1):
            continue
        desc = m.group(1).strip().rstrip(",}")
        desc = re.sub(r"\\(.)", r"\1", desc)
        desc = re.sub(r"!\s*appsink\b.*$", "! fakesink", desc)
        if "fakesink" not in desc:
            desc += " ! fakesink"
        Path(a.raw_out).write_text(line.strip() + "\n") if a.raw_out else None
        print(desc)
        return 0
    return 0


# ------------------------------------------------------------------- summary
def load(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def verdict(ok) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def fmt(v, nd=2):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def cmd_summary(a):
    d = Path(a.dir)
    lines = ["# edge-agent benchmark", "", f"Command: `{a.command}`", "", "```"]
    meta = d / "meta.txt"
    if meta.exists():
        lines += meta.read_text().rstrip().splitlines()
    lines += ["```", ""]
    targets = []

    # ---- overhead
    rounds = []
    for r in range(1, 100):
        ag, pl = load(d / f"overhead-agent-{r}.json"), load(d / f"overhead-pipeline-{r}.json")
        if ag is None and pl is None:
            break
        rounds.append((r, ag or {}, pl or {}))
    if rounds:
        lines += ["## Overhead: agent vs the bare GStreamer pipeline (same source and encoder settings)", ""]
        pipeline = (d / "baseline-pipeline.txt").read_text().strip() if (d / "baseline-pipeline.txt").exists() else "?"
        agent_pl = (d / "agent-pipeline.txt").read_text().strip() if (d / "agent-pipeline.txt").exists() else ""
        lines += [f"Baseline: `gst-launch-1.0 {pipeline}`", ""]
        if agent_pl:
            lines += [f"Agent's own pipeline log line: `{agent_pl}`", ""]
        lines += [
            "| round | agent CPU % of one core | pipeline CPU % | CPU delta (pp) | agent VmHWM MiB | pipeline VmHWM MiB | RSS delta MiB |",
            "|---|---|---|---|---|---|---|",
        ]
        cpu_d, rss_d = [], []
        for r, ag, pl in rounds:
            ca, cp_ = ag.get("cpu_pct_one_core"), pl.get("cpu_pct_one_core")
            ra = ag.get("vmhwm_kib") / 1024 if ag.get("vmhwm_kib") else None
            rp = pl.get("vmhwm_kib") / 1024 if pl.get("vmhwm_kib") else None
            dc = ca - cp_ if ca is not None and cp_ is not None else None
            dr = ra - rp if ra is not None and rp is not None else None
            if dc is not None:
                cpu_d.append(dc)
            if dr is not None:
                rss_d.append(dr)
            lines.append(f"| {r} | {fmt(ca)} | {fmt(cp_)} | {fmt(dc)} | {fmt(ra, 1)} | {fmt(rp, 1)} | {fmt(dr, 1)} |")
        mc = statistics.median(cpu_d) if cpu_d else None
        mr = statistics.median(rss_d) if rss_d else None
        lines += ["", f"Median over {len(rounds)} round(s): CPU delta {fmt(mc)} percentage points of one core, RSS delta {fmt(mr, 1)} MiB.", ""]
        targets.append(("agent RSS overhead < 20 MiB", f"{fmt(mr, 1)} MiB", verdict(None if mr is None else mr < 20)))
        targets.append(("agent CPU overhead < 5 % of one core", f"{fmt(mc)} pp", verdict(None if mc is None else mc < 5)))

    # ---- recovery
    drain = load(d / "recovery-drain.json")
    frag = load(d / "recovery-fragments.json")
    st = {k: load(d / f"recovery-status-{k}.json") for k in ("online-start", "online-end", "outage-start", "outage-end", "end")}
    if drain or frag:
        outage = float(a.outage)
        lines += ["## Recovery after a server outage", ""]
        ds = drain.get("drain_s") if drain else None
        speed = outage / ds if ds else None
        fd0, fd1 = (drain or {}).get("frames_dropped_start"), (drain or {}).get("frames_dropped_end")
        gd0, gd1 = (drain or {}).get("fragments_dropped_start"), (drain or {}).get("fragments_dropped_end")
        frames_ok = None if fd0 is None else (fd0 == fd1 == 0 and gd0 == gd1 == 0)

        def dw(k0, k1):
            if st.get(k0) and st.get(k1):
                return st[k1]["disk_write_bytes"] - st[k0]["disk_write_bytes"]
            return None

        dw_outage, dw_online = dw("outage-start", "outage-end"), dw("online-start", "online-end")
        media_outage = (frag or {}).get("window_outage", {}).get("bytes")
        media_online = (frag or {}).get("window_online", {}).get("bytes")
        ratio = dw_outage / media_outage if dw_outage is not None and media_outage else None
        online_s = None
        if st.get("online-start") and st.get("online-end"):
            online_s = st["online-end"]["_wall"] - st["online-start"]["_wall"]
        lines += [
            "| measure | value |",
            "|---|---|",
            f"| outage | {outage:.0f} s |",
            f"| spool at the end of the outage | {fmt((st.get('outage-end') or {}).get('spool', {}).get('fragments'))} fragments, "
            f"{fmt((st.get('outage-end') or {}).get('spool', {}).get('bytes'))} bytes ({fmt((st.get('outage-end') or {}).get('spool', {}).get('disk_fragments'))} on disk) |",
            f"| drain time (restart -> spool <= 1 fragment, connected) | {fmt(ds)} s |",
            f"| of which: restart -> first new acknowledgement (reconnect/backoff) | {fmt((drain or {}).get('first_ack_s'))} s |",
            f"| drain speed (outage s / drain s) | {fmt(speed, 1)}x |",
            f"| frames.dropped / fragments.dropped during the drain | {fmt(fd0)} -> {fmt(fd1)} / {fmt(gd0)} -> {fmt(gd1)} |",
            f"| fragments in the stream | {fmt((frag or {}).get('count'))} |",
            f"| producer timestamps strictly increasing (by fragment number) | {fmt((frag or {}).get('strictly_increasing_by_number'))} |",
            f"| duplicate producer timestamps | {fmt((frag or {}).get('duplicates'))} |",
            f"| largest gap between producer timestamps | {fmt((frag or {}).get('max_gap_s'))} s |",
            f"| mean fragment duration (FragmentLengthInMilliseconds) | {fmt(statistics.mean(x[4] for x in frag['fragments']) if frag and frag.get('fragments') else None, 0)} ms |",
            f"| media captured during the outage (ListFragments sizes) | {fmt(media_outage)} bytes in {fmt((frag or {}).get('window_outage', {}).get('count'))} fragments |",
            f"| disk_write_bytes during the outage | {fmt(dw_outage)} bytes |",
            f"| disk writes / media during the outage | {fmt(ratio, 3)} |",
            f"| disk_write_bytes during {fmt(online_s, 0)} s online | {fmt(dw_online)} bytes (media sent in that window: {fmt(media_online)} bytes) |",
            "",
        ]
        if frag and frag.get("gaps_over_3s"):
            lines += [f"Gaps over 3 s (offset from the first fragment, gap): {frag['gaps_over_3s']}", ""]
        targets.append(("drain speed >= 4x real time", f"{fmt(speed, 1)}x", verdict(None if speed is None else speed >= 4)))
        targets.append(("no frames/fragments dropped during the drain", f"{fmt(fd1)} / {fmt(gd1)}", verdict(frames_ok)))
        ok_ts = None if not frag else (frag["strictly_increasing_by_number"] and frag["duplicates"] == 0 and (frag["max_gap_s"] or 0) <= 3.0)
        targets.append(("producer timestamps strictly increasing, no gap > 3 s", f"max gap {fmt((frag or {}).get('max_gap_s'))} s", verdict(ok_ts)))
        targets.append(("disk writes <= 1.05 x media during the outage", fmt(ratio, 3), verdict(None if ratio is None else ratio <= 1.05)))
        limit = max(0.01 * (media_online or 0), 64 * 1024)
        targets.append(
            ("disk writes while online near zero (<= max(1 % of media, 64 KiB))", f"{fmt(dw_online)} bytes", verdict(None if dw_online is None else dw_online <= limit))
        )

    if targets:
        lines += ["## Targets", "", "| target | measured | result |", "|---|---|---|"]
        lines += [f"| {t} | {m} | {v} |" for t, m, v in targets]
        lines.append("")
    text = "\n".join(lines)
    Path(a.out).write_text(text)
    print(text)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("proc")
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--label", default="")
    s.add_argument("--warmup", type=float, default=5)
    s.add_argument("--duration", type=float, required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_proc)
    s = sub.add_parser("status")
    s.add_argument("--agent", required=True)
    s.add_argument("--spool-dir", required=True)
    s.add_argument("--wait", type=float, default=0)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_status)
    s = sub.add_parser("drain")
    s.add_argument("--agent", required=True)
    s.add_argument("--spool-dir", required=True)
    s.add_argument("--t0", type=float, required=True)
    s.add_argument("--timeout", type=float, default=300)
    s.add_argument("--interval", type=float, default=0.2)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_drain)
    s = sub.add_parser("fragments")
    s.add_argument("--endpoint", required=True)
    s.add_argument("--ca", required=True)
    s.add_argument("--credentials", required=True)
    s.add_argument("--stream", required=True)
    s.add_argument("--window", action="append", help="NAME:FROM:TO (epoch seconds, producer timestamps)")
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_fragments)
    s = sub.add_parser("pipeline")
    s.add_argument("--log", required=True)
    s.add_argument("--raw-out")
    s.set_defaults(fn=cmd_pipeline)
    s = sub.add_parser("summary")
    s.add_argument("--dir", required=True)
    s.add_argument("--outage", default="60")
    s.add_argument("--command", default="bench/agent.sh")
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_summary)
    a = p.parse_args()
    return a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
