"""Crash safety: kill -9 the server while several producers upload, restart it on
the same data directory, and check that every PERSISTED fragment survived
byte-identical and that nothing half-written is served."""

from __future__ import annotations

import threading
import time

import ebml
from conftest import MediaReader, block_keys, create_stream, get_media, list_all_fragments, spec_keys, unique_name, whole_second_ms


def persisted(acks):
    return {a["FragmentTimecode"]: a["FragmentNumber"] for a in acks if a.get("EventType") == "PERSISTED"}


class Producer(threading.Thread):
    """A live-like producer: parts 0.4 s apart, chunks paced inside a part."""

    def __init__(self, server, stream, kvs, start_ms, seed):
        super().__init__(daemon=True)
        self.session = server.session(stream, start_timestamp_ms=start_ms, seed=seed)
        self.kvs = kvs
        self.error = None

    def run(self):
        try:
            self.session.start()
            for i, part in enumerate(self.kvs.parts()):
                if i:
                    time.sleep(0.4)
                if self.session.server_closed:
                    return
                self.session.send_body(part, pace=0.01)
            self.session.wait_ack("PERSISTED", self.kvs.fragments[-1].timecode, 30)
        except Exception as e:  # the server dies under us: expected
            self.error = e


def check_stream_after_restart(srv, stream, kvs, acked):
    by_tc = {f.timecode: f for f in kvs.fragments}
    listed = list_all_fragments(srv, stream)
    listed_numbers = [f["FragmentNumber"] for f in listed]
    missing = set(acked.values()) - set(listed_numbers)
    assert not missing, f"{stream}: PERSISTED fragments lost after kill -9: {sorted(missing)}"
    assert len(set(listed_numbers)) == len(listed_numbers)

    # Every listed fragment reads back complete and byte-identical.
    resp = srv.archived().get_media_for_fragment_list(StreamName=stream, Fragments=listed_numbers)
    reader = MediaReader(resp["Payload"]).read(timeout=20)
    assert reader.eof
    assert [f.fragment_number for f in reader.fragments] == listed_numbers
    for frag in reader.fragments:
        spec = by_tc.get(frag.cluster.timecode)
        assert spec is not None, f"{stream}: fragment {frag.fragment_number} has an unknown timecode"
        assert block_keys(frag.cluster.blocks) == spec_keys(spec), f"{stream}: fragment {frag.fragment_number} is half-written"
    for tc, number in acked.items():
        frag = next(f for f in reader.fragments if f.fragment_number == number)
        assert frag.cluster.timecode == tc

    # GetMedia from the start serves exactly the listed fragments, all intact.
    gm = get_media(srv, stream, {"StartSelectorType": "EARLIEST"}, timeout=25)
    assert gm.eof, "GetMedia should end once the stream is idle"
    assert [f.fragment_number for f in gm.fragments] == listed_numbers
    for frag in gm.fragments:
        assert block_keys(frag.cluster.blocks) == spec_keys(by_tc[frag.cluster.timecode])
    return listed


def test_kill9_mid_upload_keeps_every_persisted_fragment(private_server, clip6):
    srv = private_server()
    kvs_list, producers, streams = [], [], []
    for i in range(3):
        name = unique_name(f"crash{i}")
        create_stream(srv, name)
        start = whole_second_ms(offset_s=100 * (i + 1))
        kvs = ebml.to_kvs_mkv(clip6, timecode_base=start, user_tags={1: [("producer", str(i))]})
        streams.append(name)
        kvs_list.append(kvs)
        producers.append(Producer(srv, name, kvs, start, seed=i))
    for p in producers:
        p.start()

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if all(len(persisted(p.session.result().acks)) >= 2 for p in producers):
            break
        time.sleep(0.005)  # kill as close as possible to the latest PERSISTED ack
    else:
        raise AssertionError(f"producers did not get 2 PERSISTED acks each: {[p.session.result().acks for p in producers]}\n{srv.log_tail()}")
    still_sending = [len(persisted(p.session.result().acks)) < len(p.kvs.fragments) for p in producers]
    srv.kill9()
    assert any(still_sending), "the kill must happen mid-upload"
    for p in producers:
        p.join(10)
        p.session.close()
    acked = [persisted(p.session.result().acks) for p in producers]

    srv.start()
    for name, kvs, a in zip(streams, kvs_list, acked):
        check_stream_after_restart(srv, name, kvs, a)

    # Producers recover: reconnect and re-send from their last PERSISTED fragment.
    for name, kvs, a in zip(streams, kvs_list, acked):
        tcs = [f.timecode for f in kvs.fragments]
        last = max(tcs.index(tc) for tc in a)
        parts = [kvs.header + kvs.fragments[last].data] + [f.data for f in kvs.fragments[last + 1 :]] + [kvs.trailer]
        res = srv.put_media(name, parts, start_timestamp_ms=whole_second_ms(), wait_persisted_timecode=tcs[-1])
        assert res.status == 200 and not [x for x in res.acks if x["EventType"] == "ERROR"], res.acks
        p2 = persisted(res.acks)
        assert p2[tcs[last]] == a[tcs[last]], "re-sent fragment keeps its number across the crash"
        assert all(int(p2[tc]) > int(max(a.values(), key=int)) for tc in tcs[last + 1 :])
        listed = list_all_fragments(srv, name)
        assert len(listed) == len(tcs), f"{name}: {len(listed)} fragments stored for {len(tcs)} sent"


def test_graceful_restart_preserves_state(private_server, clip4):
    srv = private_server()
    creds = srv.credentials()
    ca = open(srv.ca_file).read()
    name = unique_name("restart")
    info = create_stream(srv, name)
    srv.kv().tag_stream(StreamName=name, Tags={"k": "v"})
    start = whole_second_ms()
    kvs = ebml.to_kvs_mkv(clip4, timecode_base=start)
    res = srv.put_media(name, kvs.parts(), start_timestamp_ms=start, wait_persisted_timecode=kvs.fragments[-1].timecode)
    assert len(persisted(res.acks)) == 4
    before = list_all_fragments(srv, name)

    srv.restart()
    assert (srv.credentials().access_key, srv.credentials().secret_key) == (creds.access_key, creds.secret_key)
    assert open(srv.ca_file).read() == ca, "the CA must survive restarts (clients pin it)"
    assert srv.kv().describe_stream(StreamName=name)["StreamInfo"] == info
    assert srv.kv().list_tags_for_stream(StreamName=name)["Tags"] == {"k": "v"}
    assert list_all_fragments(srv, name) == before
    reader = get_media(srv, name, {"StartSelectorType": "EARLIEST"}, until_fragments=4)
    for frag, spec in zip(reader.fragments, kvs.fragments):
        assert block_keys(frag.cluster.blocks) == spec_keys(spec)
