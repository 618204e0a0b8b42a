"""Process and HTTP helpers shared by the Layer integration tests (standard library only)."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

DEFAULT_BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build",
                           "layer")


def layer_bin() -> str:
    return os.environ.get("LAYER_BIN") or DEFAULT_BIN


def clean_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The caller's environment without any LAYER_*/TURBOPUFFER_* setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("LAYER_") or k.startswith("TURBOPUFFER_"))}
    if extra:
        env.update(extra)
    return env


def wait_until(pred, timeout: float = 5.0, interval: float = 0.02, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# Gateway process
# ---------------------------------------------------------------------------------------------
class Gateway:
    def __init__(self, args: List[str], env: Dict[str, str], workdir: str, name: str = "gw"):
        self.workdir = workdir
        self.port_file = os.path.join(workdir, f"{name}.port")
        self.stdout_path = os.path.join(workdir, f"{name}.stdout")
        self.stderr_path = os.path.join(workdir, f"{name}.stderr")
        self.argv = [layer_bin(), "serve", *args]
        self.env = env
        self.proc: Optional[subprocess.Popen] = None
        self.port: Optional[int] = None

    def start(self, timeout: float = 15.0) -> "Gateway":
        binary = self.argv[0]
        if not os.path.exists(binary):
            raise AssertionError(f"gateway binary not found at {binary} (set LAYER_BIN)")
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        # cwd: the default --data-dir (layer-data/) lands in this test's own directory.
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.workdir, stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._err)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"gateway exited with code {self.proc.returncode} before listening\n"
                    f"argv: {self.argv}\noutput:\n{self.output()[-4000:]}")
            port = self._read_port()
            if port and self._can_connect(port):
                self.port = port
                return self
            if time.monotonic() > deadline:
                raise AssertionError(f"gateway did not write a usable port file within {timeout}s"
                                     f"\nargv: {self.argv}\noutput:\n{self.output()[-4000:]}")
            time.sleep(0.02)

    def _read_port(self) -> Optional[int]:
        try:
            with open(self.port_file) as f:
                txt = f.read().strip()
            p = int(txt)
            return p if 0 < p < 65536 else None
        except (OSError, ValueError):
            return None

    @staticmethod
    def _can_connect(port: int) -> bool:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=1)
            s.close()
            return True
        except OSError:
            return False

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        out = b""
        for p in (self.stdout_path, self.stderr_path):
            try:
                with open(p, "rb") as f:
                    out += f.read()
            except OSError:
                pass
        return out.decode("utf-8", "replace")

    def sigterm(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout: float) -> Optional[int]:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        for f in (getattr(self, "_out", None), getattr(self, "_err", None)):
            if f:
                f.close()


def run_layer(args: List[str], env: Optional[Dict[str, str]] = None,
              timeout: float = 10.0) -> Tuple[Optional[int], str, str]:
    """Runs `layer <args>` expecting it to exit; returns (rc or None if still running, out, err)."""
    workdir = tempfile.mkdtemp(prefix="layer-run-")  # the default data dir lands here
    p = subprocess.Popen([layer_bin(), *args], env=env if env is not None else clean_env(),
                         cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        rc = None
    return rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------
# HTTP client helpers
# ---------------------------------------------------------------------------------------------
@dataclass
class Resp:
    status: int
    reason: str
    headers: List[Tuple[str, str]]
    body: bytes
    interim: List[int] = None  # 1xx statuses seen before the final one (raw client only)

    def header(self, name: str) -> Optional[str]:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_all(self, name: str) -> List[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").lower()

    def __repr__(self) -> str:
        return f"Resp({self.status} {self.headers!r} {self.body[:300]!r})"


def http_request(port_or_gw, method: str, path: str, body: Optional[bytes] = None,
                 headers: Optional[Dict[str, str]] = None, token: Optional[str] = None,
                 conn: Optional[http.client.HTTPConnection] = None, timeout: float = 15.0) -> Resp:
    """One request with http.client. Pass `conn` to reuse a keep-alive connection."""
    port = port_or_gw.port if isinstance(port_or_gw, Gateway) else port_or_gw
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    hdrs = dict(headers or {})
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    if body is not None and not any(k.lower() == "content-type" for k in hdrs):
        hdrs["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return Resp(r.status, r.reason, list(r.getheaders()), data, [])
    finally:
        if own:
            conn.close()


class RawConn:
    """A byte-level HTTP/1.1 client connection."""

    def __init__(self, port: int, timeout: float = 15.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _fill(self) -> bool:
        data = self.sock.recv(1 << 20)
        if not data:
            return False
        self.buf += data
        return True

    def _until(self, delim: bytes) -> bytes:
        start = 0
        while True:
            i = self.buf.find(delim, start)
            if i >= 0:
                out = bytes(self.buf[: i + len(delim)])
                del self.buf[: i + len(delim)]
                return out
            start = max(0, len(self.buf) - len(delim) + 1)
            if not self._fill():
                raise ConnectionError(f"connection closed while reading (have {bytes(self.buf)!r})")

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionError("connection closed inside body")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_head(self) -> Tuple[int, str, List[Tuple[str, str]]]:
        head = self._until(b"\r\n\r\n").decode("latin-1")
        lines = head[:-4].split("\r\n")
        first = lines[0].split(" ", 2)
        status = int(first[1])
        reason = first[2] if len(first) > 2 else ""
        headers = []
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers.append((k.strip(), v.strip()))
        return status, reason, headers

    def read_response(self, method: str = "GET") -> Resp:
        interim = []
        while True:
            status, reason, headers = self.read_head()
            if 100 <= status < 200:
                interim.append(status)
                continue
            break
        hmap = {k.lower(): v for k, v in headers}
        if method == "HEAD" or status in (204, 304):
            body = b""
        elif "chunked" in hmap.get("transfer-encoding", "").lower():
            parts = []
            while True:
                size = int(self._until(b"\r\n").split(b";")[0].strip(), 16)
                if size == 0:
                    while self._until(b"\r\n") != b"\r\n":
                        pass
                    break
                parts.append(self._exact(size))
                self._exact(2)
            body = b"".join(parts)
        elif "content-length" in hmap:
            body = self._exact(int(hmap["content-length"]))
        else:
            while self._fill():
                pass
            body = bytes(self.buf)
            self.buf.clear()
        return Resp(status, reason, headers, body, interim)

    def closed_by_peer(self, timeout: float) -> bool:
        """True if the peer closes (EOF or reset) within `timeout` seconds; drains any data."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not data:
                return True
            self.buf += data


def raw_request(port: int, data: bytes, method: str = "GET", timeout: float = 15.0) -> Resp:
    with RawConn(port, timeout) as c:
        c.send(data)
        return c.read_response(method)


def build_request(method: str, target: str, headers: Optional[List[Tuple[str, str]]] = None,
                  body: Optional[bytes] = None, host: str = "gateway.test") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    hdrs = list(headers or [])
    if body is not None and not any(k.lower() in ("content-length", "transfer-encoding")
                                    for k, _ in hdrs):
        hdrs.append(("Content-Length", str(len(body))))
    for k, v in hdrs:
        lines.append(f"{k}: {v}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


# ---------------------------------------------------------------------------------------------
# Prometheus text parsing
# ---------------------------------------------------------------------------------------------
_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> List[Tuple[str, Dict[str, str], float]]:
    samples = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        name, _, labels, value, _ = m.groups()
        lab = dict(_LABEL.findall(labels or ""))
        try:
            v = float(value)
        except ValueError:
            continue
        samples.append((name, lab, v))
    return samples


def metric_sum(samples, name: str, **labels) -> float:
    total = 0.0
    for n, lab, v in samples:
        if n == name and all(lab.get(k) == val for k, val in labels.items()):
            total += v
    return total
