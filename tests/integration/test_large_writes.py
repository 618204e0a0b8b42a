"""Large writes through the gateway (docs/design.md §4.2.2), against the strict origin
(`layer origin --api-key`).

- One upsert of 100,000 rows: Turbopuffer caps a write request at 512 MB (docs/limits) and not
  its row count, as do the origin and the gateway (--max-body-bytes, 512 MiB by default), so the
  100,000 rows (about 3 MB) go in one request. The gateway mirrors them in batches of 1,000 on the
  cache's bulk lane: the breaker stays closed even when every batch takes longer than the request
  lane's deadline, and health and fetches of another namespace are answered while the mirror
  runs.
- One delete_by_filter that deletes 1,000,000 rows (seeded at the origin directly): past 10,000
  affected ids the gateway invalidates the namespace (one epoch bump, no tombstone per id), the
  breaker stays closed, no deleted document is served from the cache afterwards, and, while the
  delete is applied upstream but not yet answered, fetches of the deleted rows read upstream
  instead of the cache.

Sizes: LAYER_LARGE_UPSERT_ROWS (default 100000) and LAYER_LARGE_DELETE_ROWS (default 1000000,
more than 10000). The full sizes are what CI runs:

    cd tests/integration && LAYER_BIN=$PWD/../../build/layer \
        /usr/bin/python3 -m pytest -q -p no:cacheprovider test_large_writes.py

On the shared 2-vCPU development machine (2026-12-03) the file takes about 16 s: seeding the
1,000,000 rows at the origin 4.6 s (the origin then holds about 600 MB), the held upsert 2.3 s,
the held delete 4.7 s. Unheld, answer times were: the 100,000-row upsert 0.35-0.64 s straight to
the origin and 0.71-1.02 s through the gateway (mirror included); the 1,000,000-row
delete_by_filter 1.1-1.9 s at the origin and 1.4-2.9 s through the gateway (which asks for the
1,000,000 deleted ids, 7 MB of answer, and bumps the epoch once).
"""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from layer_testlib import http_request, metric_sum, wait_until
from test_cache_support import (TOKEN, clear_cache_faults, clear_origin_faults, fetch,  # noqa: F401
                                fetch_batch, health_cache, metrics, query, set_cache_faults,
                                set_origin_faults, stack_factory, write)

UPSERT_ROWS = int(os.environ.get("LAYER_LARGE_UPSERT_ROWS", "100000"))
DELETE_ROWS = int(os.environ.get("LAYER_LARGE_DELETE_ROWS", "1000000"))
MIRROR_BATCH = 1000  # CacheCoherence::kMirrorBatch
MAX_ID_INVALIDATIONS = 10000  # CacheCoherence::kMaxIdInvalidations
OTHER_NS = "large_other"
# No-hang bounds only: every wait ends as soon as its event happens.
BOUND = 120.0


@pytest.fixture
def st(stack_factory):
    return stack_factory(origin_args=("--api-key", TOKEN))


def op_count(samples, op: str, status: str = "ok") -> float:
    return metric_sum(samples, "layer_cache_op_duration_seconds_count", op=op, status=status)


def op_errors(samples) -> float:
    return metric_sum(samples, "layer_cache_op_errors_total")


def breaker_state(samples) -> float:
    return metric_sum(samples, "layer_cache_breaker_state")


def cached_other_namespace(gw) -> None:
    """A few rows of another namespace, written through the gateway and served from its cache."""
    r = write(gw, OTHER_NS, {"upsert_rows": [{"id": i, "o": i} for i in range(1, 11)]})
    assert r.status == 200, r
    assert fetch(gw, OTHER_NS, 1).header("x-layer-cache") == "hit"


def assert_others_served(gw) -> None:
    """Health and fetches of another namespace are answered, from the cache."""
    r = http_request(gw, "GET", "/health", timeout=BOUND)
    assert r.status == 200, r
    assert r.json()["cache"]["breaker"] == "closed", r.json()
    r = fetch(gw, OTHER_NS, 2, timeout=BOUND)
    assert r.status == 200 and r.header("x-layer-cache") == "hit", r
    assert r.json()["attributes"] == {"o": 2}, r
    r = fetch_batch(gw, OTHER_NS, [3, 4, 5], timeout=BOUND)
    assert r.status == 200 and r.header("x-layer-cache") == "hit", r


class Background:
    """A request run on its own thread; `done` is set once it answered (or failed)."""

    def __init__(self, fn):
        self.done = threading.Event()
        self.result = None
        self.error = None

        def run():
            try:
                self.result = fn()
            except Exception as e:  # noqa: BLE001 - reported by the test
                self.error = e
            self.done.set()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def wait(self):
        assert self.done.wait(BOUND), "the request hung"
        assert self.error is None, self.error
        return self.result


def big_write(gw, ns: str, body: dict):
    data = json.dumps(body).encode()
    return http_request(gw, "POST", f"/v2/namespaces/{ns}", data, token=TOKEN, timeout=BOUND)


def origin_has(origin, ns: str, doc_id) -> bool:
    r = query(origin, ns, {"rank_by": ["id", "asc"], "top_k": 1, "filters": ["id", "Eq", doc_id]})
    return r.status == 200 and len(r.json()["rows"]) == 1


def test_a_100k_row_upsert_is_mirrored_in_bounded_batches_on_the_bulk_lane(st, capsys):
    ns = "large_upsert"
    n = UPSERT_ROWS
    cached_other_namespace(st.gw)
    before = metrics(st.gw)
    generation = health_cache(st.gw)["generation"]
    # Every batch put of the mirror takes 1 s: five times the request lane's deadline (200 ms),
    # half the bulk lane's (2 s). Other operations, fetches' reads included, are not slowed.
    set_cache_faults(st.gw, op_latency_ms={"put_if_newer_batch": 1000})
    t0 = time.monotonic()
    rows = [{"id": i, "n": i, "s": f"row-{i}"} for i in range(1, n + 1)]
    upsert = Background(lambda: big_write(st.gw, ns, {"upsert_rows": rows}))

    # The upstream applied the write and the gateway is mirroring it (a first batch came back):
    # with the latency, the remaining batches hold the write's answer until the faults are
    # cleared, and meanwhile the gateway answers other requests.
    wait_until(lambda: origin_has(st.origin, ns, n), timeout=BOUND, what="the upsert upstream")
    wait_until(lambda: op_count(metrics(st.gw), "put_if_newer_batch")
               > op_count(before, "put_if_newer_batch"), timeout=BOUND,
               what="the first mirrored batch")
    assert_others_served(st.gw)
    mid = metrics(st.gw)
    assert not upsert.done.is_set(), "the write was answered before its mirror could finish"
    assert breaker_state(mid) == 0 and op_errors(mid) == op_errors(before)
    # A batch put that took over 0.5 s and succeeded ran on the bulk lane: on the request lane
    # it would have timed out at 200 ms (and opened the breaker).
    slow = (op_count(mid, "put_if_newer_batch") -
            metric_sum(mid, "layer_cache_op_duration_seconds_bucket", op="put_if_newer_batch",
                       status="ok", le="0.5"))
    assert slow >= 1, "no batch put outlived the request lane's deadline"
    clear_cache_faults(st.gw)  # wakes the batch asleep in the latency

    r = upsert.wait()
    elapsed = time.monotonic() - t0
    assert r.status == 200, r
    assert r.json()["rows_upserted"] == n, r.json()
    after = metrics(st.gw)
    # Mirrored in bounded batches: exactly ceil(n / 1000) batch puts, every one of them ok.
    batches = op_count(after, "put_if_newer_batch") - op_count(before, "put_if_newer_batch")
    assert batches == -(-n // MIRROR_BATCH), batches
    assert op_count(after, "put_if_newer_batch", "timeout") == \
        op_count(before, "put_if_newer_batch", "timeout")
    assert op_errors(after) == op_errors(before)
    assert breaker_state(after) == 0
    c = health_cache(st.gw)
    assert c["breaker"] == "closed" and c["generation"] == generation, c
    assert c["pending_invalidations"] == 0, c
    # The rows are served from the cache, as written.
    sample = list(range(1, n + 1, max(1, n // 1000)))[:1000]
    r = fetch_batch(st.gw, ns, sample, timeout=BOUND)
    assert r.status == 200 and r.header("x-layer-cache") == "hit", r
    got = {d["id"]: d["attributes"] for d in r.json()["documents"]}
    assert all(got[i] == {"n": i, "s": f"row-{i}"} for i in sample)
    r = fetch(st.gw, ns, n)
    assert r.status == 200 and r.header("x-layer-cache") == "hit", r
    with capsys.disabled():
        print(f"\nlarge upsert: rows={n} requests=1 mirror_batches={int(batches)} "
              f"batches_over_0.5s_while_held={int(slow)} breaker=closed "
              f"elapsed_with_held_mirror={elapsed:.1f}s")


def seed_origin(origin, ns: str, n: int, chunk: int = 100_000) -> None:
    """Rows 1..n with g=1 (to be deleted), written at the origin directly."""
    for start in range(1, n + 1, chunk):
        rows = [{"id": i, "g": 1} for i in range(start, min(n, start + chunk - 1) + 1)]
        r = http_request(origin, "POST", f"/v2/namespaces/{ns}",
                         json.dumps({"upsert_rows": rows}).encode(), token=TOKEN, timeout=BOUND)
        assert r.status == 200, r


def test_a_delete_by_filter_of_1m_rows_invalidates_the_namespace_once(st, capsys):
    ns = "large_delete"
    n = DELETE_ROWS
    assert n > MAX_ID_INVALIDATIONS, "LAYER_LARGE_DELETE_ROWS must exceed 10000"
    t0 = time.monotonic()
    seed_origin(st.origin, ns, n)
    seeded_in = time.monotonic() - t0
    # Rows the gateway caches: some read through it (backfilled), some written through it, and
    # two that the delete leaves (g=0).
    read_ids = list(range(1, n + 1, max(1, n // 800)))[:800]  # a batch fetch takes 1,000 ids
    written = list(range(n + 1, n + 101))
    keep = [n + 1000, n + 1001]
    r = write(st.gw, ns, {"upsert_rows": [{"id": i, "g": 1} for i in written] +
                          [{"id": i, "g": 0} for i in keep]})
    assert r.status == 200, r
    assert fetch_batch(st.gw, ns, read_ids, timeout=BOUND).status == 200

    def all_cached():
        r = fetch_batch(st.gw, ns, read_ids + written + keep, timeout=BOUND)
        return r.status == 200 and r.header("x-layer-cache") == "hit"

    wait_until(all_cached, timeout=BOUND, what="the rows to be cached")
    cached_other_namespace(st.gw)
    before = metrics(st.gw)

    # The origin applies the delete at once and answers it 3 s later: the delete is in flight.
    set_origin_faults(st.origin, {"write": {"after_apply": "delay", "after_apply_delay_ms": 3000,
                                            "times": 1}})
    t1 = time.monotonic()
    delete = Background(lambda: big_write(st.gw, ns, {"delete_by_filter": ["g", "Eq", 1]}))
    wait_until(lambda: not origin_has(st.origin, ns, read_ids[0]), timeout=BOUND,
               what="the delete upstream")
    # Applied upstream, not answered yet: the cached rows are not served (a query would already
    # miss them), and other requests are answered.
    r = fetch(st.gw, ns, read_ids[0], timeout=BOUND)
    assert r.status == 404, r
    r = fetch_batch(st.gw, ns, written[:10], timeout=BOUND)
    assert r.status == 200 and r.json()["documents"] == [], r
    assert_others_served(st.gw)
    assert not delete.done.is_set(), "the delete was answered before the probes finished"

    r = delete.wait()
    elapsed = time.monotonic() - t1
    clear_origin_faults(st.origin)
    assert r.status == 200, r
    body = r.json()
    assert body["rows_deleted"] == n + len(written), body.get("rows_deleted")
    assert "deleted_ids" not in body  # asked for by the gateway only
    after = metrics(st.gw)
    # One namespace invalidation instead of a tombstone per id.
    assert op_count(after, "bump_epoch") - op_count(before, "bump_epoch") == 1
    assert op_count(after, "tombstone") == op_count(before, "tombstone")
    assert op_errors(after) == op_errors(before) and breaker_state(after) == 0
    c = health_cache(st.gw)
    assert c["breaker"] == "closed" and c["pending_invalidations"] == 0, c

    # No deleted document is served from the cache any more.
    r = fetch_batch(st.gw, ns, read_ids + written, timeout=BOUND)
    assert r.status == 200, r
    assert r.json()["documents"] == [], r.json()["documents"][:3]
    assert len(r.json()["missing"]) == len(read_ids) + len(written)
    for i in (read_ids[0], read_ids[-1], written[0]):
        assert fetch(st.gw, ns, i).status == 404
    # The rows the delete left are read again, then served.
    r = fetch_batch(st.gw, ns, keep)
    assert r.status == 200 and r.header("x-layer-cache") == "miss", r
    assert [d["id"] for d in r.json()["documents"]] == keep
    with capsys.disabled():
        print(f"\nlarge delete_by_filter: rows_deleted={body['rows_deleted']} "
              f"seeded_at_origin_in={seeded_in:.1f}s epoch_bumps=1 tombstones=0 "
              f"breaker=closed elapsed_with_3s_held_answer={elapsed:.1f}s")
