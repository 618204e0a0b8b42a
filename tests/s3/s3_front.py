#!/usr/bin/env python3
"""A verifying front for s3rver, the S3 emulator the tests run Layer's S3 backend against.

s3rver 3.7.1 (tests/package.json) serves the S3 REST API from a directory, but it does not check
SigV4 signatures (it accepts any V4 request of a known key id), ignores `If-None-Match` on PUT,
and writes objects in place (a reader racing a PUT can see a truncated object). Real S3 does all
three. So the tests talk to this front, which stands where S3's own checks would:

* Every request's SigV4 signature is recomputed with botocore's signer (Debian's
  python3-botocore, an implementation independent of libcurl's) from the request as received:
  method, path, query (decoded and re-canonicalised as S3 does), the signed headers and the body.
  A wrong secret, an unsigned header, an unsorted or wrongly encoded query, a missing or wrong
  x-amz-content-sha256 or a stale x-amz-date is refused as S3 refuses it (403
  SignatureDoesNotMatch, 400 XAmzContentSHA256Mismatch, ...), and counted.
* `PUT` with `If-None-Match: *` is answered 412 PreconditionFailed when the key exists. The check
  and the write happen under a per-key lock, so racing conditional PUTs have one winner, as on S3.
  (`--bare` forwards the header to s3rver untouched, to show what s3rver alone does.)
* Requests on one key are serialised, and a GET's bytes are checked against the object's ETag
  (its MD5) before they are relayed: s3rver answers a PUT once its MD5 is computed, before its
  file stream has flushed, so a GET right after it can read a truncated file. A GET whose bytes do
  not match is read again until they do (the file catches up), as S3's atomic PUT guarantees.
* Faults can be scripted (`POST /_front/faults`, a JSON list): the next `count` requests matching
  `method` and `path_contains` wait `delay_ms`, then have their connection dropped (`drop`), or
  are answered `status` with S3 error `code` (503 SlowDown, 500 InternalError, ...) without
  reaching s3rver, or after s3rver carried them out (`forward`: an answer lost on the way back).

Verified requests are forwarded to s3rver without their Authorization header. Control routes
(never signed): GET /_front/stats, POST /_front/reset, POST|DELETE /_front/faults.

Started by the tests (tests/unit/snapshots/s3_test_server.h, tests/integration/s3_support.py):

    python3 tests/s3/s3_front.py --dir TMP --bucket NAME --credentials KEYID:SECRET [--bare]

It starts s3rver itself, then prints one JSON line, {"port": N, "s3rver_port": M}, or
{"error": "..."} (exit 3) when node, s3rver or botocore is missing, and runs until its standard
input closes.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
MAX_SKEW = datetime.timedelta(minutes=15)


def fail_setup(msg: str) -> None:
    sys.stdout.write(json.dumps({"error": msg}) + "\n")
    sys.stdout.flush()
    sys.exit(3)


try:
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
except ImportError as e:  # pragma: no cover - depends on the machine
    fail_setup(f"botocore is not installed (apt-get install python3-botocore): {e}")


def error_xml(code: str, message: str) -> bytes:
    esc = lambda s: (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{esc(code)}</Code>'
            f"<Message>{esc(message)}</Message><RequestId>s3-front</RequestId></Error>").encode()


def verify(method: str, target: str, headers: dict, body: bytes, secrets: dict):
    """(status, code, detail): status 0 when the request is correctly signed."""
    auth = headers.get("authorization")
    if auth is None:
        return 403, "AccessDenied", "the request is not signed"
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return 400, "InvalidRequest", "only AWS4-HMAC-SHA256 is accepted"
    try:
        parts = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
        akid, date, region, service, terminal = parts["Credential"].split("/")
        signed = parts["SignedHeaders"].split(";")
        provided = parts["Signature"]
    except (KeyError, ValueError):
        return 400, "AuthorizationHeaderMalformed", auth
    if akid not in secrets:
        return 403, "InvalidAccessKeyId", akid
    if service != "s3" or terminal != "aws4_request":
        return 400, "AuthorizationHeaderMalformed", parts["Credential"]
    for h in ("host", "x-amz-date", "x-amz-content-sha256"):
        if h not in signed:
            return 403, "AccessDenied", f"{h} is not signed"
    for h in signed:
        if h not in headers:
            return 403, "SignatureDoesNotMatch", f"signed header {h} was not sent"
    for h in headers:
        if h.startswith("x-amz-") and h not in signed:
            return 403, "AccessDenied", f"{h} is sent but not signed"
    sha = headers.get("x-amz-content-sha256")
    if sha != "UNSIGNED-PAYLOAD" and sha != hashlib.sha256(body).hexdigest():
        return 400, "XAmzContentSHA256Mismatch", f"x-amz-content-sha256 {sha} is not the body's"
    try:
        when = datetime.datetime.strptime(headers["x-amz-date"], "%Y%m%dT%H%M%SZ")
    except ValueError:
        return 403, "AccessDenied", "malformed x-amz-date"
    if abs(datetime.datetime.utcnow() - when) > MAX_SKEW or date != headers["x-amz-date"][:8]:
        return 403, "RequestTimeTooSkewed", headers["x-amz-date"]
    split = urllib.parse.urlsplit(target)
    # S3 decodes the query, then canonicalises it (encodes, sorts): a client that signs the query
    # in another order or encoding than that fails here, as it would on S3.
    params = urllib.parse.parse_qsl(split.query, keep_blank_values=True)
    request = AWSRequest(method=method, url="http://" + headers["host"] + split.path, data=body,
                         headers={h: headers[h] for h in signed}, params=dict(params))
    request.context["timestamp"] = headers["x-amz-date"]
    signer = S3SigV4Auth(Credentials(akid, secrets[akid], headers.get("x-amz-security-token")),
                         service, region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if expected != provided:
        return 403, "SignatureDoesNotMatch", canonical
    return 0, "", ""


class Front:
    def __init__(self, s3rver_port: int, secrets: dict, bare: bool):
        self.s3rver_port = s3rver_port
        self.secrets = secrets
        self.bare = bare
        self.mu = threading.Lock()
        self.key_locks: dict = {}
        self.faults: list = []
        self.reset()

    def reset(self):
        with self.mu:
            self.stats = {"verified": 0, "rejected": 0, "rejections": [], "faults_served": 0,
                          "requests": {}}

    def key_lock(self, key: str) -> threading.Lock:
        with self.mu:
            return self.key_locks.setdefault(key, threading.Lock())

    def take_fault(self, method: str, path: str):
        with self.mu:
            for f in self.faults:
                if f.get("method") not in (None, method):
                    continue
                if f.get("path_contains") and f["path_contains"] not in path:
                    continue
                if f.get("count", 1) <= 0:
                    continue
                f["count"] = f.get("count", 1) - 1
                self.stats["faults_served"] += 1
                return dict(f)
        return None

    def count(self, field: str, value=None):
        with self.mu:
            self.stats[field] += 1
            if value is not None:
                self.stats["rejections"].append(value)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # head and body are separate writes: no delayed-ACK stalls
    front: Front = None  # set by main

    def log_message(self, fmt, *args):  # quiet
        pass

    def reply(self, status: int, body: bytes = b"", headers: dict | None = None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if self.command != "HEAD" or "content-length" not in {k.lower() for k in (headers or {})}:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reply_error(self, status: int, code: str, message: str):
        self.reply(status, error_xml(code, message), {"Content-Type": "application/xml"})

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def control(self, body: bytes):
        f = self.front
        if self.path == "/_front/stats" and self.command == "GET":
            with f.mu:
                data = json.dumps(f.stats).encode()
            return self.reply(200, data, {"Content-Type": "application/json"})
        if self.path == "/_front/reset" and self.command == "POST":
            f.reset()
            return self.reply(204)
        if self.path == "/_front/faults" and self.command == "POST":
            with f.mu:
                f.faults.extend(json.loads(body))
            return self.reply(204)
        if self.path == "/_front/faults" and self.command == "DELETE":
            with f.mu:
                f.faults.clear()
            return self.reply(204)
        return self.reply(404, b"unknown control route")

    def forward(self, method: str, body: bytes, headers: dict, drop_if_none_match=False):
        out = {k: v for k, v in headers.items()
               if k not in ("authorization", "host", "connection", "keep-alive", "expect",
                            "transfer-encoding", "content-length")}
        if drop_if_none_match:
            out.pop("if-none-match", None)
        conn = http.client.HTTPConnection("127.0.0.1", self.front.s3rver_port, timeout=60)
        try:
            conn.request(method, self.path, body=body if method in ("PUT", "POST") else None,
                         headers=out)
            resp = conn.getresponse()
            data = resp.read()
            relay = {k: v for k, v in resp.getheaders()
                     if k.lower() not in ("connection", "keep-alive", "transfer-encoding",
                                          "content-length", "date")}
            if method == "HEAD" and resp.getheader("Content-Length") is not None:
                relay["Content-Length"] = resp.getheader("Content-Length")
            return resp.status, data, relay
        finally:
            conn.close()

    def handle_any(self):
        body = self.read_body()
        if self.path.startswith("/_front/"):
            return self.control(body)
        f = self.front
        method = self.command
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, code, detail = verify(method, self.path, headers, body, f.secrets)
        if status:
            f.count("rejected", {"method": method, "path": self.path, "code": code,
                                 "detail": detail})
            return self.reply_error(status, code, detail)
        f.count("verified")
        with f.mu:
            f.stats["requests"][method] = f.stats["requests"].get(method, 0) + 1
        fault = f.take_fault(method, self.path)
        if fault:
            if fault.get("delay_ms"):
                time.sleep(fault["delay_ms"] / 1000)
            if fault.get("drop"):
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault.get("forward"):  # the store applies the request, the answer is lost
                self.apply(method, body, headers)
            if "status" in fault:
                return self.reply_error(fault["status"], fault.get("code", ""),
                                        "injected by the s3 front")
        status, data, relay = self.apply(method, body, headers)
        return self.reply(status, data, relay)

    def apply(self, method: str, body: bytes, headers: dict):
        """The request as S3 would carry it out: (status, body, headers)."""
        f = self.front
        split = urllib.parse.urlsplit(self.path)
        bucket, _, key = urllib.parse.unquote(split.path).lstrip("/").partition("/")
        if not key or split.query:
            return self.forward(method, body, headers)
        with f.key_lock(bucket + "/" + key):
            if method == "PUT" and "if-none-match" in headers and not f.bare:
                if headers["if-none-match"].strip() != "*":
                    return 501, error_xml("NotImplemented", "only If-None-Match: * on PUT"), {}
                head_status, _, _ = self.forward("HEAD", b"", {})
                if head_status == 200:
                    return 412, error_xml("PreconditionFailed", "At least one of the "
                                          "pre-conditions you specified did not hold"), {}
                return self.forward(method, body, headers, drop_if_none_match=True)
            if method == "GET" and "range" not in headers:
                return self.get_whole(headers)
            return self.forward(method, body, headers)

    def get_whole(self, headers: dict):
        """A GET relayed only once its bytes are the ones the object's ETag names."""
        deadline = time.monotonic() + 10
        while True:
            status, data, relay = self.forward("GET", b"", headers)
            etag = next((v for k, v in relay.items() if k.lower() == "etag"), "").strip('"')
            if (status != 200 or "-" in etag or not etag
                    or hashlib.md5(data).hexdigest() == etag):
                return status, data, relay
            if time.monotonic() > deadline:
                return 500, error_xml("InternalError", "s3rver's object file never matched "
                                      "its ETag"), {}
            time.sleep(0.002)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True, help="s3rver's data directory")
    ap.add_argument("--bucket", action="append", default=[], help="bucket to create")
    ap.add_argument("--credentials", action="append", default=[], help="KEYID:SECRET accepted")
    ap.add_argument("--bare", action="store_true",
                    help="forward If-None-Match to s3rver untouched (s3rver ignores it)")
    args = ap.parse_args()
    node = shutil.which("node")
    if node is None:
        fail_setup("node is not installed (scripts/setup.sh installs it)")
    if not os.path.exists(os.path.join(TESTS, "node_modules", "s3rver", "package.json")):
        fail_setup("s3rver is not installed: run `npm ci` in tests/ (scripts/setup.sh does)")
    secrets = dict(c.split(":", 1) for c in args.credentials)
    # s3rver's ListObjectsV2 continuation tokens are DES-encrypted, which OpenSSL 3 keeps in its
    # legacy provider: without it every truncated listing answers 500 InternalError.
    proc = subprocess.Popen([node, "--openssl-legacy-provider", os.path.join(HERE, "s3rver.mjs"),
                             args.dir, *args.bucket],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=TESTS)
    line = proc.stdout.readline()
    try:
        s3rver_port = json.loads(line)["port"]
    except (ValueError, KeyError):
        proc.kill()
        fail_setup(f"s3rver did not start: {line!r}")

    Handler.front = Front(s3rver_port, secrets, args.bare)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)

    def watch_stdin():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except OSError:
            pass
        stop()

    threading.Thread(target=watch_stdin, daemon=True).start()
    sys.stdout.write(json.dumps({"port": server.server_address[1], "s3rver_port": s3rver_port})
                     + "\n")
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
