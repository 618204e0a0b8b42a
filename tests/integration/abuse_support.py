"""Abusive clients and one well-behaved client, shared by test_abuse.py and bench/abuse_bench.py.

Standard library only. Every abusive connection is a plain socket; the well-behaved client is a
thread that keeps fetching one cached document and records each answer's latency.
"""

from __future__ import annotations

import http.client
import json
import resource
import select
import socket
import threading
import time
from typing import Dict, List, Optional

NS = "abuse_ns"
DOC_ID = 1


def raise_fd_limit() -> int:
    """Raises this process's soft RLIMIT_NOFILE to the hard limit; returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= hard:
        return soft if soft != resource.RLIM_INFINITY else hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def vm_rss(pid: int) -> int:
    """The process's resident set size in bytes (VmRSS of /proc/<pid>/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def connection_cap(configured: int, fd_limit: int) -> int:
    """The gateway's connection cap under an open-file limit (http::ConnectionCapForFdLimit)."""
    reserve = min(1024, fd_limit // 2)
    return max(1, min(configured, fd_limit - reserve))


def head(method: str, target: str, token: str, extra: str = "") -> bytes:
    return (f"{method} {target} HTTP/1.1\r\nHost: abuse.test\r\nAuthorization: Bearer {token}\r\n"
            f"{extra}\r\n").encode()


def read_response(sock: socket.socket, timeout: float) -> Optional[dict]:
    """One response ({"status", "headers", "body"}) from `sock`, or None if the peer closed or
    reset the connection before a whole response arrived."""
    sock.settimeout(timeout)
    buf = b""
    try:
        while b"\r\n\r\n" not in buf:
            data = sock.recv(65536)
            if not data:
                return None
            buf += data
        head_bytes, _, rest = buf.partition(b"\r\n\r\n")
        lines = head_bytes.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            data = sock.recv(65536)
            if not data:
                return None
            rest += data
        return {"status": status, "headers": headers, "body": rest[:length],
                "extra": rest[length:]}
    except (ConnectionResetError, BrokenPipeError):
        return None


def closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    """True if the peer closes (EOF or reset) within `timeout`; any data is dropped."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True


def open_idle(port: int, n: int) -> List[socket.socket]:
    """`n` connections that never send a byte."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        socks.append(s)
    return socks


def count_closed(socks: List[socket.socket]) -> int:
    """How many of `socks` the peer has closed (EOF or reset), without waiting."""
    closed = 0
    poller = select.poll()
    by_fd = {}
    for s in socks:
        poller.register(s.fileno(), select.POLLIN | select.POLLHUP | select.POLLERR)
        by_fd[s.fileno()] = s
    for fd, ev in poller.poll(0):
        s = by_fd[fd]
        if ev & (select.POLLHUP | select.POLLERR):
            closed += 1
            continue
        try:
            s.setblocking(False)
            if not s.recv(1, socket.MSG_PEEK):
                closed += 1
        except (ConnectionResetError, BrokenPipeError):
            closed += 1
        except BlockingIOError:
            pass
    return closed


def close_all(socks: List[socket.socket]) -> None:
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


class Trickler(threading.Thread):
    """Slowloris: connections that each send `prefix` and then one byte of `drip` every
    `interval` seconds, until the gateway answers or closes them, `bound` seconds pass or
    halt() is called. `outcomes` maps each connection's index to "closed", "open" or the
    answer's status."""

    def __init__(self, port: int, n: int, prefix: bytes, drip: bytes, interval: float = 0.1,
                 bound: float = 60.0):
        super().__init__(daemon=True)
        self.socks = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(n)]
        self.prefix, self.drip, self.interval, self.bound = prefix, drip, interval, bound
        self.outcomes: Dict[int, object] = {}
        self.started_sending = threading.Event()
        self._halt = threading.Event()

    def halt(self) -> None:
        self._halt.set()

    def run(self) -> None:
        live = {}
        for i, s in enumerate(self.socks):
            try:
                s.sendall(self.prefix)
                s.setblocking(False)
                live[i] = s
            except OSError:
                self.outcomes[i] = "closed"
        self.started_sending.set()
        deadline = time.monotonic() + self.bound
        pos = 0
        while live and time.monotonic() < deadline and not self._halt.is_set():
            byte = self.drip[pos % len(self.drip):pos % len(self.drip) + 1]
            pos += 1
            for i, s in list(live.items()):
                outcome = self._poll(s)
                if outcome is None:
                    try:
                        s.send(byte)
                        continue
                    except BlockingIOError:
                        continue
                    except OSError:
                        outcome = "closed"
                self.outcomes[i] = outcome
                del live[i]
            self._halt.wait(self.interval)
        for i in live:
            self.outcomes[i] = "open"
        close_all(self.socks)

    @staticmethod
    def _poll(s: socket.socket):
        """None while the connection is open and silent; else "closed" or the status."""
        try:
            data = s.recv(65536)
        except BlockingIOError:
            return None
        except OSError:
            return "closed"
        if not data:
            return "closed"
        try:
            return int(data.split(b" ", 2)[1])
        except (IndexError, ValueError):
            return "garbage"


class GoodClient(threading.Thread):
    """A well-behaved client: fetches one cached document over and over, alternately on its
    keep-alive connection and on a new connection each time, until stopped. Every answer must
    be a 200 with the document; `errors` lists the ones that were not."""

    def __init__(self, port: int, token: str):
        super().__init__(daemon=True)
        self.port, self.token = port, token
        self.latencies: List[float] = []
        self.errors: List[str] = []
        self._halt = threading.Event()
        self._cv = threading.Condition()

    def _one(self, conn: http.client.HTTPConnection) -> None:
        path = f"/v2/namespaces/{NS}/documents/{DOC_ID}"
        t0 = time.monotonic()
        conn.request("GET", path, headers={"Authorization": f"Bearer {self.token}"})
        r = conn.getresponse()
        body = r.read()
        elapsed = time.monotonic() - t0
        if r.status != 200 or json.loads(body).get("id") != DOC_ID:
            self.errors.append(f"{r.status} {body[:200]!r}")
        with self._cv:
            self.latencies.append(elapsed)
            self._cv.notify_all()

    def run(self) -> None:
        keep = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        i = 0
        while not self._halt.is_set():
            fresh = i % 2 == 1
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30) if fresh else keep
            try:
                self._one(conn)
            except Exception as e:  # noqa: BLE001 -- any failure is recorded and reported
                self.errors.append(f"{'new' if fresh else 'keep-alive'} connection: {e!r}")
                if not fresh:
                    keep.close()
                    keep = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            finally:
                if fresh:
                    conn.close()
            i += 1
        keep.close()

    def served(self) -> int:
        with self._cv:
            return len(self.latencies)

    def wait_more(self, n: int, timeout: float = 60.0) -> None:
        """Waits until `n` more requests were answered (the client is served right now)."""
        with self._cv:
            target = len(self.latencies) + n
            if not self._cv.wait_for(lambda: len(self.latencies) >= target, timeout):
                raise AssertionError(f"the well-behaved client was not served {n} times within "
                                     f"{timeout}s (errors: {self.errors[-3:]})")

    def stop(self) -> dict:
        self._halt.set()
        self.join(timeout=60)
        return self.stats()

    def stats(self, since: int = 0) -> dict:
        with self._cv:
            lat = sorted(self.latencies[since:])
        if not lat:
            return {"requests": 0}
        pick = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1e3, 3)  # noqa: E731
        return {"requests": len(lat), "p50_ms": pick(0.5), "p99_ms": pick(0.99),
                "max_ms": round(lat[-1] * 1e3, 3), "errors": len(self.errors)}
