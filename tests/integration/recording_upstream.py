"""A recording, programmable HTTP/1.1 upstream used in place of Turbopuffer in integration tests.

It is deliberately written on raw sockets (no http.server) so that tests control and observe
bytes exactly:

* threaded, one thread per TCP connection, HTTP/1.1 keep-alive (requests on a connection are
  served until the peer closes or sends ``Connection: close``);
* optional TLS (pass an ``ssl.SSLContext``); the SNI names the clients sent are recorded;
* every request is recorded: method, raw request target, header list (original case and order),
  de-chunked body bytes, whether it arrived chunked, and the id of the TCP connection it came on;
* the answer is programmable with ``set_rule``: a ``Response`` or a callable ``req -> Response``.
  The default answers ``200 {"ok":true}`` with ``Content-Type: application/json``.
  ``Response(silent=True)`` reads the request and never answers (the connection stays open until
  the upstream is stopped); ``Response(delay=s)`` waits before answering; ``Response(raw=b"...")``
  writes the given bytes verbatim (for malformed answers); ``close=True`` closes after answering;
  ``drip=s`` sends the answer in 16 KiB pieces, ``s`` seconds apart (a slow or distant upstream).
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple, Union
from urllib.parse import urlsplit

MAX_HEAD = 1 << 20


@dataclass
class Response:
    status: int = 200
    headers: Optional[List[Tuple[str, str]]] = None  # None -> [("Content-Type","application/json")]
    body: bytes = b'{"ok":true}'
    delay: float = 0.0
    silent: bool = False
    close: bool = False
    raw: Optional[bytes] = None
    reason: Optional[str] = None
    drip: float = 0.0


@dataclass
class RecordedRequest:
    method: str
    target: str
    version: str
    headers: List[Tuple[str, str]]
    body: bytes
    conn_id: int
    chunked: bool = False
    received_at: float = field(default_factory=time.monotonic)

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> Optional[str]:
        parts = self.target.split("?", 1)
        return parts[1] if len(parts) == 2 else None

    def header(self, name: str) -> Optional[str]:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_all(self, name: str) -> List[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def header_names(self) -> set:
        return {k.lower() for k, _ in self.headers}

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


Rule = Union[Response, Callable[[RecordedRequest], Response]]

_REASONS = {
    100: "Continue", 200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
    301: "Moved Permanently", 302: "Found", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 408: "Request Timeout", 409: "Conflict",
    413: "Payload Too Large", 422: "Unprocessable Entity", 429: "Too Many Requests",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
}


class _Closed(Exception):
    pass


class _Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> None:
        data = self.sock.recv(1 << 20)
        if not data:
            raise _Closed()
        self.buf += data

    def until(self, delim: bytes, limit: int = MAX_HEAD) -> bytes:
        start = 0
        while True:
            i = self.buf.find(delim, start)
            if i >= 0:
                out = bytes(self.buf[: i + len(delim)])
                del self.buf[: i + len(delim)]
                return out
            if len(self.buf) > limit:
                raise _Closed()
            start = max(0, len(self.buf) - len(delim) + 1)
            self._fill()

    def exact(self, n: int) -> bytes:
        chunks = []
        if self.buf:
            take = bytes(self.buf[:n])
            del self.buf[: len(take)]
            chunks.append(take)
            n -= len(take)
        while n > 0:
            data = self.sock.recv(min(n, 1 << 20))
            if not data:
                raise _Closed()
            chunks.append(data)
            n -= len(data)
        return b"".join(chunks)


class RecordingUpstream:
    def __init__(self, ssl_context: Optional[ssl.SSLContext] = None, host: str = "127.0.0.1"):
        self.ssl_context = ssl_context
        self.host = host
        self._lock = threading.Condition()
        self._requests: List[RecordedRequest] = []
        self._rule: Rule = Response()
        self._stop = threading.Event()
        self._conns: set = set()
        self._threads: List[threading.Thread] = []
        self.connections_accepted = 0
        self.tls_errors: List[str] = []
        self.sni_names: List[Optional[str]] = []
        if ssl_context is not None:
            def _sni(sslsock, name, ctx):
                with self._lock:
                    self.sni_names.append(name)
                return None
            ssl_context.sni_callback = _sni
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        self._sock.listen(256)
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        t = threading.Thread(target=self._accept_loop, name="upstream-accept", daemon=True)
        t.start()
        self._accept_thread = t

    # ---- public API -------------------------------------------------------------------------
    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context is not None else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def url_for(self, hostname: str) -> str:
        return f"{self.scheme}://{hostname}:{self.port}"

    def set_rule(self, rule: Rule) -> None:
        with self._lock:
            self._rule = rule

    @property
    def requests(self) -> List[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> List[RecordedRequest]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"upstream saw {len(self._requests)} request(s), expected {n}: "
                        f"{[(r.method, r.target) for r in self._requests]}")
                self._lock.wait(left)
            return list(self._requests)

    def distinct_connections(self) -> set:
        with self._lock:
            return {r.conn_id for r in self._requests}

    def wait_no_open_connections(self, timeout: float = 10.0) -> None:
        """Waits until every connection this upstream accepted is closed on its side (closed
        sockets have sent their FIN)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._conns:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"upstream still has {len(self._conns)} open connection(s)")
                self._lock.wait(left)

    def stop(self) -> None:
        self._stop.set()
        try:
            self._sock.close()
        except OSError:
            pass
        with self._lock:
            conns = list(self._conns)
            self._lock.notify_all()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                c.close()
            except OSError:
                pass
        self._accept_thread.join(timeout=2)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # ---- internals --------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        conn_id = 0
        while not self._stop.is_set():
            try:
                c, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn_id += 1
            with self._lock:
                self.connections_accepted += 1
            t = threading.Thread(target=self._serve_conn, args=(c, conn_id),
                                 name=f"upstream-conn-{conn_id}", daemon=True)
            t.start()

    def _serve_conn(self, c: socket.socket, conn_id: int) -> None:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.settimeout(None)
        if self.ssl_context is not None:
            try:
                c.settimeout(10)
                c = self.ssl_context.wrap_socket(c, server_side=True)
                c.settimeout(None)
            except (ssl.SSLError, OSError) as e:
                with self._lock:
                    self.tls_errors.append(repr(e))
                try:
                    c.close()
                except OSError:
                    pass
                return
        with self._lock:
            if self._stop.is_set():
                c.close()
                return
            self._conns.add(c)
        try:
            self._serve_requests(c, conn_id)
        except (_Closed, OSError, ssl.SSLError, ValueError):
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass
            with self._lock:
                self._conns.discard(c)
                self._lock.notify_all()

    def _serve_requests(self, c, conn_id: int) -> None:
        r = _Reader(c)
        while not self._stop.is_set():
            head = r.until(b"\r\n\r\n")
            lines = head[:-4].decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3:
                c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            method, target, version = parts
            headers: List[Tuple[str, str]] = []
            for line in lines[1:]:
                if not line:
                    continue
                k, _, v = line.partition(":")
                headers.append((k.strip(), v.strip()))
            hmap = {}
            for k, v in headers:
                hmap.setdefault(k.lower(), v)
            if hmap.get("expect", "").lower() == "100-continue":
                c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            chunked = "chunked" in hmap.get("transfer-encoding", "").lower()
            if chunked:
                body_parts = []
                while True:
                    size_line = r.until(b"\r\n", 4096)
                    size = int(size_line.split(b";")[0].strip(), 16)
                    if size == 0:
                        while r.until(b"\r\n", MAX_HEAD) != b"\r\n":  # trailers
                            pass
                        break
                    body_parts.append(r.exact(size))
                    r.exact(2)
                body = b"".join(body_parts)
            else:
                n = int(hmap.get("content-length", "0") or "0")
                body = r.exact(n) if n else b""
            req = RecordedRequest(method=method, target=target, version=version, headers=headers,
                                  body=body, conn_id=conn_id, chunked=chunked)
            with self._lock:
                self._requests.append(req)
                rule = self._rule
                self._lock.notify_all()
            resp = rule(req) if callable(rule) else rule
            if resp.silent:
                self._stop.wait()
                return
            if resp.delay:
                if self._stop.wait(resp.delay):
                    return
            if resp.raw is not None:
                self._send(c, resp.raw, resp.drip)
                if resp.close:
                    return
                continue
            out_headers = list(resp.headers) if resp.headers is not None else [
                ("Content-Type", "application/json")]
            names = {k.lower() for k, _ in out_headers}
            if "content-length" not in names and "transfer-encoding" not in names:
                out_headers.append(("Content-Length", str(len(resp.body))))
            client_close = (hmap.get("connection", "").lower() == "close"
                            or version == "HTTP/1.0")
            if resp.close or client_close:
                out_headers.append(("Connection", "close"))
            reason = resp.reason or _REASONS.get(resp.status, "Status")
            data = f"HTTP/1.1 {resp.status} {reason}\r\n".encode("latin-1")
            for k, v in out_headers:
                data += f"{k}: {v}\r\n".encode("latin-1")
            data += b"\r\n"
            if method != "HEAD" and resp.status not in (204, 304):
                data += resp.body
            self._send(c, data, resp.drip)
            if resp.close or client_close:
                return

    def _send(self, c, data: bytes, drip: float) -> None:
        if not drip:
            c.sendall(data)
            return
        for i in range(0, len(data), 16 << 10):
            c.sendall(data[i:i + (16 << 10)])
            if self._stop.wait(drip):
                return


def origin_of(url: str) -> str:
    u = urlsplit(url)
    return f"{u.scheme}://{u.netloc}"


if __name__ == "__main__":  # manual use: python3 recording_upstream.py
    up = RecordingUpstream()
    print(up.url, flush=True)
    try:
        while True:
            time.sleep(1)
            for rq in up.requests:
                print(rq.method, rq.target, rq.conn_id)
            up.clear()
    except KeyboardInterrupt:
        up.stop()
