"""Warm jobs meeting a failing origin (src/jobs/warm_runner.h, docs/design.md §5.5): transient upstream
errors are retried with backoff; when they persist the job ends failed with an error message;
a namespace missing upstream fails the job; large pages at the top_k ceiling are followed up."""

from __future__ import annotations

import pytest

from test_cache_support import (clear_cache_faults, clear_origin_faults, doc, fetch,  # noqa: F401
                                origin_faults, set_cache_faults, set_origin_faults, stack,
                                stack_factory, strip_reserved)
from test_warm_support import (assert_job_shape, attrs_for, list_jobs, seed_origin, start_warm,
                               wait_job)


# A `times` budget no test spends: what is left of it tells how many queries the rule affected
# (docs/origin.md "Fault injection"), i.e. how many page reads the origin received.
BUDGET = 1000
ATTEMPTS = 5  # per page (docs/design.md §5.5)


def queries_affected(origin) -> int:
    return BUDGET - origin_faults(origin)["query"]["times"]


def assert_failed(j: dict, ns: str) -> None:
    assert_job_shape(j, ns)
    assert j["status"] == "failed", j
    assert isinstance(j.get("error"), str) and j["error"], j
    assert j.get("completed_at"), j
    assert j["progress"] < 1, j
    assert "stable_as_of" not in j, j


@pytest.mark.parametrize("status", [500, 503, 429])
def test_persistent_upstream_errors_fail_the_job_after_retries(stack, status):
    o, g = stack.origin, stack.gw
    ns = f"warm_fail_{status}"
    seed_origin(o, ns, range(1, 101))
    set_origin_faults(o, {"query": {"error_rate": 1, "error_status": status, "times": BUDGET}})
    r = start_warm(g, ns, 10)
    assert r.status == 202, r
    j, _ = wait_job(g, ns, r.json()["id"], timeout=30)
    assert_failed(j, ns)
    assert str(status) in j["error"], j
    assert j["documents_scanned"] == 0, j
    # The first page was read once and retried until the attempts ran out, then the job failed.
    assert queries_affected(o) == ATTEMPTS, origin_faults(o)
    # A later warm with a healthy origin succeeds.
    clear_origin_faults(o)
    r = start_warm(g, ns, 10)
    assert r.status == 202 and r.json()["id"] != j["id"], r
    j2, _ = wait_job(g, ns, r.json()["id"])
    assert j2["status"] == "completed" and j2["documents_scanned"] == 100, j2
    assert [x["status"] for x in list_jobs(g, ns)] == ["failed", "completed"]


def test_upstream_errors_mid_job_fail_it_with_partial_progress(stack):
    o, g = stack.origin, stack.gw
    ns = "warm_fail_mid"
    seed_origin(o, ns, range(1, 501))
    set_origin_faults(o, {"query": {"latency_ms": 100}})
    r = start_warm(g, ns, 50)
    jid = r.json()["id"]
    wait_job(g, ns, jid, until=lambda j: j["documents_scanned"] >= 100)
    set_origin_faults(o, {"query": {"error_rate": 1, "error_status": 500}})
    j, _ = wait_job(g, ns, jid, timeout=12)
    assert_failed(j, ns)
    assert 100 <= j["documents_scanned"] < 500, j
    # What was paged before the failure is cached.
    r = fetch(g, ns, 1)
    assert r.header("x-layer-cache") == "hit" and strip_reserved(doc(r)) == attrs_for(1), r


def test_dropped_connections_fail_the_job(stack):
    o, g = stack.origin, stack.gw
    ns = "warm_fail_drop"
    seed_origin(o, ns, range(1, 11))
    set_origin_faults(o, {"query": {"drop_rate": 1}})
    r = start_warm(g, ns, 5)
    j, _ = wait_job(g, ns, r.json()["id"], timeout=12)
    assert_failed(j, ns)


def test_a_non_transient_upstream_error_fails_at_once(stack):
    o, g = stack.origin, stack.gw
    ns = "warm_fail_400"
    seed_origin(o, ns, range(1, 11))
    set_origin_faults(o, {"query": {"error_rate": 1, "error_status": 400, "times": BUDGET}})
    r = start_warm(g, ns, 5)
    j, _ = wait_job(g, ns, r.json()["id"], timeout=12)
    assert_failed(j, ns)
    assert "400" in j["error"], j
    assert queries_affected(o) == 1, "a 400 is not transient and should not be retried"


def test_a_transient_error_burst_is_retried_and_the_job_completes(stack):
    o, g = stack.origin, stack.gw
    ns = "warm_retry"
    total = 300
    seed_origin(o, ns, range(1, total + 1))
    # The first attempt and the first retry fail; the rule is spent after them.
    set_origin_faults(o, {"query": {"error_rate": 1, "error_status": 503, "times": 2}})
    r = start_warm(g, ns, 100)
    jid = r.json()["id"]
    j, _ = wait_job(g, ns, jid, timeout=12)
    assert j["status"] == "completed", j
    assert j["documents_scanned"] == total and "error" not in j, j
    assert origin_faults(o)["query"]["times"] == 0  # both failures were met and retried


def test_cache_lost_mid_job_fails_it_as_cache_cold(stack):
    o, g = stack.origin, stack.gw
    ns = "warm_fail_cache"
    seed_origin(o, ns, range(1, 101))
    set_origin_faults(o, {"query": {"latency_ms": 100}})
    r = start_warm(g, ns, 10)
    jid = r.json()["id"]
    wait_job(g, ns, jid, until=lambda j: j["documents_scanned"] > 0)
    set_cache_faults(g, disconnect=True)
    try:
        j, _ = wait_job(g, ns, jid, timeout=10)
        assert_failed(j, ns)
        assert j["error"].startswith("cache_cold"), j
        assert 0 < j["documents_scanned"] < 100, j
        r = start_warm(g, ns, 10)
        assert r.status == 503 and r.json()["error"] == "cache_cold", r
    finally:
        clear_cache_faults(g)
    assert [x["id"] for x in list_jobs(g, ns)] == [jid]


def test_namespace_missing_upstream_fails_the_job(stack):
    g = stack.gw
    ns = "warm_missing_ns"
    r = start_warm(g, ns, 10)
    assert r.status == 202, r
    j, _ = wait_job(g, ns, r.json()["id"], timeout=12)
    assert_failed(j, ns)
    assert ns in j["error"], j


def test_page_size_at_the_top_k_ceiling_walks_past_ten_thousand(stack):
    """page_size 10000 asks for top_k 10000 (the ceiling), so a full page needs a follow-up."""
    o, g = stack.origin, stack.gw
    ns = "warm_ceiling"
    total = 10500
    seed_origin(o, ns, range(1, total + 1), batch=3500)
    r = start_warm(g, ns, 10000)
    assert r.status == 202, r
    j, _ = wait_job(g, ns, r.json()["id"], timeout=30)
    assert j["status"] == "completed", j
    assert j["documents_scanned"] == total, j
    for doc_id in (1, 10000, 10001, total):
        r = fetch(g, ns, doc_id)
        assert r.header("x-layer-cache") == "hit", (doc_id, r)
