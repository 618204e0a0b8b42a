"""Gateway restarts (docs/design.md §3.8): the embedded cache survives a clean stop and is
discarded after an unclean one, so a crash can never serve a stale row."""

from __future__ import annotations

import http.client
import threading

from layer_testlib import wait_until
from test_cache_support import doc, fetch, kill9_and_reap, stack, stack_factory, write  # noqa: F401


def test_kill9_discards_cache_no_stale_row(stack):
    s = stack
    ns = "rs_kill"
    r = write(s.gw, ns, {"upsert_rows": [{"id": i, "v": "v1"} for i in range(1, 4)]})
    assert r.status == 200, r
    for i in range(1, 4):
        r = fetch(s.gw, ns, i)
        assert doc(r) == {"v": "v1"} and r.header("x-layer-cache") == "hit", r
    kill9_and_reap(s.gw)
    # The truth moves on while the gateway is down (another gateway, or a direct write).
    r = write(s.origin, ns, {"upsert_rows": [{"id": 1, "v": "v2"}], "deletes": [2]})
    assert r.status == 200, r
    s.start_gateway()
    r = fetch(s.gw, ns, 1)
    assert r.status == 200 and doc(r) == {"v": "v2"}, f"stale row served after kill -9: {r}"
    assert r.header("x-layer-cache") == "miss", r
    r = fetch(s.gw, ns, 2)
    assert r.status == 404, f"deleted row served after kill -9: {r}"
    r = fetch(s.gw, ns, 3)
    assert doc(r) == {"v": "v1"} and r.header("x-layer-cache") == "miss", r
    # The cache works again after the restart.
    r = fetch(s.gw, ns, 1)
    assert doc(r) == {"v": "v2"} and r.header("x-layer-cache") == "hit", r


def test_clean_stop_keeps_cache(stack):
    s = stack
    ns = "rs_clean"
    r = write(s.gw, ns, {"upsert_rows": [{"id": "a", "v": "v1"}, {"id": "b", "v": "v1"}],
                         "deletes": ["c"]})
    assert r.status == 200, r
    assert fetch(s.gw, ns, "a").header("x-layer-cache") == "hit"
    s.gw.sigterm()
    assert s.gw.wait_exit(15) == 0, s.gw.output()[-2000:]
    s.start_gateway()
    r = fetch(s.gw, ns, "a")
    assert r.status == 200 and doc(r) == {"v": "v1"}, r
    assert r.header("x-layer-cache") == "hit", f"cache not kept across a clean stop: {r}"
    r = fetch(s.gw, ns, "c")
    assert r.status == 404, r
    # Writes after the restart still mirror.
    assert write(s.gw, ns, {"upsert_rows": [{"id": "a", "v": "v2"}]}).status == 200
    r = fetch(s.gw, ns, "a")
    assert doc(r) == {"v": "v2"} and r.header("x-layer-cache") == "hit", r


def test_kill9_after_clean_restart_then_crash_mid_writes(stack):
    """Clean stop, restart, then kill -9 in the middle of a write burst: after the second restart
    every acknowledged write is read back exactly (from upstream: the cache was discarded)."""
    s = stack
    ns = "rs_burst"
    assert write(s.gw, ns, {"upsert_rows": [{"id": 0, "t": -1, "i": -1}]}).status == 200
    s.gw.sigterm()
    assert s.gw.wait_exit(15) == 0
    s.start_gateway()
    acked = {}
    lock = threading.Lock()
    stop = threading.Event()
    gw = s.gw

    def writer(t: int):
        conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
        i = 0
        while not stop.is_set() and i < 2000:
            doc_id = t * 10000 + i + 1  # never 0, the id every write patches
            try:
                r = write(gw, ns, {"upsert_rows": [{"id": doc_id, "t": t, "i": i}],
                                   "patch_rows": [{"id": 0, "t": t, "i": i}]}, conn=conn)
            except (OSError, http.client.HTTPException):
                return
            if r.status != 200:
                return
            with lock:
                acked[doc_id] = {"t": t, "i": i}
            i += 1

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(2)]
    for th in threads:
        th.start()

    def acked_count() -> int:
        with lock:
            return len(acked)
    # Mid-burst: both writers are going and some of their writes were acknowledged.
    wait_until(lambda: acked_count() >= 40 and all(th.is_alive() for th in threads), timeout=60,
               what="the write burst to be under way")
    kill9_and_reap(gw)
    stop.set()
    for th in threads:
        th.join(10)
    assert acked
    s.start_gateway()
    sample = sorted(acked)[-40:] + sorted(acked)[:10]
    for doc_id in sample:
        r = fetch(s.gw, ns, doc_id)
        assert r.status == 200 and doc(r) == acked[doc_id], (doc_id, r)
