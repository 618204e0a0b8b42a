"""Shared helpers for the warm-job integration tests (test_warm_*.py), plus one smoke test.

Warm jobs (docs/design.md §5; src/gateway/warm.h, src/jobs/warm_runner.h):
`POST /v2/namespaces/{ns}/warm?page_size=N` → 202 WarmJob, polled through
`GET /v2/namespaces/{ns}/warm-jobs/{id}`, listed through `GET …/warm-jobs`, cancelled through
`DELETE …/warm-jobs/{id}`.
"""

from __future__ import annotations

import re
import time
import urllib.parse

from test_cache_support import (clear_origin_faults, req, set_origin_faults, stack,  # noqa: F401
                                stack_factory, write)

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
JOB_KEYS = {"id", "namespace", "status", "progress", "documents_scanned", "created_at",
            "cache_errors", "page_size"}
OPTIONAL_KEYS = {"stable_as_of", "completed_at", "error", "waiting"}


def seed_origin(origin, ns: str, ids, batch: int = 1000) -> None:
    """Writes documents straight to the origin (bypassing the gateway and its cache)."""
    ids = list(ids)
    for i in range(0, len(ids), batch):
        rows = [attrs_for(x) | {"id": x} for x in ids[i:i + batch]]
        r = write(origin, ns, {"upsert_rows": rows})
        assert r.status == 200, r


def attrs_for(doc_id) -> dict:
    return {"title": f"doc {doc_id}", "n": (doc_id if isinstance(doc_id, int) else len(doc_id))}


def warm_path(ns: str, page_size=None) -> str:
    p = f"/v2/namespaces/{ns}/warm"
    if page_size is not None:
        p += "?page_size=" + urllib.parse.quote(str(page_size), safe="")
    return p


def start_warm(gw, ns: str, page_size=None):
    return req(gw, "POST", warm_path(ns, page_size))


def get_job(gw, ns: str, job_id: str):
    return req(gw, "GET", f"/v2/namespaces/{ns}/warm-jobs/{urllib.parse.quote(job_id, safe='')}")


def list_jobs(gw, ns: str):
    r = req(gw, "GET", f"/v2/namespaces/{ns}/warm-jobs")
    assert r.status == 200, r
    body = r.json()
    assert set(body) == {"warm_jobs"}, body
    return body["warm_jobs"]


def cancel_job(gw, ns: str, job_id: str):
    return req(gw, "DELETE", f"/v2/namespaces/{ns}/warm-jobs/{urllib.parse.quote(job_id, safe='')}")


def job(gw, ns: str, job_id: str) -> dict:
    r = get_job(gw, ns, job_id)
    assert r.status == 200, r
    return r.json()


def assert_job_shape(j: dict, ns: str) -> None:
    assert JOB_KEYS <= set(j), j
    assert set(j) <= JOB_KEYS | OPTIONAL_KEYS, j
    assert UUID4.match(j["id"]), j
    assert j["namespace"] == ns, j
    assert j["status"] in ("running", "completed", "failed", "cancelled"), j
    assert isinstance(j["progress"], (int, float)) and 0 <= j["progress"] <= 1, j
    assert isinstance(j["documents_scanned"], int) and j["documents_scanned"] >= 0, j
    assert isinstance(j["cache_errors"], int) and j["cache_errors"] >= 0, j
    assert isinstance(j["page_size"], int), j
    assert RFC3339.match(j["created_at"]), j
    if j.get("completed_at") is not None:
        assert RFC3339.match(j["completed_at"]), j
        assert j["completed_at"] >= j["created_at"], j


def wait_job(gw, ns: str, job_id: str, timeout: float = 15.0, until=None, interval: float = 0.05):
    """Polls the job until `until(job)` (default: no longer running); returns (job, polls)."""
    until = until or (lambda j: j["status"] != "running")
    polls = []
    deadline = time.monotonic() + timeout
    while True:
        j = job(gw, ns, job_id)
        polls.append(j)
        if until(j):
            return j, polls
        if time.monotonic() > deadline:
            raise AssertionError(f"warm job did not reach the condition in {timeout}s: {j}")
        time.sleep(interval)


def slow_origin_queries(origin, latency_ms: int) -> None:
    set_origin_faults(origin, {"query": {"latency_ms": latency_ms}})


# ---------------------------------------------------------------------------------------------
def test_warm_of_an_empty_namespace_completes_with_zero_documents(stack):
    ns = "wsup_empty"
    seed_origin(stack.origin, ns, [1])
    r = write(stack.origin, ns, {"deletes": [1]})
    assert r.status == 200, r
    r = start_warm(stack.gw, ns)
    assert r.status == 202, r
    j0 = r.json()
    assert_job_shape(j0, ns)
    assert j0["page_size"] == 1000, j0  # the default
    j, _ = wait_job(stack.gw, ns, j0["id"])
    assert j["status"] == "completed", j
    assert j["documents_scanned"] == 0 and j["progress"] == 1, j
