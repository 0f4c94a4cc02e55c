"""An independent PutMedia client that behaves like the AWS C producer (libcurl).

* raw TCP + TLS (``ssl.MemoryBIO``), ALPN offering ``h2`` and ``http/1.1``
  like libcurl; the negotiated protocol is recorded (the data endpoint must
  pick ``http/1.1``);
* SigV4 computed by ``botocore.auth.SigV4Auth`` over exactly the headers the
  C producer signs (``connection;host;transfer-encoding;user-agent;x-amz-date;
  x-amzn-fragment-acknowledgment-required;x-amzn-fragment-timecode-type;
  x-amzn-producer-start-timestamp;x-amzn-stream-name``), ``Host`` without the
  port and the empty-body payload hash (or the Java SDK's
  ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD``);
* ``Expect: 100-continue`` (waits up to 1 s for ``100``, like curl);
* the body in chunked transfer encoding, 5-13 KB chunks, optional pacing;
* acks read concurrently: one I/O thread owns the socket and the TLS object
  (full duplex without sharing an SSL object between threads), decodes the
  chunked response and splits newline-terminated JSON acks;
* options to abort mid-stream, and to wait for the last PERSISTED ack before
  sending the terminating 0-chunk (as kvssink does).
"""

from __future__ import annotations

import collections
import datetime
import json
import random
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass

from botocore.auth import EMPTY_SHA256_HASH, SIGV4_TIMESTAMP, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders, get_current_datetime
from botocore.credentials import Credentials

PRODUCER_SIGNED_HEADERS = (
    "connection",
    "host",
    "transfer-encoding",
    "user-agent",
    "x-amz-date",
    "x-amzn-fragment-acknowledgment-required",
    "x-amzn-fragment-timecode-type",
    "x-amzn-producer-start-timestamp",
    "x-amzn-stream-name",
)
STREAMING_PAYLOAD = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
DEFAULT_USER_AGENT = "AWS-SDK-KVS-CPP-CLIENT/3.6.0/1.6.2 GCC/12.2.0 Linux/6.1.0 x86_64"


class ShiftedClockMixin:
    """A SigV4 signer whose clock is ``clock_offset`` seconds off."""

    clock_offset: float = 0.0

    def add_auth(self, request):
        now = get_current_datetime() + datetime.timedelta(seconds=self.clock_offset)
        request.context["timestamp"] = now.strftime(SIGV4_TIMESTAMP)
        self._modify_request_before_signing(request)
        canonical_request = self.canonical_request(request)
        string_to_sign = self.string_to_sign(request, canonical_request)
        signature = self.signature(string_to_sign, request)
        self._inject_signature_to_request(request, signature)


class ProducerSigV4Auth(ShiftedClockMixin, SigV4Auth):
    """botocore's SigV4 signer restricted to an explicit list of signed headers.

    botocore's default signer skips ``connection``, ``transfer-encoding`` and
    ``user-agent`` (its blacklist), but the C producer signs them, so the
    header selection is overridden. The payload hash is the empty-body hash
    (the body is streamed) unless ``X-Amz-Content-SHA256`` is set on the
    request, which botocore's canonical request then uses verbatim.
    """

    def __init__(self, credentials, region, signed_headers=PRODUCER_SIGNED_HEADERS, clock_offset=0.0):
        super().__init__(credentials, "kinesisvideo", region)
        self.signed = tuple(h.lower() for h in signed_headers)
        self.clock_offset = clock_offset

    def headers_to_sign(self, request):
        header_map = HTTPHeaders()
        for name, value in request.headers.items():
            if name.lower() in self.signed:
                header_map[name.lower()] = value
        missing = set(self.signed) - set(header_map.keys())
        if missing:
            raise ValueError(f"headers to sign missing from the request: {sorted(missing)}")
        return header_map

    def payload(self, request):
        return EMPTY_SHA256_HASH


class ShiftedSigV4Auth(ShiftedClockMixin, SigV4Auth):
    def __init__(self, credentials, region, clock_offset=0.0, service="kinesisvideo"):
        super().__init__(credentials, service, region)
        self.clock_offset = clock_offset


class BodyKeepingQueryAuth(SigV4QueryAuth):
    """Presigned (query-string) SigV4 that keeps a JSON body in the body.

    botocore's SigV4QueryAuth moves form/JSON bodies into the query string;
    for a REST-JSON API the body must stay, and its SHA-256 is what the
    canonical request carries."""

    def _modify_request_before_signing(self, request):
        body = request.data
        request.data = b""
        try:
            super()._modify_request_before_signing(request)
        finally:
            request.data = body


def start_timestamp_header(ms: int) -> str:
    """``x-amzn-producer-start-timestamp`` exactly as the C producer prints it."""
    return f"{ms // 1000}.{ms % 1000:03d}"


@dataclass
class PutMediaResult:
    status: int | None
    reason: str
    headers: list[tuple[str, str]]
    acks: list[dict]
    ack_times: list[float]  # time.monotonic() of each ack
    alpn: str | None
    got_continue: bool
    response_complete: bool  # the terminating 0-chunk (or full length) arrived
    server_closed: bool  # the server closed the connection
    chunk_sizes: list[int]
    body: bytes  # the response body (acks or an error document)
    bad_lines: list[bytes]
    send_error: str | None
    bytes_sent: int
    response_delay: float | None  # seconds from the request head to the first response line (100 or final)
    t_body_end: float | None  # time.monotonic() when the terminating 0-chunk was sent

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def of_type(self, event_type: str) -> list[dict]:
        return [a for a in self.acks if a.get("EventType") == event_type]

    def error_json(self) -> dict:
        return json.loads(self.body.decode() or "{}")


class PutMediaSession:
    """One PutMedia request on its own TLS connection."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        credentials: Credentials,
        ca_file: str | None,
        stream_name: str | None = None,
        stream_arn: str | None = None,
        region: str = "us-west-2",
        timecode_type: str = "ABSOLUTE",
        start_timestamp_ms: int | None = None,
        ack_required: bool = True,
        user_agent: str = DEFAULT_USER_AGENT,
        host_header: str | None = None,
        expect_continue: bool = True,
        streaming_payload: bool = False,
        alpn: tuple[str, ...] | None = ("h2", "http/1.1"),
        chunk_min: int = 5 * 1024,
        chunk_max: int = 13 * 1024,
        seed: int = 0,
        clock_offset: float = 0.0,
        sign: bool = True,
        extra_headers: dict[str, str] | None = None,
        connect_timeout: float = 5.0,
        plain: bool = False,
    ):
        self.host, self.port = host, port
        self.credentials = credentials
        self.ca_file = ca_file
        self.stream_name, self.stream_arn = stream_name, stream_arn
        self.region = region
        self.timecode_type = timecode_type
        self.start_timestamp_ms = int(time.time() * 1000) if start_timestamp_ms is None else start_timestamp_ms
        self.ack_required = ack_required
        self.user_agent = user_agent
        self.host_header = host_header or host
        self.expect_continue = expect_continue
        self.streaming_payload = streaming_payload
        self.alpn_offer = alpn
        self.chunk_min, self.chunk_max = chunk_min, chunk_max
        self.rng = random.Random(seed)
        self.clock_offset = clock_offset
        self.sign = sign
        self.extra_headers = extra_headers or {}
        self.connect_timeout = connect_timeout
        self.plain = plain

        self.cond = threading.Condition()
        # response state (guarded by cond)
        self.status: int | None = None
        self.reason = ""
        self.headers: list[tuple[str, str]] = []
        self.got_continue = False
        self.response_complete = False
        self.server_closed = False
        self.chunk_sizes: list[int] = []
        self.body = bytearray()
        self.acks: list[dict] = []
        self.ack_times: list[float] = []
        self.bad_lines: list[bytes] = []
        self.send_error: str | None = None
        self.alpn: str | None = None
        self.bytes_sent = 0
        self.request_headers: list[tuple[str, str]] = []
        self.t_headers_sent: float | None = None
        self.t_first_response: float | None = None

        self._rx = bytearray()
        self._state = "status"
        self._body_mode = None
        self._remaining = 0
        self._line_buf = bytearray()
        self._sendq: collections.deque = collections.deque()
        self._cipher_out = bytearray()
        self._sent = 0
        self._waiters: list[tuple[int, threading.Event]] = []
        self._stop = False
        self._send_dead = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.t_body_end: float | None = None
        self._thread: threading.Thread | None = None
        self.sock: socket.socket | None = None
        self.sslobj = None

    # ------------------------------------------------------------ connection
    def connect(self):
        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        if not self.plain:
            ctx = ssl.create_default_context(cafile=self.ca_file)
            if self.alpn_offer:
                ctx.set_alpn_protocols(list(self.alpn_offer))
            self._in = ssl.MemoryBIO()
            self._out = ssl.MemoryBIO()
            self.sslobj = ctx.wrap_bio(self._in, self._out, server_side=False, server_hostname=self.host)
            deadline = time.monotonic() + self.connect_timeout
            while True:
                try:
                    self.sslobj.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    pending = self._out.read()
                    if pending:
                        sock.sendall(pending)
                    sock.settimeout(max(0.1, deadline - time.monotonic()))
                    data = sock.recv(65536)
                    if not data:
                        raise ConnectionError("server closed the connection during the TLS handshake")
                    self._in.write(data)
            pending = self._out.read()
            if pending:
                sock.sendall(pending)
            self.alpn = self.sslobj.selected_alpn_protocol()
        sock.setblocking(False)
        self._thread = threading.Thread(target=self._io_loop, name="putmedia-io", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------- I/O thread
    def _io_loop(self):
        sock = self.sock
        try:
            while not self._stop:
                want_w = bool(self._cipher_out) or bool(self._sendq)
                r, w, _ = select.select([sock, self._wake_r], [sock] if want_w else [], [], 0.05)
                if self._wake_r in r:
                    try:
                        while self._wake_r.recv(4096):
                            pass
                    except (BlockingIOError, InterruptedError):
                        pass
                if sock in r:
                    try:
                        data = sock.recv(262144)
                    except (BlockingIOError, InterruptedError):
                        data = None
                    except OSError:
                        data = b""
                    if data == b"":
                        self._on_plaintext(None)
                        break
                    if data:
                        if self.sslobj is None:
                            self._on_plaintext(data)
                        else:
                            self._in.write(data)
                            self._drain_tls()
                self._fill_cipher()
                if self._cipher_out:
                    try:
                        n = sock.send(self._cipher_out)
                    except (BlockingIOError, InterruptedError):
                        n = 0
                    except OSError as e:
                        with self.cond:
                            self.send_error = repr(e)
                            self.cond.notify_all()
                        self._send_dead = True
                        self._cipher_out.clear()
                        for _, ev in self._waiters:
                            ev.set()
                        self._waiters = []
                        n = 0
                    if n:
                        del self._cipher_out[:n]
                        self._sent += n
                        self._wake_senders()
        finally:
            with self.cond:
                self.server_closed = self.server_closed or not self._stop
                self.cond.notify_all()
            for _, ev in self._waiters:
                ev.set()
            while self._sendq:
                self._sendq.popleft()[1].set()

    def _wake_senders(self):
        keep = []
        for target, ev in self._waiters:
            if self._sent >= target:
                ev.set()
            else:
                keep.append((target, ev))
        self._waiters = keep

    def _fill_cipher(self):
        if self._send_dead:
            while self._sendq:
                self._sendq.popleft()[1].set()
            return
        while self._sendq and len(self._cipher_out) < 262144:
            data, ev = self._sendq.popleft()
            if self.sslobj is None:
                self._cipher_out += data
            else:
                self.sslobj.write(data)
                self._cipher_out += self._out.read()
            # The ciphertext of this item ends at sent + len(pending cipher).
            target = self._sent + len(self._cipher_out)
            if ev is not None:
                self._waiters.append((target, ev))

    def _drain_tls(self):
        while True:
            try:
                chunk = self.sslobj.read(262144)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                self._on_plaintext(None)
                break
            except ssl.SSLError as e:
                with self.cond:
                    self.send_error = self.send_error or f"TLS error: {e!r}"
                self._on_plaintext(None)
                break
            if not chunk:
                break
            self._on_plaintext(chunk)
        pending = self._out.read()
        if pending:
            self._cipher_out += pending

    # --------------------------------------------------------- HTTP parsing
    def _on_plaintext(self, data: bytes | None):
        with self.cond:
            if data is None:
                self.server_closed = True
                if self._body_mode == "close":
                    self.response_complete = True
                self._flush_lines(final=True)
                self.cond.notify_all()
                return
            self._rx += data
            self._parse()
            self.cond.notify_all()

    def _parse(self):
        while True:
            if self._state == "status":
                idx = self._rx.find(b"\r\n\r\n")
                if idx < 0:
                    return
                head = bytes(self._rx[:idx]).decode("latin-1")
                del self._rx[: idx + 4]
                lines = head.split("\r\n")
                parts = lines[0].split(" ", 2)
                status = int(parts[1])
                reason = parts[2] if len(parts) > 2 else ""
                headers = []
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    headers.append((k.strip().lower(), v.strip()))
                if self.t_first_response is None:
                    self.t_first_response = time.monotonic()
                if 100 <= status < 200:
                    if status == 100:
                        self.got_continue = True
                    continue
                self.status, self.reason, self.headers = status, reason, headers
                hd = dict(headers)
                if "chunked" in hd.get("transfer-encoding", "").lower():
                    self._body_mode = "chunked"
                    self._state = "chunk-size"
                elif "content-length" in hd:
                    self._body_mode = "length"
                    self._remaining = int(hd["content-length"])
                    self._state = "length"
                    if self._remaining == 0:
                        self.response_complete = True
                        self._state = "done"
                else:
                    self._body_mode = "close"
                    self._state = "close"
            elif self._state == "chunk-size":
                idx = self._rx.find(b"\r\n")
                if idx < 0:
                    return
                line = bytes(self._rx[:idx]).split(b";")[0].strip()
                del self._rx[: idx + 2]
                size = int(line, 16)
                self.chunk_sizes.append(size)
                if size == 0:
                    self._state = "trailers"
                else:
                    self._remaining = size
                    self._state = "chunk-data"
            elif self._state == "chunk-data":
                if not self._rx:
                    return
                take = min(self._remaining, len(self._rx))
                self._on_body(bytes(self._rx[:take]))
                del self._rx[:take]
                self._remaining -= take
                if self._remaining:
                    return
                self._state = "chunk-crlf"
            elif self._state == "chunk-crlf":
                if len(self._rx) < 2:
                    return
                if self._rx[:2] != b"\r\n":
                    raise ValueError(f"bad chunk terminator {bytes(self._rx[:2])!r}")
                del self._rx[:2]
                self._state = "chunk-size"
            elif self._state == "trailers":
                idx = self._rx.find(b"\r\n")
                if idx < 0:
                    return
                line = self._rx[:idx]
                del self._rx[: idx + 2]
                if not line:
                    self._state = "done"
                    self.response_complete = True
                    self._flush_lines(final=True)
            elif self._state == "length":
                if not self._rx:
                    return
                take = min(self._remaining, len(self._rx))
                self._on_body(bytes(self._rx[:take]))
                del self._rx[:take]
                self._remaining -= take
                if not self._remaining:
                    self._state = "done"
                    self.response_complete = True
                    self._flush_lines(final=True)
                return
            elif self._state == "close":
                if self._rx:
                    self._on_body(bytes(self._rx))
                    self._rx.clear()
                return
            else:  # done: ignore anything else
                self._rx.clear()
                return

    def _on_body(self, data: bytes):
        self.body += data
        if self.status == 200:
            self._line_buf += data
            self._flush_lines()

    def _flush_lines(self, final=False):
        while True:
            idx = self._line_buf.find(b"\n")
            if idx < 0:
                break
            line = bytes(self._line_buf[:idx]).strip()
            del self._line_buf[: idx + 1]
            self._add_ack_line(line)
        if final and self._line_buf.strip():
            self._add_ack_line(bytes(self._line_buf).strip())
            self._line_buf.clear()

    def _add_ack_line(self, line: bytes):
        if not line:
            return
        try:
            ack = json.loads(line)
        except ValueError:
            self.bad_lines.append(line)
            return
        self.acks.append(ack)
        self.ack_times.append(time.monotonic())

    # ------------------------------------------------------------ sending
    def _enqueue(self, data: bytes, wait: bool = True, timeout: float = 30.0):
        ev = threading.Event()
        self._sendq.append((data, ev))
        self.bytes_sent += len(data)
        try:
            self._wake_w.send(b"w")
        except OSError:
            pass
        if wait:
            deadline = time.monotonic() + timeout
            while not ev.wait(0.05):
                if self._thread is None or not self._thread.is_alive():
                    return  # connection gone: the caller sees server_closed / send_error
                if time.monotonic() > deadline:
                    raise TimeoutError("could not send within the timeout (server not reading?)")

    def build_request(self) -> bytes:
        headers: list[tuple[str, str]] = [("Host", self.host_header), ("Accept", "*/*")]
        headers += [
            ("connection", "keep-alive"),
            ("content-type", "application/json"),
            ("transfer-encoding", "chunked"),
            ("user-agent", self.user_agent),
            ("x-amzn-fragment-acknowledgment-required", "1" if self.ack_required else "0"),
            ("x-amzn-fragment-timecode-type", self.timecode_type),
            ("x-amzn-producer-start-timestamp", start_timestamp_header(self.start_timestamp_ms)),
        ]
        if self.stream_name is not None:
            headers.append(("x-amzn-stream-name", self.stream_name))
        if self.stream_arn is not None:
            headers.append(("x-amzn-stream-arn", self.stream_arn))
        if self.streaming_payload:
            headers.append(("x-amz-content-sha256", STREAMING_PAYLOAD))
        headers += list(self.extra_headers.items())
        if self.sign:
            req = AWSRequest(method="POST", url=f"https://{self.host}:{self.port}/putMedia", headers=dict(headers))
            signed = [h for h in PRODUCER_SIGNED_HEADERS if h != "x-amzn-stream-name" or self.stream_name is not None]
            if self.stream_arn is not None:
                signed.append("x-amzn-stream-arn")
            if self.streaming_payload:
                signed.append("x-amz-content-sha256")
            ProducerSigV4Auth(self.credentials, self.region, signed, self.clock_offset).add_auth(req)
            headers = list(req.headers.items())
        if self.expect_continue:
            headers.append(("Expect", "100-continue"))
        self.request_headers = headers
        lines = ["POST /putMedia HTTP/1.1"] + [f"{k}: {v}" for k, v in headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def start(self, continue_timeout: float = 1.0):
        """Connect and send the request head; wait for ``100 Continue`` (or a final
        status) for up to ``continue_timeout`` seconds like curl."""
        if self.sock is None:
            self.connect()
        self._enqueue(self.build_request())
        self.t_headers_sent = time.monotonic()
        if self.expect_continue:
            with self.cond:
                self.cond.wait_for(lambda: self.got_continue or self.status is not None or self.server_closed, continue_timeout)
        return self

    def refused(self) -> bool:
        """True when the server answered with a final non-2xx status before the body."""
        return self.status is not None and self.status >= 300

    def send_body(self, data: bytes, *, pace: float = 0.0):
        """Send ``data`` as HTTP chunks of random 5-13 KB sizes, ``pace`` seconds apart."""
        pos = 0
        while pos < len(data):
            n = self.rng.randint(self.chunk_min, self.chunk_max)
            piece = data[pos : pos + n]
            pos += len(piece)
            self._enqueue(b"%x\r\n" % len(piece) + piece + b"\r\n")
            if pace:
                time.sleep(pace)

    def send_raw(self, data: bytes):
        self._enqueue(data)

    def end_body(self):
        self.t_body_end = time.monotonic()
        self._enqueue(b"0\r\n\r\n")

    def wait_for(self, pred, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: pred(self), timeout)

    def wait_ack(self, event_type: str, timecode: int | None = None, timeout: float = 10.0) -> dict | None:
        def pred(s):
            return any(
                a.get("EventType") == event_type and (timecode is None or a.get("FragmentTimecode") == timecode)
                for a in s.acks
            ) or s.server_closed

        self.wait_for(pred, timeout)
        with self.cond:
            for a in self.acks:
                if a.get("EventType") == event_type and (timecode is None or a.get("FragmentTimecode") == timecode):
                    return a
        return None

    def wait_complete(self, timeout: float = 15.0) -> bool:
        return self.wait_for(lambda s: s.response_complete or s.server_closed, timeout)

    def abort(self):
        """Drop the connection without finishing the body (network failure)."""
        self._stop = True
        if self._thread:
            self._thread.join(2)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
        self.sock.close()
        self._wake_r.close()
        self._wake_w.close()

    def close(self):
        self._stop = True
        if self._thread:
            self._thread.join(2)
        if self.sock:
            self.sock.close()
        self._wake_r.close()
        self._wake_w.close()

    def result(self) -> PutMediaResult:
        with self.cond:
            return PutMediaResult(
                status=self.status,
                reason=self.reason,
                headers=list(self.headers),
                acks=list(self.acks),
                ack_times=list(self.ack_times),
                alpn=self.alpn,
                got_continue=self.got_continue,
                response_complete=self.response_complete,
                server_closed=self.server_closed,
                chunk_sizes=list(self.chunk_sizes),
                body=bytes(self.body),
                bad_lines=list(self.bad_lines),
                send_error=self.send_error,
                bytes_sent=self.bytes_sent,
                t_body_end=self.t_body_end,
                response_delay=(
                    None
                    if self.t_first_response is None or self.t_headers_sent is None
                    else max(0.0, self.t_first_response - self.t_headers_sent)
                ),
            )


def put_media(
    host: str,
    port: int,
    parts: list[bytes] | bytes,
    *,
    part_interval: float = 0.0,
    wait_persisted_timecode: int | None = None,
    persisted_timeout: float = 15.0,
    finish: bool = True,
    complete_timeout: float = 15.0,
    **session_kwargs,
) -> PutMediaResult:
    """Run one whole PutMedia upload like kvssink and return what the server said.

    ``parts`` are sent in order, ``part_interval`` seconds apart. If
    ``wait_persisted_timecode`` is given, the client waits for that
    fragment's PERSISTED ack (or the server closing) before the terminating
    0-chunk, like the producer SDK at end of stream.
    """
    if isinstance(parts, (bytes, bytearray)):
        parts = [bytes(parts)]
    s = PutMediaSession(host, port, **session_kwargs)
    try:
        s.start()
        if not s.refused():
            for i, p in enumerate(parts):
                if s.server_closed or s.send_error:
                    break
                if i and part_interval:
                    time.sleep(part_interval)
                s.send_body(p)
            if wait_persisted_timecode is not None and not s.server_closed:
                s.wait_ack("PERSISTED", wait_persisted_timecode, persisted_timeout)
            if finish and not s.server_closed and not s.send_error:
                s.end_body()
        s.wait_complete(complete_timeout)
        return s.result()
    finally:
        s.close()
