"""Warm jobs through the gateway (docs/design.md §5):
documents written straight to the origin are cache misses until a warm job pages them into the
cache; the job's wire shape, validation, cache_cold, one running job per namespace, cancel, 404s,
and progress while running."""

from __future__ import annotations

import time

import pytest

from test_cache_support import (clear_cache_faults, clear_origin_faults, doc, fetch, set_cache_faults,  # noqa: F401
                                slow_counted_origin_queries, wait_origin_queries_answered,
                                stack, stack_factory, strip_reserved, write)
from test_warm_support import (assert_job_shape, attrs_for, cancel_job, get_job, job, list_jobs,
                               seed_origin, slow_origin_queries, start_warm, wait_job)


def assert_created_shape(j: dict, ns: str, page_size: int) -> None:
    """The 202 body: the product page's example members, plus cache_errors and page_size."""
    assert_job_shape(j, ns)
    assert j["status"] == "running", j
    assert j["progress"] == 0 and j["documents_scanned"] == 0, j
    assert j["page_size"] == page_size and j["cache_errors"] == 0, j
    assert "completed_at" not in j or j["completed_at"] is None, j
    assert "error" not in j, j


# (1) happy path ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["u64", "string"])
def test_warm_backfills_documents_written_outside_the_gateway(stack, kind):
    o, g = stack.origin, stack.gw
    ns = f"warm_happy_{kind}"
    total = 3000
    ids = list(range(1, total + 1)) if kind == "u64" else [f"sku-{i:05d}" for i in range(total)]
    seed_origin(o, ns, ids)

    # Before the warm: a miss, served from the origin (and pulled through).
    r = fetch(g, ns, ids[0])
    assert r.header("x-layer-cache") == "miss", r
    assert strip_reserved(doc(r)) == attrs_for(ids[0]), r

    r = start_warm(g, ns, 500)
    assert r.status == 202, r
    assert r.content_type.startswith("application/json"), r
    j0 = r.json()
    assert_created_shape(j0, ns, 500)

    j, _ = wait_job(g, ns, j0["id"], timeout=20)
    assert j["status"] == "completed", j
    assert j["id"] == j0["id"] and j["created_at"] == j0["created_at"], (j0, j)
    assert j["documents_scanned"] == total, j
    assert j["progress"] == 1, j
    assert j["completed_at"], j
    assert j["cache_errors"] == 0, j
    assert "error" not in j, j
    if "stable_as_of" in j:
        assert isinstance(j["stable_as_of"], int) and j["stable_as_of"] > 1_600_000_000_000, j
    assert_job_shape(j, ns)
    assert [x["id"] for x in list_jobs(g, ns)] == [j0["id"]]

    # After: hits with the right documents (first, last, and a spread between).
    for doc_id in [ids[1], ids[-1]] + ids[::250]:
        r = fetch(g, ns, doc_id)
        assert r.header("x-layer-cache") == "hit", (doc_id, r)
        assert r.json()["id"] == doc_id, r
        assert strip_reserved(doc(r)) == attrs_for(doc_id), r


U = [f"6ba7b810-9dad-41d1-80b4-{i:012x}" for i in range(1, 41)]


@pytest.mark.parametrize("kind,ids,schema", [
    ("u64", list(range(1, 41)), None),
    ("string", [f"s-{i:03d}" for i in range(40)], None),
    ("uuid", U, {"id": "uuid"}),
    ("uuidish_string", U, None),
])
def test_warm_first_then_fetch_is_a_hit_for_every_id_type(stack, kind, ids, schema):
    """The warm is the namespace's first contact with the gateway (no fetch or write through it
    before), as when bootstrapping a namespace written elsewhere: the documents must still end
    up cached under the keys a fetch looks up."""
    o, g = stack.origin, stack.gw
    ns = f"warm_first_{kind}"
    body = {"upsert_rows": [attrs_for(x) | {"id": x} for x in ids]}
    if schema:
        body["schema"] = schema
    r = write(o, ns, body)
    assert r.status == 200, r
    r = start_warm(g, ns, 15)
    assert r.status == 202, r
    j, _ = wait_job(g, ns, r.json()["id"])
    assert j["status"] == "completed" and j["documents_scanned"] == len(ids), j
    assert j["cache_errors"] == 0, j
    for doc_id in (ids[0], ids[17], ids[-1]):
        r = fetch(g, ns, doc_id)
        assert r.status == 200 and r.json()["id"] == doc_id, r
        assert strip_reserved(doc(r)) == attrs_for(doc_id), r
        assert r.header("x-layer-cache") == "hit", (f"{kind}: document {doc_id} not cached by a "
                                                    f"completed warm job {j}", r)


def test_warm_completion_stable_as_of_and_listing_order(stack):
    """stable_as_of is captured when the origin says the index is up to date; the list is
    oldest first and a finished job does not block a new warm."""
    o, g = stack.origin, stack.gw
    ns = "warm_list"
    seed_origin(o, ns, range(1, 51))
    before = int(time.time() * 1000)
    ids = []
    for _ in range(3):
        r = start_warm(g, ns, 20)
        assert r.status == 202, r
        ids.append(r.json()["id"])
        j, _ = wait_job(g, ns, ids[-1])
        assert j["status"] == "completed" and j["documents_scanned"] == 50, j
        assert isinstance(j.get("stable_as_of"), int), f"stable_as_of missing: {j}"
        assert before - 5000 <= j["stable_as_of"] <= int(time.time() * 1000), j
    assert len(set(ids)) == 3, ids
    listed = list_jobs(g, ns)
    assert [x["id"] for x in listed] == ids, listed
    assert [x["created_at"] for x in listed] == sorted(x["created_at"] for x in listed)
    for x in listed:
        assert_job_shape(x, ns)
    assert list_jobs(g, "warm_list_other") == []


# (2) validation -------------------------------------------------------------------------------
@pytest.mark.parametrize("page_size", ["0", "10001", "abc", "-1", "", "1.5", "99999999999"])
def test_page_size_out_of_range_is_422_and_creates_no_job(stack, page_size):
    ns = "warm_422"
    r = start_warm(stack.gw, ns, page_size)
    assert r.status == 422, r
    body = r.json()
    assert body["error"] == "validation_error", body
    assert body["message"] == "page_size must be between 1 and 10000", body
    assert list_jobs(stack.gw, ns) == []


@pytest.mark.parametrize("page_size", [1, 10000])
def test_page_size_bounds_are_accepted(stack, page_size):
    ns = f"warm_bounds_{page_size}"
    seed_origin(stack.origin, ns, range(1, 6))
    r = start_warm(stack.gw, ns, page_size)
    assert r.status == 202, r
    assert r.json()["page_size"] == page_size, r
    j, _ = wait_job(stack.gw, ns, r.json()["id"])
    assert j["status"] == "completed" and j["documents_scanned"] == 5, j


# (3) cache_cold -------------------------------------------------------------------------------
def test_cache_down_is_503_cache_cold_and_creates_no_job(stack):
    o, g = stack.origin, stack.gw
    ns = "warm_cold"
    seed_origin(o, ns, range(1, 101))
    set_cache_faults(g, disconnect=True)
    try:
        for page_size in (None, 10):
            r = start_warm(g, ns, page_size)
            assert r.status == 503, r
            body = r.json()
            assert body["error"] == "cache_cold", body
            assert body["cache_state"] == "cold", body
            assert isinstance(body.get("message"), str) and body["message"], body
        # Validation still comes first.
        assert start_warm(g, ns, 0).status == 422
        assert list_jobs(g, ns) == []
    finally:
        clear_cache_faults(g)
    deadline = time.monotonic() + 10
    while True:
        r = start_warm(g, ns, 10)
        if r.status == 202 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r.status == 202, r
    j, _ = wait_job(g, ns, r.json()["id"])
    assert j["status"] == "completed" and j["documents_scanned"] == 100, j
    assert [x["id"] for x in list_jobs(g, ns)] == [j["id"]]
    r = fetch(g, ns, 57)
    assert r.header("x-layer-cache") == "hit" and strip_reserved(doc(r)) == attrs_for(57), r


# (4) one running job per namespace ------------------------------------------------------------
def test_second_warm_while_one_runs_returns_the_running_job(stack):
    o, g = stack.origin, stack.gw
    ns, other = "warm_dup", "warm_dup_other"
    seed_origin(o, ns, range(1, 201))
    seed_origin(o, other, range(1, 11))
    slow_origin_queries(o, 200)
    r1 = start_warm(g, ns, 20)
    assert r1.status == 202, r1
    j1 = r1.json()
    r2 = start_warm(g, ns, 50)
    assert r2.status == 202, r2
    j2 = r2.json()
    assert j2["id"] == j1["id"], (j1, j2)
    assert j2["status"] == "running" and j2["page_size"] == 20, j2
    assert [x["id"] for x in list_jobs(g, ns)] == [j1["id"]]
    # Another namespace is independent.
    r3 = start_warm(g, other, 50)
    assert r3.status == 202 and r3.json()["id"] != j1["id"], r3
    clear_origin_faults(o)
    j, _ = wait_job(g, ns, j1["id"])
    assert j["status"] == "completed" and j["documents_scanned"] == 200, j
    # Once finished, a new POST creates a new job.
    r4 = start_warm(g, ns, 50)
    assert r4.status == 202 and r4.json()["id"] != j1["id"], r4
    wait_job(g, ns, r4.json()["id"])
    assert [x["id"] for x in list_jobs(g, ns)] == [j1["id"], r4.json()["id"]]


# (5) cancel -----------------------------------------------------------------------------------
def test_cancel_stops_a_running_job_for_good(stack_factory):
    s = stack_factory(origin_args=("--access-log", "true"))
    o, g = s.origin, s.gw
    ns = "warm_cancel"
    seed_origin(o, ns, range(1, 301))
    answered0 = slow_counted_origin_queries(o, 200)
    r = start_warm(g, ns, 10)
    assert r.status == 202, r
    jid = r.json()["id"]
    wait_job(g, ns, jid, until=lambda j: j["documents_scanned"] > 0)
    r = cancel_job(g, ns, jid)
    assert r.status == 200, r
    c = r.json()
    assert_job_shape(c, ns)
    assert c["id"] == jid and c["status"] == "cancelled", c
    assert c.get("completed_at"), c
    assert c["progress"] < 1, c
    wait_origin_queries_answered(o, answered0)  # the page read in flight has come back
    clear_origin_faults(o)
    j = job(g, ns, jid)
    assert j["status"] == "cancelled", j
    assert j["completed_at"] == c["completed_at"], (c, j)
    assert j["documents_scanned"] < 300 and j["progress"] < 1, j
    # Cancelling again is idempotent; a new warm is a new job and runs to completion.
    r = cancel_job(g, ns, jid)
    assert r.status == 200 and r.json()["status"] == "cancelled", r
    r = start_warm(g, ns, 100)
    assert r.status == 202 and r.json()["id"] != jid, r
    j2, _ = wait_job(g, ns, r.json()["id"])
    assert j2["status"] == "completed" and j2["documents_scanned"] == 300, j2
    assert job(g, ns, jid)["status"] == "cancelled"
    assert [x["status"] for x in list_jobs(g, ns)] == ["cancelled", "completed"]


def test_cancel_of_a_finished_job_leaves_it_as_is(stack):
    o, g = stack.origin, stack.gw
    ns = "warm_cancel_done"
    seed_origin(o, ns, range(1, 11))
    r = start_warm(g, ns)
    j, _ = wait_job(g, ns, r.json()["id"])
    assert j["status"] == "completed", j
    r = cancel_job(g, ns, j["id"])
    assert r.status == 200, r
    assert r.json()["status"] == "completed" and r.json()["progress"] == 1, r
    assert job(g, ns, j["id"]) == j


# (6) 404s -------------------------------------------------------------------------------------
def test_unknown_or_foreign_job_ids_are_404(stack):
    o, g = stack.origin, stack.gw
    seed_origin(o, "warm_a", range(1, 11))
    r = start_warm(g, "warm_a", 5)
    assert r.status == 202, r
    jid = r.json()["id"]
    wait_job(g, "warm_a", jid)
    for ns, bad in (("warm_a", "00000000-0000-4000-8000-000000000000"), ("warm_a", "nope"),
                    ("warm_b", jid)):
        for method in ("GET", "DELETE"):
            r = (get_job if method == "GET" else cancel_job)(g, ns, bad)
            assert r.status == 404, (method, ns, bad, r)
            body = r.json()
            assert body["error"] == "not_found", body
            assert body["message"] == f"Warm job '{bad}' not found", body
    # The DELETE through the wrong namespace did not touch the job.
    assert job(g, "warm_a", jid)["status"] == "completed"


# (9) progress while running ------------------------------------------------------------------
def test_progress_is_monotonic_and_below_one_while_running(stack):
    o, g = stack.origin, stack.gw
    ns = "warm_progress"
    total = 400
    seed_origin(o, ns, range(1, total + 1))
    slow_origin_queries(o, 60)
    r = start_warm(g, ns, 25)
    assert r.status == 202, r
    j, polls = wait_job(g, ns, r.json()["id"], timeout=20, interval=0.03)
    assert j["status"] == "completed" and j["documents_scanned"] == total and j["progress"] == 1, j
    running = [p for p in polls if p["status"] == "running"]
    assert len({p["documents_scanned"] for p in running}) >= 3, running  # saw several checkpoints
    for p in running:
        assert 0 <= p["progress"] < 1, p
        assert p["documents_scanned"] % 25 == 0 and p["documents_scanned"] <= total, p
        assert "completed_at" not in p or p["completed_at"] is None, p
    for a, b in zip(polls, polls[1:]):
        assert b["progress"] >= a["progress"], (a, b)
        assert b["documents_scanned"] >= a["documents_scanned"], (a, b)
    # Progress tracks documents_scanned over the row count.
    mid = [p for p in running if 0 < p["documents_scanned"] < total]
    assert mid, running
    assert any(p["progress"] > 0 for p in mid), mid
    for p in mid:
        assert abs(p["progress"] - p["documents_scanned"] / total) < 0.05, p
