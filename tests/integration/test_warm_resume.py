"""Warm-job durability (src/jobs/warm_runner.h, src/jobs/job_store.h): a gateway killed with
kill -9 mid-warm resumes the job from its last checkpoint when it restarts on the same data dir;
the job keeps its id and completes with the exact document count (no double counting, no loss)."""

from __future__ import annotations

import pytest

from test_cache_support import (TOKEN, clear_origin_faults, doc, fetch, kill9_and_reap,
                                stack_factory, strip_reserved)  # noqa: F401
from test_warm_support import (attrs_for, cancel_job, job, list_jobs, seed_origin, slow_origin_queries,
                               start_warm, wait_job)


@pytest.fixture
def stack(stack_factory):
    """A gateway with an upstream key: its jobs resume by themselves after a restart. (Without
    one, a resumed job waits for its caller's key: test_tenancy.py.)"""
    return stack_factory(gw_args=("--upstream-api-key", TOKEN))


def test_kill9_mid_warm_resumes_from_the_last_checkpoint(stack):
    o = stack.origin
    ns = "warm_resume"
    total, page = 2000, 100
    ids = list(range(1, total + 1))
    seed_origin(o, ns, ids)
    slow_origin_queries(o, 150)
    g = stack.gw
    r = start_warm(g, ns, page)
    assert r.status == 202, r
    jid = r.json()["id"]
    created_at = r.json()["created_at"]
    before, _ = wait_job(g, ns, jid, timeout=15,
                         until=lambda j: j["documents_scanned"] >= 3 * page)
    assert before["status"] == "running", before
    kill9_and_reap(g)
    assert 0 < before["documents_scanned"] < total, before

    # Restart on the same data dir with the origin still slow: the job resumes where it stopped.
    g = stack.start_gateway()
    first = job(g, ns, jid)
    assert first["id"] == jid and first["created_at"] == created_at, first
    assert first["status"] == "running", first
    assert first["documents_scanned"] >= before["documents_scanned"], (before, first)
    assert first["documents_scanned"] % page == 0, first
    # The resumed job is the namespace's running job: a POST returns it instead of a new one.
    r = start_warm(g, ns, 500)
    assert r.status == 202 and r.json()["id"] == jid, r
    # It is making progress again in this process.
    wait_job(g, ns, jid, timeout=10,
             until=lambda j: j["documents_scanned"] > first["documents_scanned"]
             or j["status"] != "running")
    clear_origin_faults(o)
    j, polls = wait_job(g, ns, jid, timeout=20)
    assert j["status"] == "completed", j
    assert j["documents_scanned"] == total, j  # neither double counted nor lost
    assert j["progress"] == 1 and j["completed_at"], j
    assert j["page_size"] == page, j
    for a, b in zip(polls, polls[1:]):
        assert b["documents_scanned"] >= a["documents_scanned"], (a, b)
    assert [x["id"] for x in list_jobs(g, ns)] == [jid]

    # Documents paged after the restart are cached.
    for doc_id in [first["documents_scanned"] + 1, (first["documents_scanned"] + total) // 2, total]:
        r = fetch(g, ns, doc_id)
        assert r.header("x-layer-cache") == "hit", (doc_id, r)
        assert strip_reserved(doc(r)) == attrs_for(doc_id), r


def test_warm_resumed_after_kill9_leaves_every_document_cached(stack):
    """A kill -9 discards the embedded cache (test_cache_restart.py), so the pages checkpointed
    before the kill are gone from the cache. A job that then reports completed must still have
    backfilled them: every document of the namespace is a hit once the resumed job completes."""
    o = stack.origin
    ns = "warm_resume_cache"
    total, page = 1000, 100
    ids = list(range(1, total + 1))
    seed_origin(o, ns, ids)
    slow_origin_queries(o, 150)
    r = start_warm(stack.gw, ns, page)
    assert r.status == 202, r
    jid = r.json()["id"]
    before, _ = wait_job(stack.gw, ns, jid, timeout=15,
                         until=lambda j: j["documents_scanned"] >= 3 * page)
    kill9_and_reap(stack.gw)
    assert 0 < before["documents_scanned"] < total, before
    clear_origin_faults(o)
    g = stack.start_gateway()
    j, _ = wait_job(g, ns, jid, timeout=20)
    assert j["status"] == "completed" and j["documents_scanned"] == total, j
    misses = [i for i in ids[::10] + [total] if fetch(g, ns, i).header("x-layer-cache") != "hit"]
    assert not misses, (f"completed warm job left {len(misses)} sampled documents uncached "
                        f"(killed after {before['documents_scanned']} scanned): {misses[:20]}")


def test_finished_and_cancelled_jobs_survive_a_restart_unchanged(stack):
    o = stack.origin
    g = stack.gw
    seed_origin(o, "warm_rs_done", range(1, 21))
    seed_origin(o, "warm_rs_cancel", range(1, 201))
    r = start_warm(g, "warm_rs_done", 5)
    done, _ = wait_job(g, "warm_rs_done", r.json()["id"])
    assert done["status"] == "completed", done
    slow_origin_queries(o, 150)
    r = start_warm(g, "warm_rs_cancel", 10)
    cid = r.json()["id"]
    wait_job(g, "warm_rs_cancel", cid, until=lambda j: j["documents_scanned"] > 0)
    r = cancel_job(g, "warm_rs_cancel", cid)
    assert r.status == 200 and r.json()["status"] == "cancelled", r
    cancelled = r.json()
    kill9_and_reap(g)
    clear_origin_faults(o)
    g = stack.start_gateway()
    # At start, before it listens (src/cli/serve.cc), the gateway resumes the running jobs
    # (docs/design.md §5.6): there were none, and a finished job was not taken for one.
    assert "resuming warm job" not in g.output(), g.output()[-3000:]
    assert job(g, "warm_rs_done", done["id"]) == done
    assert job(g, "warm_rs_cancel", cid) == cancelled
