"""The camera agent end to end: the real ``edge-agent`` binary (GStreamer test source,
x264, MKV fragments, disk spool, SigV4 PutMedia over TLS) against the real
``ingest-server``, checked through ListFragments / GetMedia with boto3, the independent
EBML walker, ffprobe, the agent's spool directory and ``edge-agent status --json``.

Capture is 320x240 at 15 fps with a key frame every second (cheap on 2 cores), so the
default 2 s fragments hold 30 frames each."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import pytest

import media
from agent import FPS, SMALL, Agent, agent_env, check_status_schema, run_cli, spool_file_timestamp_ms
from conftest import HOST, MediaReader, free_port, get_media, list_all_fragments, unique_name

FRAGMENT_S = 2.0  # the agent's default fragment duration
MAX_GAP_S = 3.1  # fragments are cut at the first key frame after 2 s, key frames every 1 s
PANIC = re.compile(r"panicked", re.I)


# ----------------------------------------------------------------- fixtures
@pytest.fixture
def agents(request, tmp_path):
    """Factory of Agent objects; every agent is stopped at the end of the test and its
    stderr tail printed when the test failed."""
    made: list[Agent] = []

    def make(name: str = "agent", spool_dir=None) -> Agent:
        a = Agent(spool_dir or tmp_path / f"spool-{name}", tmp_path, name)
        made.append(a)
        return a

    yield make
    for a in made:
        if a.running:
            a.stop(timeout=10)
    rep = getattr(request.node, "rep_call", None)
    if rep is None or rep.failed:
        for a in made:
            print(f"\n=== {a.name}: {' '.join(a.cmd)} (exit {a.returncode})")
            for i, path in enumerate(a.logs, 1):
                lines = a.stderr(i).splitlines()
                print(f"--- stderr of start {i} ({path}), last 40 of {len(lines)} lines ---")
                print("\n".join(lines[-40:]))


# ------------------------------------------------------------------ helpers
def pts(f: dict) -> float:
    return f["ProducerTimestamp"].timestamp()


def by_producer(frags: list[dict]) -> list[dict]:
    return sorted(frags, key=pts)


def fmt_frags(frags: list[dict], t0: float | None = None) -> str:
    t0 = t0 if t0 is not None else min(map(pts, frags), default=0)
    return ", ".join(f"{f['FragmentNumber'][-6:]}@{pts(f) - t0:+.2f}s" for f in by_producer(frags))


def assert_no_gaps(frags: list[dict], what: str, max_gap: float = MAX_GAP_S):
    ordered = by_producer(frags)
    ts = [pts(f) for f in ordered]
    dups = sorted({t for t in ts if ts.count(t) > 1})
    assert not dups, f"{what}: duplicate producer timestamps {dups}: {fmt_frags(frags)}"
    gaps = [(round(b - a, 3), i) for i, (a, b) in enumerate(zip(ts, ts[1:])) if b - a > max_gap]
    assert not gaps, f"{what}: gaps over {max_gap}s between fragments (gap, index): {gaps}\n{fmt_frags(frags)}"


def assert_no_panic(*agents_: Agent):
    for a in agents_:
        out = a.all_stderr()
        assert not PANIC.search(out), f"{a.name} panicked:\n{out[-3000:]}"


def wait_listed(server, stream: str, pred, timeout: float, what: str) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        frags = list_all_fragments(server, stream)
        if pred(frags):
            return frags
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; {len(frags)} fragments: {fmt_frags(frags)}")
        time.sleep(0.5)


def decode_fragments(server, stream: str, numbers: list[str], tmp_path, name: str) -> tuple[list, dict]:
    """GetMediaForFragmentList -> the EBML walker's fragments and ffprobe's view of them."""
    resp = server.archived().get_media_for_fragment_list(StreamName=stream, Fragments=numbers)
    reader = MediaReader(resp["Payload"]).read(timeout=30)
    assert reader.eof, "GetMediaForFragmentList did not end"
    out = tmp_path / f"{name}.mkv"
    out.write_bytes(b"".join(f.segment_bytes for f in reader.fragments))
    return reader.fragments, media.ffprobe_count_frames(out)


def start_streaming(a: Agent, srv, stream: str, *extra: str) -> Agent:
    return a.start(srv.endpoint, stream, ca=srv.ca_file, args=(*SMALL, *extra), env=agent_env(srv))


# ---------------------------------------------------------------- 1. live upload
@pytest.mark.timeout(120)
def test_live_upload_over_tls(server, agents, stream_name, tmp_path):
    a = start_streaming(agents("live"), server, stream_name)
    a.wait_status(lambda s: s["fragments"]["acked"] >= 1, 25, "the first acknowledged fragment")
    time.sleep(max(0.0, 12 - (time.time() - a.t_start)))

    st = a.status()
    check_status_schema(st)
    elapsed = time.time() - a.t_start
    assert st["stream"] == stream_name, st
    assert st["state"] == "connected", st
    assert st["last_error"] is None, st
    assert st["encoder"], st
    assert st["fragments"]["acked"] >= 3, st
    assert st["fragments"]["dropped"] == 0 and st["fragments"]["errors"] == 0, st
    assert st["frames"]["dropped"] == 0, st
    assert st["frames"]["captured"] >= 0.6 * FPS * (elapsed - 4), (elapsed, st)
    assert st["spool"]["fragments"] <= 2, f"spool should hold at most the fragment in flight: {st}"
    assert st["spool"]["disk_fragments"] == 0, f"buffered mode must not spill while connected: {st}"
    assert st["bitrate_kbps"] > 0, st

    frags = list_all_fragments(server, stream_name)
    t_list = time.time()
    ordered = by_producer(frags)
    assert len(frags) >= 4, f"~12 s of 2 s fragments expected at least 4: {fmt_frags(frags)}"
    assert [f["FragmentNumber"] for f in ordered] == [f["FragmentNumber"] for f in frags], "fragment numbers must follow capture order"
    ts = [pts(f) for f in ordered]
    gaps = [round(b - a_, 3) for a_, b in zip(ts, ts[1:])]
    assert all(1.5 <= g <= 3.0 for g in gaps), f"fragments should start about every {FRAGMENT_S}s: gaps {gaps}"
    # Key frames every second and a 2 s fragment duration: capture-time producer timestamps
    # are 2 s apart to within 100 ms (no drift, no send-time stamping).
    assert all(abs(g - FRAGMENT_S) <= 0.1 for g in gaps), f"producer timestamps should be {FRAGMENT_S}s apart (+-100 ms): {gaps}"
    assert a.t_start - 1 <= ts[0] <= a.t_start + 10, ("producer timestamps are absolute wall clock at capture", a.t_start, ts[0])
    assert ts[-1] <= t_list
    for f in ordered:
        lag = f["ServerTimestamp"].timestamp() - pts(f)
        assert -0.1 < lag < FRAGMENT_S + 1.5, f"server - producer timestamp {lag:.3f}s for {f}"
        assert 1500 <= f["FragmentLengthInMilliseconds"] <= 3000, f

    # Playable: decode a few fragments with ffprobe; each starts with a key frame.
    numbers = [f["FragmentNumber"] for f in ordered[:3]]
    got, info = decode_fragments(server, stream_name, numbers, tmp_path, "live")
    assert [g.fragment_number for g in got] == numbers
    for g, f in zip(got, ordered):
        assert g.cluster.blocks and g.cluster.blocks[0].keyframe, f"fragment {g.fragment_number} must start with a key frame"
        assert g.producer_timestamp == pytest.approx(pts(f), abs=0.002)
        expected_frames = f["FragmentLengthInMilliseconds"] / 1000 * FPS
        assert abs(len(g.cluster.blocks) - expected_frames) <= 2, (len(g.cluster.blocks), f)
    assert info["returncode"] == 0, info["stderr"]
    assert (info.get("codec_name"), info.get("width"), info.get("height")) == ("h264", "320", "240"), info
    assert int(info["nb_read_frames"]) == sum(len(g.cluster.blocks) for g in got) > 0, info

    # SIGTERM: exit 0 after flushing the fragment in progress.
    t_stop = time.time()
    assert a.stop() == 0, a.describe()
    final = wait_listed(server, stream_name, lambda fs: fs and max(map(pts, fs)) >= t_stop - MAX_GAP_S - 0.5, 10, "the flushed last fragment")
    assert_no_gaps(final, "live run")
    res = a.status_raw()
    assert res.returncode != 0 and res.stderr.strip(), f"status with no agent running must fail with a message: {res}"
    assert_no_panic(a)


# -------------------------------------------------------------- 2. server outage
@pytest.mark.timeout(180)
def test_outage_spools_and_delivers_everything(private_server, agents, stream_name):
    srv = private_server()
    a = start_streaming(agents("outage"), srv, stream_name)
    a.wait_status(lambda s: s["fragments"]["acked"] >= 2, 30, "2 acknowledged fragments")
    time.sleep(1)

    t_down = time.time()
    srv.stop()
    samples = []
    while time.time() - t_down < 30:
        time.sleep(2)
        samples.append((time.time() - t_down, a.status()))
    t_up = time.time()
    srv.start()

    def show(samples_):
        return "\n".join(
            f"  {t:5.1f}s {s['state']:<10} spool={s['spool']['fragments']}/{s['spool']['bytes']}B disk={s['spool']['disk_fragments']}/{s['spool']['disk_bytes']}B dropped={s['fragments']['dropped']}"
            for t, s in samples_
        )

    late = [s for t, s in samples if t > 6]
    assert late and all(s["state"] in ("backoff", "connecting") for s in late), f"state while the server is down:\n{show(samples)}"
    assert any(s["last_error"] for s in late), f"last_error should say why uploads fail:\n{show(samples)}"
    spooled = [s["spool"]["fragments"] for s in late]
    assert spooled[-1] >= 10 and spooled[-1] > spooled[0], f"the spool must grow during a 30 s outage:\n{show(samples)}"
    assert max(s["spool"]["disk_fragments"] for s in late) > 0, f"buffered mode spills fragments older than 3 s:\n{show(samples)}"
    assert all(s["fragments"]["dropped"] == 0 for t, s in samples), f"nothing may be dropped with the default spool bound:\n{show(samples)}"

    st = a.wait_status(
        lambda s: s["state"] == "connected" and s["spool"]["fragments"] <= 1 and s["fragments"]["acked"] >= s["fragments"]["captured"] - 1,
        40,
        "the spool to drain after the restart",
    )
    drain_s = time.time() - t_up
    assert drain_s <= 32, f"draining a 30 s outage took {drain_s:.1f}s: {st}"
    assert st["fragments"]["dropped"] == 0 and st["frames"]["dropped"] == 0, st

    frags = wait_listed(srv, stream_name, lambda fs: fs and max(map(pts, fs)) > t_up, 10, "fragments after the restart")
    assert_no_gaps(frags, "whole run across the outage")
    ts = sorted(map(pts, frags))
    assert ts[0] < t_down - 1, "fragments before the outage"
    during = [t for t in ts if t_down <= t <= t_up]
    assert len(during) >= 13, f"~15 fragments captured during the 30 s outage, got {len(during)}: {fmt_frags(frags, t_down)}"
    t_stop = time.time()
    assert a.stop() == 0, a.describe()
    final = wait_listed(srv, stream_name, lambda fs: fs and max(map(pts, fs)) >= t_stop - MAX_GAP_S - 0.5, 10, "the flushed last fragment")
    assert_no_gaps(final, "whole run after stop")
    assert_no_panic(a)


# ------------------------------------------------- 3. kill -9 with a torn spool
@pytest.mark.timeout(150)
def test_kill9_torn_spool_records_discarded(private_server, agents, stream_name, tmp_path):
    srv = private_server()
    a = start_streaming(agents("torn"), srv, stream_name)
    a.wait_status(lambda s: s["fragments"]["acked"] >= 2, 30, "2 acknowledged fragments")
    srv.stop()
    a.wait_status(lambda s: s["spool"]["disk_fragments"] >= 4, 30, "4 fragments spilled to disk")
    a.kill9()
    t_kill = time.time()

    files = a.spool_files()
    assert len(files) >= 4, f"status said >= 4 fragments on disk; spool dir holds {[p.name for p in files]}"
    assert all(re.fullmatch(r"\d{20}", p.stem) for p in files), [p.name for p in files]
    stamps = {p: spool_file_timestamp_ms(p) for p in files}
    exact = all(v is not None and (a.t_start - 5) * 1000 <= v <= t_kill * 1000 for v in stamps.values())

    # A torn newest record (power cut mid-write) and a garbage file with a plausible name.
    torn = files[-1]
    torn_bytes = torn.read_bytes()
    torn.write_bytes(torn_bytes[:-5])
    garbage = torn.with_name(f"{int(torn.stem) + 1:020d}.frag")
    garbage_bytes = os.urandom(3000)
    garbage.write_bytes(garbage_bytes)
    valid = files[:-1]

    srv.start()
    before = list_all_fragments(srv, stream_name)
    before_numbers = {f["FragmentNumber"] for f in before}
    start_streaming(a, srv, stream_name)
    a.wait_status(
        lambda s: s["state"] == "connected" and s["spool"]["fragments"] <= 1 and s["fragments"]["acked"] >= len(valid),
        40,
        "the surviving spool to be delivered",
    )
    time.sleep(1)
    log2 = a.stderr(2)
    assert re.search(r"torn", log2, re.I), f"the discarded records must be logged with the word 'torn':\n{log2[-3000:]}"
    assert a.stop() == 0, a.describe()

    after = list_all_fragments(srv, stream_name)
    assert_no_gaps([f for f in after if pts(f) > t_kill], "the restarted agent's fragments")
    ts_after = [pts(f) for f in after]
    assert len(set(ts_after)) == len(ts_after), f"duplicate producer timestamps: {fmt_frags(after)}"
    pre_kill_new = [f for f in after if pts(f) < t_kill and f["FragmentNumber"] not in before_numbers]
    if exact:
        listed_ms = {round(pts(f) * 1000) for f in after}
        missing = [p.name for p in valid if stamps[p] not in listed_ms]
        assert not missing, f"spooled fragments not delivered after the restart: {missing}\n{fmt_frags(after)}"
        assert stamps[torn] not in listed_ms, f"the torn record ({torn.name}, {stamps[torn]}) was sent"
        expected_new = [p for p in valid if stamps[p] not in {round(pts(f) * 1000) for f in before}]
        assert len(pre_kill_new) == len(expected_new), (
            f"{len(pre_kill_new)} pre-kill fragments arrived after the restart, {len(expected_new)} valid spool records were not on the server yet\n"
            f"spool: {[(p.name, stamps[p]) for p in files]}\nlisted: {fmt_frags(after)}"
        )
    else:
        # The oldest record may be the one in flight when the server stopped (already stored).
        assert len(valid) - 1 <= len(pre_kill_new) <= len(valid), (
            f"{len(pre_kill_new)} pre-kill fragments arrived after the restart for {len(valid)} valid spool records "
            f"(+1 torn, +1 garbage): {fmt_frags(after)}"
        )

    # Spooled fragments are playable: the record kept the session header.
    if pre_kill_new:
        numbers = [f["FragmentNumber"] for f in sorted(pre_kill_new, key=lambda f: int(f["FragmentNumber"]))]
        got, info = decode_fragments(srv, stream_name, numbers, tmp_path, "spooled")
        assert info["returncode"] == 0, info["stderr"]
        assert (info.get("codec_name"), info.get("width"), info.get("height")) == ("h264", "320", "240"), info
        assert int(info["nb_read_frames"]) == sum(len(g.cluster.blocks) for g in got) > 0, info
    for path, content in ((torn, torn_bytes[:-5]), (garbage, garbage_bytes)):
        assert not (path.exists() and path.read_bytes() == content), f"{path.name} was left in the spool after being discarded"
    assert_no_panic(a)


@pytest.mark.timeout(150)
def test_durable_mode_survives_kill9_without_waiting(private_server, agents, stream_name):
    """--spool-mode durable writes every fragment when it is complete: a kill -9 during an
    outage loses at most the fragment being captured (buffered mode would lose the last
    --spill-after seconds too)."""
    srv = private_server()
    a = start_streaming(agents("durable"), srv, stream_name, "--spool-mode", "durable")
    st = a.wait_status(lambda s: s["fragments"]["acked"] >= 2, 30, "2 acknowledged fragments")
    # (A fragment acknowledged before the spool thread's next pass is not written at all.)
    assert st["spool"]["disk_fragments"] <= 2, f"acknowledged fragments leave the disk: {st}"
    srv.stop()
    captured = a.status()["fragments"]["captured"]
    a.wait_status(lambda s: s["fragments"]["captured"] >= captured + 3, 20, "3 fragments captured during the outage")
    # Kill mid-fragment (half a fragment after one completed): its predecessor is on disk.
    captured = a.status()["fragments"]["captured"]
    a.wait_status(lambda s: s["fragments"]["captured"] > captured, 10, "the next fragment", interval=0.1)
    time.sleep(FRAGMENT_S / 2)
    a.kill9()
    t_kill = time.time()

    srv.start()
    start_streaming(a, srv, stream_name, "--spool-mode", "durable")
    a.wait_status(lambda s: s["state"] == "connected" and s["spool"]["fragments"] <= 1 and s["fragments"]["acked"] >= 4, 40, "the spool to be delivered")
    assert a.stop() == 0, a.describe()

    frags = list_all_fragments(srv, stream_name)
    pre = [f for f in frags if pts(f) < t_kill]
    assert_no_gaps(pre, "fragments captured before the kill")
    last = max(map(pts, pre))
    assert last >= t_kill - 2 * FRAGMENT_S - 0.5, (
        f"the last complete fragment before the kill is missing: newest pre-kill fragment started {t_kill - last:.2f}s before the kill\n"
        f"{fmt_frags(frags, t_kill)}"
    )
    assert_no_gaps([f for f in frags if pts(f) > t_kill], "the restarted agent's fragments")
    assert_no_panic(a)


# ------------------------------------------------------------- 4. spool bound
@pytest.mark.timeout(120)
def test_spool_bound_drops_oldest(server, agents, stream_name):
    bound = 300_000  # ~4 fragments of 2 s at 300 kbit/s
    port = free_port()  # nothing listens there: the agent must keep capturing and spooling
    a = agents("bound").start(
        f"https://{HOST}:{port}",
        stream_name,
        ca=server.ca_file,
        env=agent_env(server),
        args=(*SMALL, "--bitrate-kbps", "300", "--spool-max-bytes", str(bound), "--spill-after", "1"),
    )
    a.wait_status(lambda s: s["fragments"]["dropped"] > 0, 60, "fragments dropped at the spool bound")
    time.sleep(max(6.0, 20 - (time.time() - a.t_start)))
    st = a.status()
    elapsed = time.time() - a.t_start
    files = a.spool_files()
    sizes = [p.stat().st_size for p in files]
    biggest = max(sizes, default=0)
    check_status_schema(st)
    assert st["state"] in ("backoff", "connecting"), st
    assert st["last_error"], st
    assert st["fragments"]["dropped"] > 0 and st["fragments"]["acked"] == 0, st
    assert st["spool"]["disk_bytes"] <= bound + biggest, (bound, biggest, st)
    assert st["spool"]["bytes"] <= bound + biggest, (bound, biggest, st)
    assert sum(sizes) <= bound + biggest, f"spool dir holds {sum(sizes)} bytes in {len(files)} files (bound {bound})"
    assert st["spool"]["disk_fragments"] >= 1, st
    kept = st["spool"]["fragments"]
    age = st["spool"]["oldest_age_secs"]
    assert age is not None and age <= min(elapsed / 2, (kept + 2) * FRAGMENT_S + 2), f"the newest fragments are kept (elapsed {elapsed:.1f}s): {st}"
    accounted = st["fragments"]["dropped"] + kept
    assert 0 <= st["fragments"]["captured"] - accounted <= 1, f"captured = dropped + spooled (+1 in progress): {st}"
    assert re.search(r"dropped", a.stderr(), re.I), "dropping fragments must be logged"
    assert a.stop() == 0, a.describe()
    assert_no_panic(a)


# ------------------------------------------------------------------- 5. metadata
@pytest.mark.timeout(150)
def test_metadata_tags(server, agents, stream_name):
    a = start_streaming(agents("meta"), server, stream_name)
    a.wait_status(lambda s: s["fragments"]["captured"] >= 2, 30, "2 captured fragments")

    def ok(res, what):
        assert res.returncode == 0, f"{what} failed ({res.returncode}): {res.stderr}"

    def refused(res, what):
        assert res.returncode != 0, f"{what} must be refused: {res.stdout} {res.stderr}"
        assert res.stderr.strip() and not PANIC.search(res.stderr), f"{what}: refusal needs a message: {res.stderr!r}"

    def wait_captured(n):
        now = a.status()["fragments"]["captured"]
        a.wait_status(lambda s: s["fragments"]["captured"] >= now + n, n * FRAGMENT_S + 10, f"{n} more fragments")

    # Refused before anything else, so they cannot leak onto fragments.
    refused(a.metadata_put("AWS_X", "1"), "name starting with AWS")
    refused(a.metadata_put("x" * 129, "1"), "129-byte name")
    refused(a.metadata_put("", "1"), "empty name")
    refused(a.metadata_put("long", "v" * 257, persistent=True), "257-byte value")
    ok(a.metadata_put("n" * 128, "v" * 256), "128-byte name with a 256-byte value (the limits)")

    ok(a.metadata_put("site", "lab-1", persistent=True), "metadata put --persistent site lab-1")
    ok(a.metadata_put("once", "yes"), "metadata put once yes")
    wait_captured(3)
    ok(a.metadata_remove("site"), "metadata remove site")
    wait_captured(2)

    # Ten tags are allowed on one fragment; the eleventh is refused.
    for i in range(10):
        ok(a.metadata_put(f"k{i}", str(i), persistent=True), f"tag {i + 1} of 10")
    refused(a.metadata_put("k10", "10", persistent=True), "11th persistent tag")
    refused(a.metadata_put("extra", "1"), "11th (nonpersistent) tag")
    # A persistent put with an empty value removes the tag, which frees a slot.
    ok(a.metadata_put("k9", "", persistent=True), "metadata put --persistent k9 '' (removal)")
    ok(a.metadata_put("k11", "11", persistent=True), "a tenth tag again after the removal")
    wait_captured(2)
    # SIGINT stops like SIGTERM: flush, exit 0.
    assert a.stop(sig=signal.SIGINT) == 0, a.describe()

    listed = list_all_fragments(server, stream_name)
    reader = get_media(server, stream_name, {"StartSelectorType": "EARLIEST"}, until_fragments=len(listed), timeout=30)
    frags = reader.fragments
    assert [f.fragment_number for f in frags] == [f["FragmentNumber"] for f in listed]
    tags = [dict(f.user_tags) for f in frags]
    table = "\n".join(f"  {i}: {f.producer_timestamp} {f.user_tags}" for i, f in enumerate(frags))

    assert all(len(f.user_tags) <= 10 for f in frags), table
    for bad in ("AWS_X", "x" * 129, "", "long", "k10", "extra"):
        assert not any(bad in t for t in tags), f"refused tag {bad[:10]!r} reached a fragment:\n{table}"
    assert sum(1 for t in tags if t.get("n" * 128) == "v" * 256) == 1, f"the limit-sized nonpersistent tag goes on exactly one fragment:\n{table}"
    once = [i for i, t in enumerate(tags) if "once" in t]
    assert len(once) == 1 and tags[once[0]]["once"] == "yes", f"nonpersistent tag on exactly one fragment:\n{table}"
    site = [i for i, t in enumerate(tags) if "site" in t]
    assert site and all(tags[i]["site"] == "lab-1" for i in site), table
    assert site == list(range(site[0], site[-1] + 1)) and len(site) >= 2, f"persistent tag on a contiguous run of >= 2 fragments:\n{table}"
    assert site[-1] < len(frags) - 2, f"no site tag after its removal:\n{table}"
    assert site[0] <= once[0] <= site[-1], f"once was put after site: it lands inside the site run:\n{table}"
    final = {f"k{j}": str(j) for j in (0, 1, 2, 3, 4, 5, 6, 7, 8, 11)}
    assert tags[-1] == final and tags[-2] == final, f"the last fragments carry k0..k8 and k11, not k9 (removed by an empty value):\n{table}"
    assert_no_panic(a)


# ---------------------------------------------------------------- 6. bad input
def _fatal(server, tmp_path, *extra, env=None, timeout=30, ca=None, endpoint=None):
    stream = unique_name("fatal")
    cmd = [
        "run",
        "--endpoint",
        endpoint or server.endpoint,
        "--stream",
        stream,
        "--spool-dir",
        str(tmp_path / "spool"),
        "--ca",
        ca or server.ca_file,
        "--create-stream",
        *SMALL,
        *extra,
    ]
    t0 = time.monotonic()
    try:
        res = run_cli(*cmd, env=env or agent_env(server), timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        raise AssertionError(f"edge-agent {' '.join(cmd)} did not exit within {timeout}s:\n{out[-3000:]}") from None
    res.elapsed = time.monotonic() - t0
    assert not PANIC.search(res.stderr + res.stdout), res.stderr
    return res


def _expect(res, code: int, pattern: str, what: str):
    msg = res.stderr + res.stdout
    assert res.returncode == code, f"{what}: expected exit {code}, got {res.returncode} after {res.elapsed:.1f}s:\n{msg[-3000:]}"
    assert re.search(pattern, msg, re.I), f"{what}: message should match /{pattern}/:\n{msg[-3000:]}"


@pytest.mark.timeout(60)
def test_missing_camera_is_fatal(server, tmp_path):
    res = _fatal(server, tmp_path, "--source", "v4l2:/dev/video-does-not-exist", timeout=20)
    _expect(res, 3, r"/dev/video-does-not-exist", "missing camera device")
    assert res.elapsed < 15


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", ["unknown-key", "wrong-secret"])
def test_wrong_credentials_are_fatal(server, tmp_path, case):
    if case == "unknown-key":
        env = agent_env(access_key="AKIAWRONG", secret_key="wrong")
        pattern = r"credential|access key"
    else:
        env = agent_env(access_key=server.credentials().access_key, secret_key="wrong-secret-key")
        pattern = r"credential|secret|signature"
    res = _fatal(server, tmp_path, env=env)
    _expect(res, 3, pattern, f"wrong credentials ({case})")


@pytest.mark.timeout(60)
def test_untrusted_certificate_is_fatal(server, tmp_path):
    key, ca = tmp_path / "other-ca.key", tmp_path / "other-ca.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(ca), "-days", "2", "-subj", "/CN=unrelated test CA"],
        check=True,
        capture_output=True,
    )
    res = _fatal(server, tmp_path, ca=str(ca))
    _expect(res, 3, r"certificate", "server certificate not trusted by --ca")


@pytest.mark.timeout(60)
def test_missing_gstreamer_element_is_fatal(server, tmp_path):
    res = _fatal(server, tmp_path, "--encoder", "nosuchh264enc", timeout=20)
    assert res.returncode in (2, 3), f"exit {res.returncode}:\n{res.stderr[-3000:]}"
    assert "nosuchh264enc" in res.stderr + res.stdout, res.stderr


@pytest.mark.timeout(60)
def test_bad_usage_and_no_agent(server, tmp_path):
    res = run_cli("run", "--endpoint", server.endpoint, "--spool-dir", str(tmp_path / "s"))
    assert res.returncode == 2 and "stream" in res.stderr, res
    res = run_cli("run", "--endpoint", server.endpoint, "--stream", "x", "--fragment-duration", "abc")
    assert res.returncode == 2, res
    res = run_cli("status", "--spool-dir", str(tmp_path / "nobody-here"), "--json")
    assert res.returncode != 0 and res.stderr.strip(), res
    assert re.search(r"running|control|connect|socket", res.stderr, re.I), res.stderr
    assert not PANIC.search(res.stderr)
