"""Upstream failures (502), upstream statuses relayed verbatim, body-size limits, Expect:
100-continue, malformed requests, header size and header/body timeouts."""

import base64
import hashlib
import os
import socket
import threading
import time

import pytest

from layer_testlib import RawConn, build_request, http_request
from recording_upstream import Response

TOKEN = "caller-token-err"
AUTH = [("Authorization", f"Bearer {TOKEN}")]
QUERY_BODY = b'{"rank_by":["id","asc"],"top_k":1}'


def req(gw, method, path, **kw):
    kw.setdefault("token", TOKEN)
    return http_request(gw, method, path, **kw)


def assert_gateway_error(r, status, kind):
    assert r.status == status, r
    assert r.content_type.startswith("application/json"), r
    j = r.json()
    assert j["error"] == kind, j
    assert isinstance(j.get("message"), str) and j["message"], j
    return j


def assert_nothing_forwarded_before_a_marker(gw, upstream):
    """Sends a marker request after a refused one and waits for it upstream: it must be the first
    request the upstream saw, so the refused one was not forwarded before it (an event to wait
    for, instead of waiting a while for something that should not happen)."""
    assert req(gw, "GET", "/v1/namespaces").status == 200
    got = upstream.wait_for_requests(1)
    assert [(u.method, u.target) for u in got] == [("GET", "/v1/namespaces")], got


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# ---- upstream failures ------------------------------------------------------------------------
def test_upstream_connection_refused_is_502(start_gateway):
    gw = start_gateway(f"http://127.0.0.1:{free_port()}", "--upstream-connect-timeout-ms", "2000")
    t0 = time.monotonic()
    r = req(gw, "POST", "/v2/namespaces/x/query", body=QUERY_BODY)
    assert_gateway_error(r, 502, "upstream_error")
    assert time.monotonic() - t0 < 10
    # and again on the same path (no cached broken state)
    assert_gateway_error(req(gw, "GET", "/v1/namespaces"), 502, "upstream_error")


def test_upstream_silent_is_502_within_timeout(upstream, start_gateway):
    upstream.set_rule(Response(silent=True))
    gw = start_gateway(upstream, "--upstream-timeout-ms", "1000")
    t0 = time.monotonic()
    r = req(gw, "POST", "/v2/namespaces/x/query", body=QUERY_BODY, timeout=30)
    elapsed = time.monotonic() - t0
    j = assert_gateway_error(r, 502, "upstream_error")
    assert "did not answer within 1000 ms" in j["message"], j  # the response timeout fired
    assert elapsed < 10 * 1.0, f"502 took {elapsed:.2f}s with --upstream-timeout-ms 1000"
    # the gateway is still healthy and serves the next request once upstream answers again
    upstream.set_rule(Response())
    assert req(gw, "GET", "/v1/namespaces").status == 200


def test_upstream_silent_after_accepting_then_recovers_on_new_connection(upstream, start_gateway):
    """A timed-out upstream connection must not be put back in the pool."""
    state = {"n": 0}

    def rule(rq):
        state["n"] += 1
        return Response(silent=True) if state["n"] == 1 else Response()
    upstream.set_rule(rule)
    gw = start_gateway(upstream, "--upstream-timeout-ms", "800")
    assert_gateway_error(req(gw, "GET", "/v1/namespaces", timeout=30), 502, "upstream_error")
    for _ in range(3):
        assert req(gw, "GET", "/v1/namespaces").status == 200


def test_upstream_garbage_answer_is_502(upstream, start_gateway):
    upstream.set_rule(Response(raw=b"THIS IS NOT HTTP\r\n\r\n", close=True))
    gw = start_gateway(upstream, "--upstream-timeout-ms", "3000")
    assert_gateway_error(req(gw, "GET", "/v1/namespaces"), 502, "upstream_error")


def test_upstream_closes_mid_body_is_502(upstream, start_gateway):
    upstream.set_rule(Response(
        raw=b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"ro",
        close=True))
    gw = start_gateway(upstream, "--upstream-timeout-ms", "3000")
    r = None
    try:
        r = req(gw, "GET", "/v1/namespaces")
    except Exception:
        return  # an aborted client response is acceptable once headers were relayed
    assert r.status == 502 or len(r.body) != 100, r


# ---- upstream status relay --------------------------------------------------------------------
@pytest.mark.parametrize("status,headers,body", [
    (200, [("Content-Type", "application/json")], b'{"rows":[]}'),
    (202, [("Content-Type", "application/json")], b'{"status":"ACCEPTED","message":"cache warm hint accepted"}'),
    (400, [("Content-Type", "application/json")], b'{"status":"error","error":"filter error in key `tags`"}'),
    (400, [("Content-Type", "text/plain; charset=utf-8")], b"Invalid URL: something upstream"),
    (404, [("Content-Type", "application/json")], "{\"status\":\"error\",\"error\":\"\U0001f937 namespace 'x' was not found\"}".encode()),
    (422, [("Content-Type", "application/json")], b'{"status":"error","error":"Failed to deserialize the JSON body"}'),
    (429, [("Content-Type", "application/json"), ("Retry-After", "7")], b'{"status":"error","error":"write backpressure"}'),
    (500, [("Content-Type", "application/json")], b'{"status":"error","error":"internal"}'),
    (503, [("Content-Type", "application/json"), ("Retry-After", "1")], b'{"status":"error","error":"unavailable"}'),
])
def test_upstream_status_relayed_verbatim(upstream, start_gateway, status, headers, body):
    upstream.set_rule(Response(status=status, headers=headers, body=body))
    gw = start_gateway(upstream)
    r = req(gw, "POST", "/v2/namespaces/x/query", body=QUERY_BODY)
    assert r.status == status
    assert r.body == body
    assert r.header("content-type") == dict(headers)["Content-Type"]
    if "Retry-After" in dict(headers):
        assert r.header("retry-after") == dict(headers)["Retry-After"]


def test_upstream_204_relayed(upstream, start_gateway):
    upstream.set_rule(Response(status=204, headers=[], body=b""))
    gw = start_gateway(upstream)
    r = req(gw, "DELETE", "/v2/namespaces/x")
    assert r.status == 204
    assert r.body == b""


def test_upstream_chunked_response_relayed(upstream, start_gateway):
    body = b'{"namespaces":[{"id":"a"},{"id":"b"}]}'
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    upstream.set_rule(Response(raw=b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                   b"Transfer-Encoding: chunked\r\n\r\n" + chunked))
    gw = start_gateway(upstream)
    r = req(gw, "GET", "/v1/namespaces")
    assert r.status == 200
    assert r.body == body


# ---- body sizes ---------------------------------------------------------------------------------
def test_64mib_body_forwarded_byte_for_byte(upstream, start_gateway):
    blob = base64.b64encode(os.urandom(48 << 20))  # 64 MiB of base64
    body = b'{"ids":[1],"attributes":{"blob":["' + blob + b'"]}}'
    assert len(body) > 64 << 20
    want = hashlib.sha256(body).hexdigest()
    gw = start_gateway(upstream)
    r = req(gw, "POST", "/v1/namespaces/big", body=body, timeout=60)
    assert r.status == 200, r
    u = upstream.wait_for_requests(1, timeout=30)[0]
    assert len(u.body) == len(body)
    assert u.sha256 == want


def _send_and_read(port, head: bytes, body_iter, method="POST"):
    """Sends head then body chunks from a thread (ignoring write errors) and reads a response."""
    c = RawConn(port, timeout=20)
    errors = []

    def writer():
        try:
            c.send(head)
            for chunk in body_iter:
                c.send(chunk)
        except OSError as e:
            errors.append(e)
    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        r = c.read_response(method)
    finally:
        t.join(timeout=20)
        c.close()
    return r


def test_body_over_limit_is_413_and_not_forwarded(upstream, start_gateway):
    gw = start_gateway(upstream, "--max-body-bytes", str(1 << 20))
    n = 2 << 20
    head = build_request("POST", "/v1/namespaces/big", AUTH + [
        ("Content-Type", "application/json"), ("Content-Length", str(n))])
    r = _send_and_read(gw.port, head, (b"a" * 65536 for _ in range(n // 65536)))
    assert_gateway_error(r, 413, "payload_too_large")
    assert_nothing_forwarded_before_a_marker(gw, upstream)


def test_chunked_body_over_limit_is_413_and_not_forwarded(upstream, start_gateway):
    gw = start_gateway(upstream, "--max-body-bytes", str(1 << 20))
    head = build_request("POST", "/v2/namespaces/big", AUTH + [
        ("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")])
    chunk = b"a" * 65536
    chunks = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 40 + [b"0\r\n\r\n"]
    r = _send_and_read(gw.port, head, iter(chunks))
    assert_gateway_error(r, 413, "payload_too_large")
    assert_nothing_forwarded_before_a_marker(gw, upstream)


def test_body_at_limit_is_forwarded(upstream, start_gateway):
    gw = start_gateway(upstream, "--max-body-bytes", str(1 << 20))
    body = b"b" * (1 << 20)
    r = req(gw, "POST", "/v1/namespaces/big", body=body)
    assert r.status == 200
    assert upstream.wait_for_requests(1)[0].body == body


def test_chunked_request_body_forwarded(upstream, start_gateway):
    gw = start_gateway(upstream)
    body = b'{"rank_by":["id","asc"],"top_k":1}'
    data = build_request("POST", "/v2/namespaces/chunky/query", AUTH + [
        ("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")])
    data += b"5\r\n" + body[:5] + b"\r\n" + b"%x\r\n" % (len(body) - 5) + body[5:] + b"\r\n0\r\n\r\n"
    with RawConn(gw.port) as c:
        c.send(data)
        r = c.read_response("POST")
    assert r.status == 200
    assert upstream.wait_for_requests(1)[0].body == body


def test_expect_100_continue(upstream, start_gateway):
    gw = start_gateway(upstream)
    body = b'{"rank_by":["id","asc"],"top_k":42}'
    head = build_request("POST", "/v2/namespaces/expect/query", AUTH + [
        ("Content-Type", "application/json"), ("Content-Length", str(len(body))),
        ("Expect", "100-continue")])
    with RawConn(gw.port) as c:
        c.send(head)
        status, _, _ = c.read_head()
        assert status == 100
        c.send(body)
        r = c.read_response("POST")
    assert r.status == 200
    assert r.body == b'{"ok":true}'
    assert upstream.wait_for_requests(1)[0].body == body


def test_expect_100_continue_over_limit_gets_413(upstream, start_gateway):
    gw = start_gateway(upstream, "--max-body-bytes", "1000")
    head = build_request("POST", "/v2/namespaces/expect", AUTH + [
        ("Content-Type", "application/json"), ("Content-Length", "5000"),
        ("Expect", "100-continue")])
    with RawConn(gw.port) as c:
        c.send(head)
        status, _, headers = c.read_head()
        if status == 100:  # allowed, though pointless: then the body follows
            c.send(b"x" * 5000)
            status, _, headers = c.read_head()
        assert status == 413
    assert upstream.requests == []


# ---- malformed requests, header size and timeouts -----------------------------------------------
@pytest.mark.parametrize("data,statuses", [
    (b"GARBAGE\r\n\r\n", (400,)),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64 + b"\r\n\r\n", (400,)),
    (b"GET /v1/namespaces HTTP/9.9\r\nHost: x\r\n\r\n", (400, 505)),
    (b"GET /v1/namespaces HTTP/1.1\r\nHost x-no-colon\r\n\r\n", (400,)),
    (b"POST /v2/namespaces/a/query HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", (400,)),
    (b"POST /v2/namespaces/a/query HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
     b"Content-Length: 6\r\n\r\n123456", (400,)),
], ids=["garbage-line", "tls-hello", "http-9.9", "header-no-colon", "bad-content-length",
        "conflicting-content-length"])
def test_malformed_request_400_and_closed(upstream, start_gateway, data, statuses):
    gw = start_gateway(upstream)
    with RawConn(gw.port, timeout=10) as c:
        c.send(data)
        r = c.read_response()
        assert r.status in statuses, r
        assert c.closed_by_peer(5), "connection not closed after a malformed request"
    assert upstream.requests == []
    # gateway still serves
    assert req(gw, "GET", "/v1/namespaces").status == 200


def test_oversized_headers_431(upstream, start_gateway):
    gw = start_gateway(upstream, "--max-header-bytes", "8192")
    data = build_request("GET", "/v1/namespaces", AUTH + [("X-Big", "a" * 16384)])
    with RawConn(gw.port) as c:
        c.send(data)
        r = c.read_response()
    assert r.status == 431, r
    assert upstream.requests == []
    # a head under the limit still works
    data = build_request("GET", "/v1/namespaces", AUTH + [("X-Big", "a" * 2048)])
    with RawConn(gw.port) as c:
        c.send(data)
        assert c.read_response().status == 200


def test_oversized_headers_default_limit_431(upstream, start_gateway):
    gw = start_gateway(upstream)
    hdrs = AUTH + [(f"X-H{i}", "v" * 1000) for i in range(70)]  # ~72 KB > 64 KiB
    with RawConn(gw.port) as c:
        try:
            c.send(build_request("GET", "/v1/namespaces", hdrs))
        except OSError:
            pass
        r = c.read_response()
    assert r.status == 431, r
    assert upstream.requests == []


def test_head_sent_byte_by_byte(upstream, start_gateway):
    gw = start_gateway(upstream, "--header-timeout-ms", "5000")
    body = b'{"top_k":1}'
    data = build_request("POST", "/v2/namespaces/slowhead/query",
                         AUTH + [("Content-Type", "application/json")], body)
    with RawConn(gw.port) as c:
        for i in range(len(data)):
            c.send(data[i:i + 1])
            time.sleep(0.002)
        r = c.read_response("POST")
    assert r.status == 200
    u = upstream.wait_for_requests(1)[0]
    assert u.target == "/v2/namespaces/slowhead/query"
    assert u.body == body


def test_stalled_head_disconnected_after_header_timeout(upstream, start_gateway):
    gw = start_gateway(upstream, "--header-timeout-ms", "500")
    with RawConn(gw.port) as c:
        c.send(b"GET /v1/namespaces HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        assert c.closed_by_peer(0.5 + 4.5), "stalled client was not disconnected"
        assert time.monotonic() - t0 < 5.0
    assert upstream.requests == []


def test_trickling_head_disconnected_after_header_timeout(upstream, start_gateway):
    """The header timeout bounds the whole head, not the gap between bytes (slowloris)."""
    gw = start_gateway(upstream, "--header-timeout-ms", "500")
    with RawConn(gw.port) as c:
        c.send(b"GET /v1/namespaces HTTP/1.1\r\n")
        t0 = time.monotonic()
        closed = False
        while time.monotonic() - t0 < 5.0:
            try:
                c.send(b"X")
            except OSError:
                closed = True
                break
            if c.closed_by_peer(0.1):
                closed = True
                break
        assert closed, "a client trickling header bytes was never disconnected"
    assert upstream.requests == []


def test_idle_connection_before_first_request_closed(upstream, start_gateway):
    gw = start_gateway(upstream, "--header-timeout-ms", "500", "--idle-timeout-ms", "500")
    with RawConn(gw.port) as c:
        assert c.closed_by_peer(5.0), "silent client connection never closed"


def test_stalled_body_disconnected_after_body_timeout(upstream, start_gateway):
    gw = start_gateway(upstream, "--body-timeout-ms", "500")
    head = build_request("POST", "/v2/namespaces/a/query", AUTH + [
        ("Content-Type", "application/json"), ("Content-Length", "100")])
    with RawConn(gw.port) as c:
        c.send(head + b'{"top_k"')
        assert c.closed_by_peer(5.0), "stalled body was not timed out"
    # nothing complete was forwarded
    for u in upstream.requests:
        assert len(u.body) != 100


def test_keepalive_idle_timeout_closes_connection(upstream, start_gateway):
    gw = start_gateway(upstream, "--idle-timeout-ms", "500")
    with RawConn(gw.port) as c:
        c.send(build_request("GET", "/v1/namespaces", AUTH))
        assert c.read_response().status == 200
        assert c.closed_by_peer(5.0), "idle keep-alive connection never closed"


def test_upstream_connect_timeout_is_502(start_gateway):
    """A connect that never completes (listener with a full backlog) fails after
    --upstream-connect-timeout-ms, not after the much longer --upstream-timeout-ms."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(0)
    port = hole.getsockname()[1]
    fillers = []
    try:
        for _ in range(3):  # fill the accept backlog; further SYNs are dropped
            f = socket.socket()
            f.settimeout(0.3)
            try:
                f.connect(("127.0.0.1", port))
            except OSError:
                pass
            fillers.append(f)
        gw = start_gateway(f"http://127.0.0.1:{port}", "--upstream-connect-timeout-ms", "500",
                           "--upstream-timeout-ms", "30000")
        t0 = time.monotonic()
        r = req(gw, "GET", "/v1/namespaces", timeout=60)
        elapsed = time.monotonic() - t0
        assert_gateway_error(r, 502, "upstream_error")
        assert elapsed < 0.5 + 5.0, f"connect timeout 500 ms but 502 came after {elapsed:.1f}s"
    finally:
        for f in fillers:
            f.close()
        hole.close()


def test_absolute_form_target_is_not_an_open_proxy(upstream, make_upstream, start_gateway):
    other = make_upstream()
    gw = start_gateway(upstream)
    data = build_request("GET", f"http://127.0.0.1:{other.port}/v1/namespaces", AUTH,
                         host=f"127.0.0.1:{other.port}")
    with RawConn(gw.port) as c:
        c.send(data)
        try:
            r = c.read_response()
        except ConnectionError:
            r = None
    assert other.connections_accepted == 0 and other.requests == []
    if r is not None and r.status == 200:  # absolute-form mapped onto the configured upstream
        assert [u.target for u in upstream.requests] == ["/v1/namespaces"]


def test_connect_method_is_not_tunnelled(upstream, make_upstream, start_gateway):
    other = make_upstream()
    gw = start_gateway(upstream)
    data = (f"CONNECT 127.0.0.1:{other.port} HTTP/1.1\r\nHost: 127.0.0.1:{other.port}\r\n"
            f"Authorization: Bearer {TOKEN}\r\n\r\n").encode()
    with RawConn(gw.port) as c:
        c.send(data)
        try:
            r = c.read_response()
            assert r.status >= 400, r
        except ConnectionError:
            pass
    assert_nothing_forwarded_before_a_marker(gw, upstream)
    assert other.connections_accepted == 0


def test_very_long_target_rejected_cleanly(upstream, start_gateway):
    gw = start_gateway(upstream)
    target = "/v2/namespaces/a/query?x=" + "y" * 100_000
    with RawConn(gw.port) as c:
        try:
            c.send(build_request("POST", target, AUTH, b"{}"))
        except OSError:
            pass
        r = c.read_response()
    assert r.status in (400, 414, 431), r
    assert upstream.requests == []
    assert req(gw, "GET", "/v1/namespaces").status == 200
