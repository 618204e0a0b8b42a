"""Warm lifecycle integration tests (issue [4/4]): large warms for every id type, concurrent
writes/deletes during a warm, every combination of the hint_cache_warm step booleans, and finished
jobs surviving a gateway restart.

docs/design.md §5 and §6.4 (src/gateway/warm.h, src/jobs/warm_runner.h,
src/gateway/hint_cache_warm.h). Helpers come from test_warm_support / test_cache_support /
test_hint_cache_warm.
"""

from __future__ import annotations

import itertools
import random
import threading
import time

import pytest

from test_cache_support import (Stack, clear_origin_faults, fetch, fetch_batch, query, req,  # noqa: F401
                                slow_counted_origin_queries, stack, stack_factory, strip_reserved,
                                wait_origin_queries_answered, write)
from test_hint_cache_warm import assert_report, hint
from test_warm_support import (assert_job_shape, attrs_for, cancel_job, job, list_jobs, seed_origin,
                               slow_origin_queries, start_warm, wait_job)

# 50,000 documents per id type. Measured on 2 shared cores: seeding 50k rows in 5,000-row writes
# plus a page_size 5000 warm and a 2,000-id sampled batch fetch takes a few seconds per id type.
N_DOCS = 50_000
SEED_BATCH = 5_000
WARM_PAGE = 5_000
SAMPLE = 2_000


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One origin (--test-faults) and one gateway shared by the tests of this module; every test
    uses its own namespaces and clears any origin fault it sets."""
    s = Stack(tmp_path_factory.mktemp("wlc"))
    yield s
    s.close()


@pytest.fixture
def st(shared):
    yield shared
    clear_origin_faults(shared.origin)


def metadata(target, ns: str) -> dict:
    r = req(target, "GET", f"/v2/namespaces/{ns}/metadata")
    assert r.status == 200, r
    return r.json()


def uuid_id(i: int) -> str:
    return f"6ba7b810-9dad-41d1-80b4-{i:012x}"


def ids_for(kind: str, n: int):
    if kind == "u64":
        return list(range(1, n + 1))
    if kind == "string":
        return [f"doc-{i:06d}" for i in range(n)]
    return [uuid_id(i) for i in range(1, n + 1)]


def seed_rows(origin, ns: str, ids, schema=None, batch: int = SEED_BATCH) -> None:
    for i in range(0, len(ids), batch):
        body = {"upsert_rows": [attrs_for(x) | {"id": x} for x in ids[i:i + batch]]}
        if schema and i == 0:
            body["schema"] = schema
        r = write(origin, ns, body)
        assert r.status == 200, r


def origin_truth(origin, ns: str) -> dict:
    """Every document the origin has in `ns` (id → attributes without reserved ones), paged by id."""
    out, last = {}, None
    while True:
        body = {"rank_by": ["id", "asc"], "top_k": 1000, "include_attributes": True}
        if last is not None:
            body["filters"] = ["id", "Gt", last]
        r = query(origin, ns, body)
        assert r.status == 200, r
        rows = r.json()["rows"]
        for row in rows:
            out[row["id"]] = strip_reserved({k: v for k, v in row.items()
                                             if k not in ("id", "$dist", "vector")})
        if len(rows) < 1000:
            return out
        last = rows[-1]["id"]


# ---------------------------------------------------------------------------------------------
# (1) Warm lifecycle on 50k documents for each id type
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind,schema", [("u64", None), ("string", None), ("uuid", {"id": "uuid"})])
def test_large_warm_covers_every_document_once_and_serves_hits(st, kind, schema):
    o, g = st.origin, st.gw
    ns = f"wlc_big_{kind}"
    ids = ids_for(kind, N_DOCS)
    seed_rows(o, ns, ids, schema)

    r = start_warm(g, ns, WARM_PAGE)
    assert r.status == 202, r
    j0 = r.json()
    assert_job_shape(j0, ns)
    assert j0["page_size"] == WARM_PAGE, j0
    j, polls = wait_job(g, ns, j0["id"], timeout=30, interval=0.05)
    assert j["status"] == "completed", j
    assert j["documents_scanned"] == N_DOCS, j  # every document exactly once
    assert j["progress"] == 1 and j["cache_errors"] == 0, j
    assert_job_shape(j, ns)

    # Progress is monotonic, below 1 while running, and checkpoints are whole pages.
    for a, b in zip(polls, polls[1:]):
        assert b["progress"] >= a["progress"], (a, b)
        assert b["documents_scanned"] >= a["documents_scanned"], (a, b)
    for p in polls:
        if p["status"] == "running":
            assert 0 <= p["progress"] < 1, p
            assert p["documents_scanned"] % WARM_PAGE == 0 and p["documents_scanned"] <= N_DOCS, p

    # A spread sample (first and last included) is served from the cache with the right attributes.
    step = N_DOCS // SAMPLE
    sample = ids[::step][:SAMPLE - 1] + [ids[-1]]
    for i in range(0, len(sample), 1000):
        chunk = sample[i:i + 1000]
        r = fetch_batch(g, ns, chunk, timeout=30)
        assert r.status == 200, r
        body = r.json()
        assert body["missing"] == [], body["missing"][:10]
        got = {d["id"]: strip_reserved(d["attributes"]) for d in body["documents"]}
        assert len(body["documents"]) == len(chunk), (len(body["documents"]), len(chunk))
        assert sorted(got, key=str) == sorted(chunk, key=str), kind
        for x in chunk:
            assert got[x] == attrs_for(x), (x, got[x])
        assert r.header("x-layer-cache") == "hit", (kind, chunk[:3], r.header("x-layer-cache"))

    # cache_warmed_through moved to the job's stable_as_of (the origin has no index lag).
    sao = j.get("stable_as_of")
    assert type(sao) is int, j
    layer = metadata(g, ns)["layer"]
    assert layer["cache_state"] == "warm", layer
    assert layer["cache_warmed_through"] == sao, (layer, j)


# ---------------------------------------------------------------------------------------------
# (2) Concurrent writes and deletes during a warm
# ---------------------------------------------------------------------------------------------
def test_concurrent_writes_and_deletes_during_a_warm_leave_nothing_stale(st):
    o, g = st.origin, st.gw
    ns = "wlc_concurrent"
    total, page = 2000, 100
    seed_origin(o, ns, range(1, total + 1), batch=1000)
    slow_origin_queries(o, 100)  # 20+ pages × 100 ms: the warm takes a few seconds

    r = start_warm(g, ns, page)
    assert r.status == 202, r
    jid = r.json()["id"]

    rnd = random.Random(4)
    deleted, rewritten = set(), set()
    errors = []
    stop = threading.Event()

    def writer():
        """Upserts new versions and deletes ids all over the range (behind, at and ahead of the
        cursor) until the job stops running."""
        v = 0
        try:
            while not stop.is_set():
                v += 1
                up = rnd.sample(range(1, total + 200), 8)  # includes ids the origin never had
                dl = rnd.sample(range(1, total + 1), 2)
                up = [x for x in up if x not in dl]
                rr = write(g, ns, {"upsert_rows": [{"id": x, "title": f"v{v} {x}", "n": -v}
                                                   for x in up], "deletes": dl})
                if rr.status != 200:
                    errors.append(rr)
                    return
                rewritten.update(up)
                rewritten.difference_update(dl)
                deleted.difference_update(up)
                deleted.update(dl)
                time.sleep(0.03)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        j, polls = wait_job(g, ns, jid, timeout=40, interval=0.1)
    finally:
        stop.set()
        t.join(10)
    assert not errors, errors
    running = [p for p in polls if p["status"] == "running"]
    assert len(running) >= 5, f"the warm was too fast to overlap the writes: {polls[-1]}"
    assert j["status"] == "completed" and j["cache_errors"] == 0, j
    assert deleted and rewritten

    # Compare every id (including deleted and never-seeded ones) against the origin.
    clear_origin_faults(o)
    truth = origin_truth(o, ns)
    for x in deleted:
        assert x not in truth, x
    for x in rewritten:
        assert truth[x]["title"].startswith("v"), (x, truth[x])

    all_ids = list(range(1, total + 200))
    stale = []
    for i in range(0, len(all_ids), 1000):
        chunk = all_ids[i:i + 1000]
        r = fetch_batch(g, ns, chunk, timeout=30)
        assert r.status == 200, r
        body = r.json()
        got = {d["id"]: strip_reserved(d["attributes"]) for d in body["documents"]}
        for x in chunk:
            want = truth.get(x)
            if want is None:
                if x in got:
                    stale.append((x, "resurrected", got[x]))
            elif got.get(x) != want:
                stale.append((x, want, got.get(x)))
    assert not stale, f"{len(stale)} documents differ from the origin, e.g. {stale[:5]}"
    for x in sorted(deleted)[:40]:
        r = fetch(g, ns, x)
        assert r.status == 404, (x, r)


# ---------------------------------------------------------------------------------------------
# (3) All eight combinations of the three step booleans
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tp,docs,snaps", list(itertools.product([True, False], repeat=3)))
def test_hint_cache_warm_every_step_combination(st, tp, docs, snaps):
    o, g = st.origin, st.gw
    ns = f"wlc_hint_{int(tp)}{int(docs)}{int(snaps)}"
    seed_origin(o, ns, range(1, 8))
    qs = f"turbopuffer={str(tp).lower()}&documents={str(docs).lower()}&snapshots={str(snaps).lower()}"
    r = hint(g, ns, qs)
    body = assert_report(r, ns, "completed" if tp else "skipped", "started" if docs else "skipped",
                         "no_snapshot" if snaps else "skipped")
    if docs:
        j0 = body["documents"]["job"]
        assert j0["page_size"] == 1000, j0  # the default
        j, _ = wait_job(g, ns, j0["id"])
        assert j["status"] == "completed" and j["documents_scanned"] == 7, j
        assert [x["id"] for x in list_jobs(g, ns)] == [j0["id"]]
        r = fetch(g, ns, 5)
        assert r.header("x-layer-cache") == "hit", r
    else:
        assert list_jobs(g, ns) == []


# ---------------------------------------------------------------------------------------------
# (4) Retention: finished jobs survive a gateway restart, listed oldest first
# ---------------------------------------------------------------------------------------------
def test_finished_jobs_survive_a_gateway_restart_oldest_first(stack_factory):
    s = stack_factory(origin_args=("--access-log", "true"))
    o = s.origin
    ns = "wlc_retention"
    seed_origin(o, ns, range(1, 201))
    ids = []
    for page in (50, 100):
        r = start_warm(s.gw, ns, page)
        assert r.status == 202, r
        ids.append(r.json()["id"])
        j, _ = wait_job(s.gw, ns, ids[-1])
        assert j["status"] == "completed", j
    # A cancelled one too.
    answered0 = slow_counted_origin_queries(o, 200)
    r = start_warm(s.gw, ns, 10)
    assert r.status == 202, r
    ids.append(r.json()["id"])
    wait_job(s.gw, ns, ids[-1], until=lambda j: j["documents_scanned"] > 0)
    assert cancel_job(s.gw, ns, ids[-1]).status == 200
    wait_origin_queries_answered(o, answered0)  # the page read in flight has come back
    clear_origin_faults(o)

    before = list_jobs(s.gw, ns)
    assert [x["id"] for x in before] == ids, before
    assert [x["status"] for x in before] == ["completed", "completed", "cancelled"], before

    s.gw.sigterm()
    s.gw.wait_exit(10)
    s.start_gateway()

    after = list_jobs(s.gw, ns)
    assert [x["id"] for x in after] == ids, after
    assert after == before, (before, after)
    assert [x["created_at"] for x in after] == sorted(x["created_at"] for x in after), after
    for x in after:
        assert_job_shape(x, ns)
        assert job(s.gw, ns, x["id"]) == x
    # A new warm after the restart is appended at the end.
    r = start_warm(s.gw, ns, 100)
    assert r.status == 202, r
    wait_job(s.gw, ns, r.json()["id"])
    assert [x["id"] for x in list_jobs(s.gw, ns)] == ids + [r.json()["id"]]


def test_a_namespace_delete_cancels_its_warm_and_nothing_comes_back(stack):
    """docs/design.md §4.3: a delete cancels the namespace's running warm, and no page read before
    the delete is cached after it."""
    ns = "wlc_delete_during_warm"
    seed_origin(stack.origin, ns, range(1, 401))
    slow_origin_queries(stack.origin, 100)  # every page takes a while: the delete lands mid-warm
    r = start_warm(stack.gw, ns, page_size=50)
    assert r.status == 202, r
    job_id = r.json()["id"]
    wait_job(stack.gw, ns, job_id, until=lambda j: j["documents_scanned"] > 0)
    r = req(stack.gw, "DELETE", f"/v2/namespaces/{ns}")
    assert r.status in (200, 202), r
    done, _ = wait_job(stack.gw, ns, job_id)
    assert done["status"] == "cancelled", done
    clear_origin_faults(stack.origin)
    # The namespace is gone upstream; whatever the warm had read is not served.
    for doc_id in (1, 50, 200, 400):
        r = fetch(stack.gw, ns, doc_id)
        assert r.status == 404, (doc_id, r)
