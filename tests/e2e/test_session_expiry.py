"""An expired playback session token is refused (403 NotAuthorizedException, nothing served).

AWS's shortest session (Expires) is 300 s, so the session is created by the first test of the
run (conftest's ``early_playback_session``) and this test is moved to the end of the run. Run
alone, it waits out the five minutes."""

from __future__ import annotations

import time
from urllib.parse import urljoin

import pytest

from playback import fetch, master_variant, parse_media_playlist


def _assert_refused(server, url: str):
    resp = fetch(server, url)
    assert resp.status_code == 403, (url, resp.status_code, resp.text[:200])
    assert resp.headers["x-amzn-ErrorType"].startswith("NotAuthorizedException")
    assert b"moof" not in resp.content and b"#EXTM3U" not in resp.content


@pytest.mark.timeout(420)  # run alone, it waits out the 300 s
def test_expired_session_token_is_refused(server, early_playback_session):
    s = early_playback_session
    assert server.starts == s.server_starts, "the server restarted: its tokens would be refused for another reason"
    wait = s.created + s.expires + 2 - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    for url in (s.master, s.media, s.segment):
        _assert_refused(server, url)
    # The stream and server are fine: a new session for the same range plays.
    fresh = server.archived().get_hls_streaming_session_url(**s.request)["HLSStreamingSessionURL"]
    master = fetch(server, fresh)
    assert master.status_code == 200
    media = fetch(server, urljoin(fresh, master_variant(master.text)[1]))
    assert media.status_code == 200
    first = parse_media_playlist(media.text).segments[0].uri
    assert fetch(server, urljoin(media.url, first)).status_code == 200
