"""Abusive clients against a real gateway in front of the strict origin (`layer origin --api-key`),
docs/design.md §9.10.

Each test runs a well-behaved client (abuse_support.GoodClient: fetches of one cached document,
alternately on a keep-alive connection and on new ones) through the whole abuse and requires every
one of its answers to be a 200, and that it is served (more answers arrive) while the abuse is at
its height. Abusive clients: thousands of idle connections (as many as the open-file limit
allows, raised to the hard limit), connections over --max-connections, slowloris heads and
bodies, oversize heads and bodies, garbage pipelined on a keep-alive connection. Each must get the
right status with the gateway's JSON error envelope, or a closed connection where HTTP allows no
answer. The gateway's resident memory (VmRSS) may grow by less than 256 MiB.

Waits are for events (a metric, a count of closed connections, the good client's answers); the
only time bounds are generous no-hang bounds. bench/abuse_bench.py prints the same scenario's
figures (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import socket

import pytest

from abuse_support import (DOC_ID, NS, GoodClient, Trickler, close_all, closed_by_peer,
                           connection_cap, count_closed, head, open_idle, raise_fd_limit,
                           read_response, vm_rss)
from layer_testlib import wait_until
from test_cache_support import TOKEN, fetch, metric, stack_factory, write  # noqa: F401

RSS_GROWTH_LIMIT = 256 << 20
BOUND = 120.0  # no-hang bound for every wait
FD_LIMIT = raise_fd_limit()  # before any gateway starts: the gateways inherit the hard limit


def seeded(stack_factory, *gw_args):
    st = stack_factory(gw_args=gw_args, origin_args=("--api-key", TOKEN))
    assert write(st.gw, NS, {"upsert_rows": [{"id": DOC_ID, "v": "x" * 64}]}).status == 200
    assert fetch(st.gw, NS, DOC_ID).header("x-layer-cache") == "hit"
    return st


@pytest.fixture
def good():
    clients = []

    def _start(gw) -> GoodClient:
        c = GoodClient(gw.port, TOKEN)
        c.start()
        c.wait_more(5)
        clients.append(c)
        return c

    yield _start
    for c in clients:
        c.stop()


def assert_envelope(resp, status: int, kind: str) -> None:
    assert resp is not None, f"no answer; expected {status} {kind}"
    assert resp["status"] == status, resp
    assert resp["headers"].get("content-type", "").startswith("application/json"), resp
    body = json.loads(resp["body"])
    assert body["error"] == kind and body["message"], body


def test_thousands_of_idle_connections_are_held_in_bounded_memory(stack_factory, good):
    st = seeded(stack_factory)
    cap = connection_cap(10000, FD_LIMIT)
    # As many as the open-file limits allow, below the gateway's cap (so every one is held):
    # this process keeps ~500 descriptors for itself and the good client.
    n = max(100, min(cap - 100, FD_LIMIT - 500))
    client = good(st.gw)
    rss0 = vm_rss(st.gw.proc.pid)
    socks = open_idle(st.gw.port, n)
    try:
        wait_until(lambda: metric(st.gw, "layer_http_connections") >= n, timeout=BOUND,
                   interval=0.2, what=f"{n} idle connections open at the gateway")
        client.wait_more(20)  # served while every idle connection is held
        rss1 = vm_rss(st.gw.proc.pid)
        assert rss1 - rss0 < RSS_GROWTH_LIMIT, f"RSS grew {(rss1 - rss0) >> 20} MiB for {n} idle"
        assert count_closed(socks) == 0  # held: none was closed
        assert metric(st.gw, "layer_http_connections_shed_total") == 0
    finally:
        close_all(socks)
    wait_until(lambda: metric(st.gw, "layer_http_connections") < 50, timeout=BOUND,
               what="the idle connections to be gone at the gateway")
    client.wait_more(5)
    assert client.stop()["errors"] == 0, client.errors[:5]


def test_connections_over_the_cap_close_the_longest_idle_ones(stack_factory, good):
    cap = 500
    st = seeded(stack_factory, "--max-connections", str(cap))
    client = good(st.gw)
    old = open_idle(st.gw.port, cap)
    wait_until(lambda: metric(st.gw, "layer_http_connections") >= cap - 5, timeout=BOUND,
               what="the first connections open at the gateway")
    new = open_idle(st.gw.port, cap)
    try:
        # Each new connection over the cap closed one that waited longer (the old ones, and now
        # and then the good client's idle keep-alive connection, which it then reopens).
        wait_until(lambda: metric(st.gw, "layer_http_connections_shed_total",
                                  reason="idle_closed") >= cap - 10, timeout=BOUND, interval=0.2,
                   what="idle connections closed over the cap")
        wait_until(lambda: count_closed(old) >= cap - 10, timeout=BOUND, interval=0.2,
                   what="the oldest connections closed by the gateway")
        # Oldest first, whichever I/O thread serves them: a new one is closed only once every
        # old one is (the count over the cap is the good client's few).
        assert count_closed(new) <= 10, (count_closed(old), count_closed(new))
        assert metric(st.gw, "layer_http_connections") <= cap + 2
        assert metric(st.gw, "layer_http_connections_shed_total", reason="refused") == 0
        client.wait_more(20)
    finally:
        close_all(old + new)
    client.wait_more(5)
    # A keep-alive connection closed while idle is the one failure HTTP/1.1 allows a client to
    # see (it retries); the new connections must all have been served.
    assert not [e for e in client.errors if not e.startswith("keep-alive")], client.errors[:5]


def test_over_the_cap_with_nothing_idle_a_new_connection_gets_503(stack_factory):
    cap = 20
    st = seeded(stack_factory, "--max-connections", str(cap), "--body-timeout-ms", "120000")
    # More than `cap` clients, each in the middle of a request body: none of them is idle once
    # its head was read. Those over the cap are refused or close one still idle, until `cap`
    # connections remain, all busy.
    slow = Trickler(st.gw.port, cap + 5,
                    head("POST", f"/v2/namespaces/{NS}/query", TOKEN,
                         "Content-Type: application/json\r\nContent-Length: 100000\r\n"),
                    b" ", bound=BOUND)
    slow.start()
    slow.started_sending.wait(BOUND)

    def probe():
        """A new connection's answer: 503 once every connection is busy. Until then a probe
        closes one still idle (a slow client not read yet) and is answered."""
        with socket.create_connection(("127.0.0.1", st.gw.port), timeout=30) as s:
            s.sendall(head("GET", f"/v2/namespaces/{NS}/documents/{DOC_ID}", TOKEN))
            r = read_response(s, BOUND)
            if r is not None and r["status"] == 503:
                assert closed_by_peer(s, BOUND)
            return r if r is not None and r["status"] == 503 else None

    r = wait_until(probe, timeout=BOUND, interval=0.1, what="a 503 over the cap")
    assert_envelope(r, 503, "too_many_connections")
    assert r["headers"].get("retry-after") == "1", r
    assert r["headers"].get("connection") == "close", r
    slow.halt()  # the slow clients close their connections
    slow.join(BOUND)
    assert set(slow.outcomes.values()) <= {"open", "closed", 503}, slow.outcomes
    wait_until(lambda: fetch(st.gw, NS, DOC_ID).status == 200, timeout=BOUND,
               what="the gateway serving again")
    assert metric(st.gw, "layer_http_connections_shed_total", reason="refused") >= 1


def test_slow_heads_and_bodies_are_cut_off(stack_factory, good):
    st = seeded(stack_factory, "--header-timeout-ms", "2000", "--body-timeout-ms", "3000")
    client = good(st.gw)
    rss0 = vm_rss(st.gw.proc.pid)
    heads = Trickler(st.gw.port, 300,
                     b"POST /v2/namespaces/" + NS.encode() + b"/query HTTP/1.1\r\nHost: x\r\n",
                     b"X-Slowloris: aaaaaaaa\r\n", bound=BOUND)
    # Each body announces the most --max-body-bytes allows (512 MiB): the gateway's memory must
    # follow the bytes that arrive, not the bytes announced.
    bodies = Trickler(st.gw.port, 300,
                      head("POST", f"/v2/namespaces/{NS}/query", TOKEN,
                           f"Content-Type: application/json\r\nContent-Length: {512 << 20}\r\n"),
                      b'{"rank_by":["id","asc"],"top_k":1,"pad":"' + b"z" * 64, bound=BOUND)
    heads.start()
    bodies.start()
    heads.started_sending.wait(BOUND)
    bodies.started_sending.wait(BOUND)
    client.wait_more(20)  # served while 600 clients trickle
    heads.join(BOUND)
    bodies.join(BOUND)
    rss1 = vm_rss(st.gw.proc.pid)
    assert rss1 - rss0 < RSS_GROWTH_LIMIT
    # The head timeout ends a trickled head (408 if the answer gets out, else a closed
    # connection); the body timeout closes a trickled body's connection (the head was answered
    # by nothing yet: HTTP allows no answer in the middle of a request body).
    assert set(heads.outcomes.values()) <= {"closed", 408}, heads.outcomes
    assert set(bodies.outcomes.values()) <= {"closed", 408}, bodies.outcomes
    assert len(heads.outcomes) == len(bodies.outcomes) == 300
    client.wait_more(5)
    assert client.stop()["errors"] == 0, client.errors[:5]


def test_oversize_heads_and_bodies_get_431_and_413(stack_factory, good):
    st = seeded(stack_factory, "--max-body-bytes", str(1 << 20))
    client = good(st.gw)
    rss0 = vm_rss(st.gw.proc.pid)
    socks = []
    try:
        big_head = head("GET", f"/v2/namespaces/{NS}/documents/{DOC_ID}", TOKEN,
                        "".join(f"X-Pad-{i}: {'p' * 1000}\r\n" for i in range(80)))  # ~80 KB
        announced = head("POST", f"/v2/namespaces/{NS}/query", TOKEN,
                         "Content-Type: application/json\r\nContent-Length: 2097152\r\n")
        for i in range(100):
            s = socket.create_connection(("127.0.0.1", st.gw.port), timeout=30)
            socks.append(s)
            try:
                s.sendall(big_head if i % 2 == 0 else announced)
            except OSError:
                pass  # the gateway may answer and close before the whole head is sent
        for i, s in enumerate(socks):
            r = read_response(s, BOUND)
            if i % 2 == 0:
                assert_envelope(r, 431, "header_too_large")
            else:
                assert_envelope(r, 413, "payload_too_large")  # before any body byte was sent
            assert r["headers"].get("connection") == "close", r
            assert closed_by_peer(s, BOUND)
        # A chunked body has no length to refuse up front: it is read until it passes the limit.
        with socket.create_connection(("127.0.0.1", st.gw.port), timeout=30) as s:
            s.sendall(head("POST", f"/v2/namespaces/{NS}/query", TOKEN,
                           "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"))
            chunk = b"10000\r\n" + b"a" * 0x10000 + b"\r\n"
            try:
                for _ in range(64):  # 4 MiB, four times the limit
                    s.sendall(chunk)
            except OSError:
                pass  # closed by the gateway after its answer
            r = read_response(s, BOUND)
            if r is not None:  # the reset of a closed socket may overtake the answer
                assert_envelope(r, 413, "payload_too_large")
        client.wait_more(20)
        assert vm_rss(st.gw.proc.pid) - rss0 < RSS_GROWTH_LIMIT
    finally:
        close_all(socks)
    assert client.stop()["errors"] == 0, client.errors[:5]


def test_garbage_pipelined_after_a_request_on_a_keep_alive_connection(stack_factory, good):
    st = seeded(stack_factory)
    client = good(st.gw)
    valid = head("GET", f"/v2/namespaces/{NS}/documents/{DOC_ID}", TOKEN)
    for garbage in (b"\x00\xff\x16\x03\x01GARBAGE\r\n\r\n",
                    b"GET / HTTP/1.1\r\nNo-Colon-Here\r\n\r\n",
                    b"POST /v2/namespaces/x/query HTTP/1.1\r\nContent-Length: -5\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", st.gw.port), timeout=30) as s:
            s.sendall(valid + garbage + valid)  # the second valid request is never answered
            first = read_response(s, BOUND)
            assert first is not None and first["status"] == 200, first
            assert json.loads(first["body"])["id"] == DOC_ID
            rest = first["extra"]
            s.settimeout(BOUND)
            while True:  # the rest, up to the gateway's close
                data = s.recv(65536)
                if not data:
                    break
                rest += data
            assert rest.startswith(b"HTTP/1.1 400 "), rest
            body = rest.partition(b"\r\n\r\n")[2]
            assert json.loads(body)["error"] == "bad_request", body
    client.wait_more(5)
    assert client.stop()["errors"] == 0, client.errors[:5]
