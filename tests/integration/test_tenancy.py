"""Tenancy and background credentials (docs/design.md §9.7) against a strict origin that checks
API keys (`layer origin --api-key`), with the gateway in its default mode for real Turbopuffer:
derive, no upstream key, callers' own keys forwarded. No cached byte reaches a caller the
upstream refuses; a revoked key stops being served within --key-validation-ttl; each key's Layer
state is its own partition, and a write through one key leaves nothing stale in another's; warm
jobs, the hint's documents step and the watcher's polls run with the caller's key, and a job
resumed after kill -9 without one waits, says why, and goes on when its caller comes back."""
from __future__ import annotations

import json
import time

import pytest

from layer_testlib import http_request, wait_until
from test_cache_support import (clear_cache_faults, kill9_and_reap, set_cache_faults,
                                stack_factory, wait_cache_healthy)  # noqa: F401
from test_warm_support import attrs_for, assert_job_shape

K1, K2, BAD = "tenant-one-key", "tenant-two-key", "not-a-key"
SECRET = "only-for-accepted-callers"


def call(gw, method, path, token, body=None, timeout=15.0):
    data = None if body is None else json.dumps(body).encode()
    return http_request(gw, method, path, data, token=token, timeout=timeout)


def fetch(gw, ns, doc_id, token):
    return call(gw, "GET", f"/v2/namespaces/{ns}/documents/{doc_id}", token)


def fetch_batch(gw, ns, ids, token):
    return call(gw, "POST", f"/v2/namespaces/{ns}/documents", token, {"ids": list(ids)})


def write(gw, ns, body, token):
    return call(gw, "POST", f"/v2/namespaces/{ns}", token, body)


def job(gw, ns, jid, token):
    r = call(gw, "GET", f"/v2/namespaces/{ns}/warm-jobs/{jid}", token)
    assert r.status == 200, r
    return r.json()


def wait_job(gw, ns, jid, token, until, timeout=30.0):
    box = {}

    def done():
        box["job"] = job(gw, ns, jid, token)
        return until(box["job"])
    wait_until(done, timeout=timeout, what=f"warm job {jid}")
    return box["job"]


def assert_refused(r):
    """The upstream's own refusal, relayed: 401/403 and nothing of any cached document."""
    assert r.status in (401, 403), r
    assert SECRET.encode() not in r.body, r


@pytest.fixture
def st(stack_factory):
    return stack_factory(gw_args=("--key-validation-ttl", "300ms"),
                         origin_args=("--api-key", K1, "--api-key", K2))


def seed(origin, ns, ids, token=K1):
    for i in range(0, len(ids), 1000):
        rows = [attrs_for(x) | {"id": x} for x in ids[i:i + 1000]]
        r = write(origin, ns, {"upsert_rows": rows}, token)
        assert r.status == 200, r


def test_a_refused_key_gets_the_upstreams_answer_and_no_cached_byte(st):
    ns = "ten_refused"
    assert write(st.gw, ns, {"upsert_rows": [{"id": 1, "s": SECRET}]}, K1).status == 200
    r = fetch(st.gw, ns, 1, K1)
    assert r.status == 200 and r.header("x-layer-cache") == "hit", r
    assert_refused(fetch(st.gw, ns, 1, BAD))
    assert_refused(fetch_batch(st.gw, ns, [1], BAD))
    assert_refused(call(st.gw, "POST", f"/v2/namespaces/{ns}/warm", BAD))
    assert_refused(call(st.gw, "GET", f"/v2/namespaces/{ns}/warm-jobs", BAD))
    assert_refused(call(st.gw, "GET", f"/v1/namespaces/{ns}/hint_cache_warm?documents=true", BAD))
    # The refusal is the origin's own envelope, relayed as it came.
    r = fetch(st.gw, ns, 1, BAD)
    direct = call(st.origin, "GET", f"/v1/namespaces/{ns}/schema", BAD)
    assert (r.status, r.body) == (direct.status, direct.body), (r, direct)


def test_a_revoked_key_stops_being_served_within_the_ttl(st):
    ns = "ten_revoked"
    assert write(st.gw, ns, {"upsert_rows": [{"id": 1, "s": SECRET}]}, K2).status == 200
    r = fetch(st.gw, ns, 1, K2)
    assert r.status == 200 and r.header("x-layer-cache") == "hit", r
    r = http_request(st.origin, "PUT", "/_test/keys", json.dumps({"keys": [K1]}).encode())
    assert r.status == 200, r
    # Served from the cache at most until the validation expires (300 ms); 10x that proves it.
    wait_until(lambda: fetch(st.gw, ns, 1, K2).status in (401, 403), timeout=3.0,
               what="the revoked key to be refused")
    for _ in range(3):
        assert_refused(fetch(st.gw, ns, 1, K2))
        assert_refused(fetch_batch(st.gw, ns, [1], K2))
    # The other key is unaffected, and still answered from its own partition.
    assert fetch(st.gw, ns, 1, K1).status == 200
    wait_until(lambda: fetch(st.gw, ns, 1, K1).header("x-layer-cache") == "hit",
               what="K1's backfill")


def test_each_key_has_its_own_partition_and_writes_reach_the_others(st):
    ns = "ten_partition"
    assert write(st.gw, ns, {"upsert_rows": [{"id": 1, "v": 1}, {"id": 2, "v": 1}]},
                 K1).status == 200
    assert fetch(st.gw, ns, 1, K1).header("x-layer-cache") == "hit"
    # K2 never gets what K1 cached: its first fetch reads upstream, with its own key.
    r = fetch(st.gw, ns, 1, K2)
    assert r.status == 200 and r.header("x-layer-cache") == "miss", r
    wait_until(lambda: fetch(st.gw, ns, 1, K2).header("x-layer-cache") == "hit",
               what="K2's backfill")
    assert fetch_batch(st.gw, ns, [1, 2], K2).status == 200
    wait_until(lambda: fetch_batch(st.gw, ns, [1, 2], K2).header("x-layer-cache") == "hit",
               what="K2's batch backfill")
    # A write through K2 leaves nothing stale in K1's partition (one organisation, two keys).
    assert write(st.gw, ns, {"upsert_rows": [{"id": 1, "v": 2}]}, K2).status == 200
    r = fetch(st.gw, ns, 1, K1)
    assert r.status == 200 and r.json()["attributes"]["v"] == 2, r
    assert write(st.gw, ns, {"deletes": [2]}, K1).status == 200
    assert fetch(st.gw, ns, 2, K2).status == 404
    assert fetch_batch(st.gw, ns, [2], K2).json()["missing"] == [2]
    assert write(st.gw, ns, {"patch_rows": [{"id": 1, "v": 3}]}, K1).status == 200
    assert fetch(st.gw, ns, 1, K2).json()["attributes"]["v"] == 3
    assert write(st.gw, ns, {"delete_by_filter": ["v", "Eq", 3]}, K2).status == 200
    assert fetch(st.gw, ns, 1, K1).status == 404
    # A namespace delete through one key empties every key's partition.
    assert write(st.gw, ns, {"upsert_rows": [{"id": 5, "v": 5}]}, K1).status == 200
    assert fetch(st.gw, ns, 5, K2).status == 200
    wait_until(lambda: fetch(st.gw, ns, 5, K2).header("x-layer-cache") == "hit",
               what="K2's backfill of 5")
    assert call(st.gw, "DELETE", f"/v2/namespaces/{ns}", K1).status == 200
    assert fetch(st.gw, ns, 5, K2).status == 404
    # Jobs are per partition too: K2 does not see K1's warm jobs.
    seed(st.origin, ns, [1, 2, 3])
    r = call(st.gw, "POST", f"/v2/namespaces/{ns}/warm", K1)
    assert r.status == 202, r
    assert call(st.gw, "GET", f"/v2/namespaces/{ns}/warm-jobs", K2).json() == {"warm_jobs": []}
    assert call(st.gw, "GET", f"/v2/namespaces/{ns}/warm-jobs/{r.json()['id']}", K2).status == 404
    assert_job_shape(r.json(), ns)


def test_background_work_runs_with_the_callers_key(st):
    ns = "ten_background"
    ids = list(range(1, 301))
    seed(st.origin, ns, ids, K2)
    # A warm job pages with K2's key and completes.
    r = call(st.gw, "POST", f"/v2/namespaces/{ns}/warm?page_size=100", K2)
    assert r.status == 202, r
    j = wait_job(st.gw, ns, r.json()["id"], K2, lambda j: j["status"] != "running")
    assert j["status"] == "completed" and j["documents_scanned"] == len(ids), j
    r = fetch(st.gw, ns, 150, K2)
    assert r.status == 200 and r.header("x-layer-cache") == "hit", r
    # The hint's documents step too (a second namespace, so it starts a job of its own).
    ns2 = "ten_background_hint"
    seed(st.origin, ns2, ids, K1)
    r = call(st.gw, "GET", f"/v1/namespaces/{ns2}/hint_cache_warm?documents=true"
             "&turbopuffer=false&snapshots=false", K1)
    assert r.status == 200, r
    jid = r.json()["documents"]["job"]["id"]
    j = wait_job(st.gw, ns2, jid, K1, lambda j: j["status"] != "running")
    assert j["status"] == "completed" and j["documents_scanned"] == len(ids), j
    # The watcher polls the namespace a write went to with the writer's key: the stable
    # watermark appears on queries (its polls would be refused without a key).
    ns3 = "ten_background_watch"
    assert write(st.gw, ns3, {"upsert_rows": [{"id": 1, "v": 1}]}, K1).status == 200

    def stable():
        r = call(st.gw, "POST", f"/v2/namespaces/{ns3}/query", K1,
                 {"rank_by": ["id", "asc"], "top_k": 1})
        assert r.status == 200, r
        return r.header("x-layer-stable-as-of") is not None
    wait_until(stable, timeout=20.0, what="the watcher's stable watermark")


def kill9_mid_warm(st, ns, total, page=100):
    """Seeds `total` rows, starts a warm with K1 against slowed origin queries, and kills the
    gateway with SIGKILL once the job is past its second page. Returns the job's id."""
    seed(st.origin, ns, list(range(1, total + 1)))
    http_request(st.origin, "PUT", "/_test/faults",
                 json.dumps({"query": {"latency_ms": 100}}).encode())
    r = call(st.gw, "POST", f"/v2/namespaces/{ns}/warm?page_size={page}", K1)
    assert r.status == 202, r
    jid = r.json()["id"]
    before = wait_job(st.gw, ns, jid, K1, lambda j: j["documents_scanned"] >= 2 * page)
    assert before["status"] == "running", before
    kill9_and_reap(st.gw)
    return jid


def test_a_job_resumed_without_a_key_waits_then_goes_on_with_its_callers(st):
    ns = "ten_resume_nokey"
    total = 2000
    jid = kill9_mid_warm(st, ns, total)
    g = st.start_gateway()
    # Nobody has called since the restart: the job holds no key, waits, and says why.
    j = wait_job(g, ns, jid, K1, lambda j: "waiting" in j, timeout=15.0)
    assert j["status"] == "running" and "API key" in j["waiting"], j
    assert K1 not in json.dumps(j)
    # A caller of that tenant warms again: the POST returns the same job, which goes on.
    http_request(st.origin, "DELETE", "/_test/faults")
    r = call(g, "POST", f"/v2/namespaces/{ns}/warm", K1)
    assert r.status == 202 and r.json()["id"] == jid, r
    j = wait_job(g, ns, jid, K1, lambda j: j["status"] != "running")
    assert j["status"] == "completed" and j["documents_scanned"] == total, j
    assert "waiting" not in j, j
    # The key was never written to the job store or the logs.
    for path in (f"{st.gw_data}/jobs.sqlite3", g.stdout_path, g.stderr_path):
        with open(path, "rb") as f:
            assert K1.encode() not in f.read(), path


def test_a_job_resumed_with_an_upstream_key_goes_on_by_itself(stack_factory):
    st = stack_factory(gw_args=("--upstream-api-key", K1),
                       origin_args=("--api-key", K1, "--api-key", K2))
    ns = "ten_resume_key"
    total = 2000
    jid = kill9_mid_warm(st, ns, total)
    http_request(st.origin, "DELETE", "/_test/faults")
    g = st.start_gateway()
    j = wait_job(g, ns, jid, K1, lambda j: j["status"] != "running")
    assert j["status"] == "completed" and j["documents_scanned"] == total, j
    # With an upstream key, only that key is accepted from callers.
    assert fetch(g, ns, 1, K2).status == 403


def test_a_reactive_warm_runs_with_the_key_of_the_miss_that_started_it(st):
    ns = "ten_reactive"
    ids = list(range(1, 201))
    seed(st.origin, ns, ids, K2)
    assert fetch(st.gw, ns, 1, K2).status == 200
    # The cache drops and comes back: a new connection generation.
    set_cache_faults(st.gw, disconnect=True)
    assert fetch(st.gw, ns, 2, K2).header("x-layer-cache") == "miss-on-error"
    clear_cache_faults(st.gw)
    wait_cache_healthy(st.gw)
    # The first clean miss in the new generation starts a background warm of K2's partition,
    # which pages with K2's key (the origin refuses anything else).
    r = fetch(st.gw, ns, 3, K2)
    assert r.status == 200 and r.header("x-layer-cache") == "miss", r

    def warmed():
        jobs = call(st.gw, "GET", f"/v2/namespaces/{ns}/warm-jobs", K2).json()["warm_jobs"]
        return jobs and jobs[-1]["status"] != "running" and jobs[-1]
    j = wait_until(warmed, timeout=30.0, what="the reactive warm")
    assert j["status"] == "completed" and j["documents_scanned"] == len(ids), j
    assert call(st.gw, "GET", f"/v2/namespaces/{ns}/warm-jobs", K1).json() == {"warm_jobs": []}
