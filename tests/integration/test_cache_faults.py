"""Cache faults (docs/design.md §8.1 "cache down or slow", §4.1): with the embedded cache
disconnected, failing, slow (30 s against a 200 ms op timeout) or on an unwritable directory,
every fetch still answers the right document within a bounded time, writes still apply
upstream, and once the cache is back nothing stale is served."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import tempfile
import time

import pytest

from layer_testlib import layer_bin
from test_cache_support import (cache_calls, clear_cache_faults, doc, fetch, fetch_batch,  # noqa: F401
                                health_cache,
                                gateway_process, metric, set_cache_faults, stack, stack_factory, start,
                                wait_cache_healthy, write)

# A no-hang bound: about 10x the op timeout (200 ms) plus the upstream read, and far below the
# injected cache latency (30 s), so a fetch that waited for the slow cache cannot pass it.
BOUND_S = 5.0
CACHE_LATENCY_MS = 30_000  # cut short when the fault is cleared (FaultInjectingCache)


def timed(fn, *a, **kw):
    t0 = time.monotonic()
    r = fn(*a, **kw)
    return r, time.monotonic() - t0


def check_fetches_fall_through(gw, ns, expected: dict, absent_id):
    for doc_id, attrs in expected.items():
        r, dt = timed(fetch, gw, ns, doc_id, timeout=10)
        assert r.status == 200, r
        assert r.json() == {"id": doc_id, "attributes": attrs}, r
        assert r.header("x-layer-cache") == "miss-on-error", r
        assert dt < BOUND_S, f"fetch took {dt:.2f}s with the cache down"
    ids = list(expected) + [absent_id]
    r, dt = timed(fetch_batch, gw, ns, ids, timeout=10)
    assert r.status == 200, r
    assert r.json() == {"documents": [{"id": i, "attributes": a} for i, a in expected.items()],
                        "missing": [absent_id]}, r
    assert r.header("x-layer-cache") == "miss-on-error", r
    assert dt < BOUND_S, f"batch fetch took {dt:.2f}s with the cache down"
    # A document absent upstream is still a clean 404 (never 5xx) with the cache down.
    r, dt = timed(fetch, gw, ns, absent_id, timeout=10)
    assert r.status == 404, r
    assert dt < BOUND_S


@pytest.mark.parametrize("fault", ["disconnect", "fail", "latency"])
def test_cache_fault_fetches_and_writes(stack_factory, fault):
    s = stack_factory(gw_args=["--cache-op-timeout-ms", "200"])
    gw = s.gw
    ns = f"cf_{fault}"
    docs = {1: {"v": "one", "n": 1}, 2: {"v": "two", "n": 2}, 3: {"v": "three", "n": 3}}
    r = write(gw, ns, {"upsert_rows": [dict(id=i, **a) for i, a in docs.items()]})
    assert r.status == 200, r
    for i, a in docs.items():  # all cached
        r = fetch(gw, ns, i)
        assert doc(r) == a and r.header("x-layer-cache") == "hit", r
    gen0 = health_cache(gw)["generation"]
    skipped0 = metric(gw, "layer_cache_mirrors_skipped_total")

    if fault == "disconnect":
        set_cache_faults(gw, disconnect=True)
    elif fault == "fail":
        set_cache_faults(gw, fail=True)
    else:
        set_cache_faults(gw, latency_ms=CACHE_LATENCY_MS)

    check_fetches_fall_through(gw, ns, docs, 99)
    h = health_cache(gw)
    assert h["breaker"] in ("open", "half_open", "half-open"), h
    if fault == "disconnect":
        assert h["connected"] is False, h

    # Writes still apply upstream while the cache is down; the gateway must not serve the stale
    # cached copies afterwards.
    t0 = time.monotonic()
    r = write(gw, ns, {"upsert_rows": [{"id": 1, "v": "ONE", "n": 10}],
                       "patch_rows": [{"id": 2, "v": "TWO"}], "deletes": [3]})
    assert r.status == 200, r
    assert time.monotonic() - t0 < BOUND_S
    new = {1: {"v": "ONE", "n": 10}, 2: {"v": "TWO", "n": 2}}
    check_fetches_fall_through(gw, ns, new, 3)
    h = health_cache(gw)
    assert h["pending_invalidations"] >= 1, h
    assert metric(gw, "layer_cache_mirrors_skipped_total") > skipped0
    assert metric(gw, "layer_cache_pending_invalidations") >= 1

    clear_cache_faults(gw)
    h = wait_cache_healthy(gw)
    if fault == "disconnect":
        assert h["generation"] > gen0, h
    for _ in range(2):  # miss then hit: both the new values, never the stale cached ones
        for i, a in new.items():
            r = fetch(gw, ns, i)
            assert r.status == 200 and doc(r) == a, (i, r)
            assert r.header("x-layer-cache") in ("hit", "miss"), r
        r = fetch(gw, ns, 3)
        assert r.status == 404, f"deleted while the cache was down, then resurrected: {r}"
    r = fetch_batch(gw, ns, [1, 2, 3])
    assert r.json() == {"documents": [{"id": i, "attributes": a} for i, a in new.items()],
                        "missing": [3]}, r
    assert r.header("x-layer-cache") == "miss", r  # 3 is missing


def unprivileged_gateway(stack, *extra: str):
    """A gateway on the stack's origin that runs as `nobody`, so file permissions bind it even
    when the tests run as root (root ignores a read-only directory). Its binary copy, work dir and
    data dir live in a fresh temp dir owned by `nobody`. Returns (gateway, data dir, temp dir)."""
    d = tempfile.mkdtemp(prefix="layer-unpriv-")
    binary = os.path.join(d, "layer")
    shutil.copy2(layer_bin(), binary)
    data = os.path.join(d, "gw-data")
    os.makedirs(data)
    pw = pwd.getpwnam("nobody")
    for root, dirs, files in os.walk(d):
        for n in [root] + [os.path.join(root, f) for f in files]:
            os.chown(n, pw.pw_uid, pw.pw_gid)
    g = gateway_process(d, stack.origin.url, data, *extra, name="gw-unpriv")
    g.argv = [shutil.which("setpriv"), f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
              "--clear-groups", binary, *g.argv[1:]]
    start(stack._track(g))
    return g, data, d


def test_cache_directory_unwritable(stack_factory):
    """The cache directory turns read-only under a running gateway. A 1 MiB cache bound keeps
    RocksDB's memtable at 128 KiB, so the writes below force flushes into new files that fail:
    from then on RocksDB refuses writes. Fetches must never serve the version the cache still
    holds, and once the directory is writable again the cache recovers."""
    cache_args = ("--cache-max-bytes", "1048576", "--cache-op-timeout-ms", "200")
    owned_dir = None
    if os.geteuid() == 0:
        stack = stack_factory()
        gw, data_dir, owned_dir = unprivileged_gateway(stack, *cache_args)
    else:
        stack = stack_factory(gw_args=cache_args)
        gw, data_dir = stack.gw, stack.gw_data
    cache_dir = os.path.join(data_dir, "cache")
    assert os.path.isdir(cache_dir)
    ns = "cf_dir"
    assert write(gw, ns, {"upsert_rows": [{"id": 1, "v": "one"}]}).status == 200
    assert fetch(gw, ns, 1).header("x-layer-cache") == "hit"
    modes = {}
    for root, dirs, files in os.walk(cache_dir):
        for n in [root] + [os.path.join(root, f) for f in files]:
            modes[n] = os.stat(n).st_mode
    filler = "x" * 2000
    try:
        for n, m in modes.items():
            os.chmod(n, stat.S_IMODE(m) & ~0o222)
        for k in range(8):
            rows = [{"id": 1, "v": f"v{k}"}] + [{"id": 1000 + 100 * k + j, "v": filler}
                                                for j in range(100)]
            r = write(gw, ns, {"upsert_rows": rows})
            assert r.status == 200, r
            r, dt = timed(fetch, gw, ns, 1, timeout=10)
            assert r.status == 200 and doc(r) == {"v": f"v{k}"}, (k, r)
            assert dt < BOUND_S
        errors = metric(gw, "layer_cache_op_errors_total")
        assert errors > 0, "the read-only cache directory never made a cache operation fail"
    finally:
        for n, m in modes.items():
            try:
                os.chmod(n, stat.S_IMODE(m))
            except OSError:
                pass
    try:
        try:
            wait_cache_healthy(gw)
        except AssertionError as e:
            raise AssertionError(f"{e}\ngateway log:\n{gw.output()[-3000:]}") from None
        assert doc(fetch(gw, ns, 1)) == {"v": "v7"}
        r = write(gw, ns, {"upsert_rows": [{"id": 1, "v": "after"}]})
        assert r.status == 200, r
        assert doc(fetch(gw, ns, 1)) == {"v": "after"}
    finally:
        if owned_dir is not None:
            gw.stop()
            shutil.rmtree(owned_dir, ignore_errors=True)


def test_hits_in_memory_skip_the_cache_threads_and_fall_back_to_them(stack):
    """A hit whose record is in memory is read on the I/O thread (op "try_get"); when that read
    declines (forced here, as when the record is only on disk), the hit takes the guarded Get on
    the cache threads and is still a hit."""
    gw = stack.gw
    ns = "cf_try_get"
    assert write(gw, ns, {"upsert_rows": [{"id": 1, "v": "one"}]}).status == 200

    def ok_calls(op):
        return metric(gw, "layer_cache_op_duration_seconds_count", op=op, status="ok")

    try0, get0 = ok_calls("try_get"), ok_calls("get")
    r = fetch(gw, ns, 1)
    assert doc(r) == {"v": "one"} and r.header("x-layer-cache") == "hit", r
    assert ok_calls("try_get") == try0 + 1 and ok_calls("get") == get0
    try:
        set_cache_faults(gw, try_get_would_block=True)
        fallbacks0 = metric(gw, "layer_cache_try_get_fallbacks_total")
        r = fetch(gw, ns, 1)
        assert doc(r) == {"v": "one"} and r.header("x-layer-cache") == "hit", r
        assert ok_calls("get") == get0 + 1 and ok_calls("try_get") == try0 + 1
        assert metric(gw, "layer_cache_try_get_fallbacks_total") == fallbacks0 + 1
        assert health_cache(gw)["breaker"] == "closed"
    finally:
        clear_cache_faults(gw)
    r = fetch(gw, ns, 1)
    assert r.header("x-layer-cache") == "hit", r
    assert ok_calls("try_get") == try0 + 2


def test_cache_faults_route_counts_the_calls_that_reached_the_cache(stack):
    """GET /_test/cache-faults counts, per op, the calls that reached the fault decorator, on
    arrival: a call held by an injected latency is counted while it is still held."""
    gw = stack.gw
    ns = "cf_calls"
    assert write(gw, ns, {"upsert_rows": [{"id": 1, "v": "one"}]}).status == 200
    c0 = cache_calls(gw)
    assert set(c0) >= {"get", "try_get", "multi_get", "put_if_newer_batch", "tombstone"}, c0
    assert all(isinstance(n, int) and n >= 0 for n in c0.values()), c0
    assert write(gw, ns, {"upsert_rows": [{"id": 2, "v": "two"}], "deletes": [1]}).status == 200
    r = fetch(gw, ns, 2)
    assert r.header("x-layer-cache") == "hit", r
    c1 = cache_calls(gw)
    grew = {op: c1[op] - c0[op] for op in c1 if c1[op] != c0[op]}
    # The write's mirror (one put, one tombstone) and the hit read on the I/O thread.
    assert {op: grew.get(op) for op in ("put_if_newer_batch", "tombstone", "try_get")} == \
        {"put_if_newer_batch": 1, "tombstone": 1, "try_get": 1}, grew
    assert "get" not in grew, grew
    try:
        # A read held by the latency answers miss-on-error after the op timeout; it is counted.
        set_cache_faults(gw, latency_ms=CACHE_LATENCY_MS)
        r = fetch(gw, ns, 2)
        assert r.status == 200 and r.header("x-layer-cache") == "miss-on-error", r
        assert cache_calls(gw)["get"] == c1["get"] + 1
    finally:
        clear_cache_faults(gw)
    wait_cache_healthy(gw)
