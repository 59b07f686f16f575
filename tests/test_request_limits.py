"""The body limit holds while the body streams in, and a 4xx leaves the connection usable.

Raw sockets, so the test controls exactly what the server has been sent when it answers.
"""

from __future__ import annotations

import json
import select
import socket
import time
from urllib.parse import urlsplit

from booking.settings import ENV_DEFAULTS

LIMIT = int(ENV_DEFAULTS["MAX_BODY_BYTES"])
DEADLINE_SECONDS = 30  # a hang-guard only


def connect(live_server: str) -> socket.socket:
    url = urlsplit(live_server)
    sock = socket.create_connection((url.hostname, url.port), timeout=DEADLINE_SECONDS)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside a response body"
        rest += chunk
    return status, headers, rest[:length]


def request(method: str, path: str, body: bytes = b"", extra: str = "") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


def test_declared_length_over_the_limit_is_refused_before_the_body(live_server: str) -> None:
    with connect(live_server) as sock:
        huge = 300 * 1024 * 1024
        sock.sendall(
            b"POST /api/users HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {huge}\r\n\r\n".encode()
            + b'{"name": "'
        )
        status, headers, body = read_response(sock)  # answered with 300 MB still unsent
    assert status == 413
    assert headers["content-type"].startswith("application/problem+json")
    assert headers["connection"] == "close"
    problem = json.loads(body)
    assert problem["status"] == 413 and problem["max_bytes"] == LIMIT


def test_chunked_body_is_refused_once_it_passes_the_limit(live_server: str) -> None:
    chunk = b'{"name": "' + b"a" * (64 * 1024 - 10)
    sent = 0
    with connect(live_server) as sock:
        sock.sendall(
            b"POST /api/users HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        deadline = time.monotonic() + DEADLINE_SECONDS
        # Bounded: at most 64 MiB, and stop as soon as the server has answered.
        while sent < 64 * 1024 * 1024 and time.monotonic() < deadline:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        status, headers, body = read_response(sock)
    assert status == 413, body
    assert headers["content-type"].startswith("application/problem+json")
    # The server stopped reading near the limit; what it did not read stayed in socket buffers.
    assert sent < 32 * 1024 * 1024, sent


def test_a_body_at_the_limit_is_read_and_validated(live_server: str) -> None:
    prefix, suffix = b'{"email": "a@b.co", "name": "', b'"}'
    at_limit = prefix + b"a" * (LIMIT - len(prefix) - len(suffix)) + suffix
    assert len(at_limit) == LIMIT
    with connect(live_server) as sock:
        sock.sendall(request("POST", "/api/users", at_limit, "Content-Type: application/json\r\n"))
        status, _, _ = read_response(sock)
        assert status == 422  # read whole and validated (name too long), not refused as too large
        # One byte more, on the same connection: refused from its Content-Length alone. Only
        # the head is sent: the server answers 413 and closes without reading the body, so a
        # client still writing 1 MiB may get a reset instead of the answer (seen on a busy CI).
        over = request("POST", "/api/users", at_limit + b" ")
        sock.sendall(over[: over.index(b"\r\n\r\n") + 4])
        status, headers, _ = read_response(sock)
    assert status == 413 and headers["connection"] == "close"


def test_keep_alive_connection_survives_every_kind_of_4xx(live_server: str) -> None:
    big = "99999999999999999999"
    json_type = "Content-Type: application/json\r\n"
    sequence = [
        (request("GET", f"/api/events/{big}/queue/x"), 404),
        (request("GET", f"/events/{big}/waiting-room"), 404),
        (request("POST", "/api/users", b'{"name": "a\\u0000", "email": "a@b.co"}', json_type), 422),
        (request("POST", "/api/users", b"[" * 30_000 + b"]" * 30_000, json_type), 400),
        (request("POST", "/api/users", b"{", json_type), 400),
        (request("PUT", "/api/events"), 405),
        (request("GET", "/healthz"), 200),
    ]
    with connect(live_server) as sock:
        for raw, expected in sequence:
            sock.sendall(raw)
            status, headers, _ = read_response(sock)
            assert status == expected, (raw[:60], status)
            assert headers.get("connection", "keep-alive") != "close", raw[:60]
