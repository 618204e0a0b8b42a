"""On-demand snapshot jobs (docs/design.md §7.8): POST /v2/namespaces/{ns}/snapshots, the
snapshot-jobs routes, each source (stored, origin, auto, cache), the histogram against a
brute-force count of the origin's rows (with a filter, across pages), bodies under their own
prefix that never shadow the latest full snapshot, bad inputs, cancel, a restart mid-job
(kill -9), and tenants kept apart. Against the default local object store.

The cache source against a strict origin (`layer origin --api-key`): 503 cache_cold until a warm
completed, the same histogram bytes as the origin's (with filters, datetimes and floats), writes
after the warm reflected, a write that leaves ids invalidated making it cold again, auto's choice.

The object store down or slow (snapshot routes and steps 502, fetch and passthrough unaffected) is
at the end, against s3rver behind tests/s3/s3_front.py."""
from __future__ import annotations

import json
import os
import threading

import pytest

from layer_testlib import http_request, wait_until
from test_cache_support import (TOKEN, clear_cache_faults, clear_origin_faults,  # noqa: F401
                                gateway_process, req, set_cache_faults, set_origin_faults,
                                stack_factory, start, write)
from test_snapshots import FIELDS, brute_force, history, origin_rows, put_policy, seed_rows
from test_warm_support import start_warm
from test_warm_support import wait_job as wait_warm


@pytest.fixture
def st(stack_factory):
    return stack_factory(gw_args=("--upstream-api-key", TOKEN, "--watch-stable-interval", "100ms",
                                  "--snapshot-sweep-interval", "200ms"))


def call(gw, method, path, body=None, token=None, timeout=15.0):
    data = body if body is None or isinstance(body, (bytes, str)) else json.dumps(body)
    if isinstance(data, str):
        data = data.encode()
    return http_request(gw, method, path, data, token=token or TOKEN, timeout=timeout)


def post_job(gw, ns, body, headers=None):
    return call(gw, "POST", f"/v2/namespaces/{ns}/snapshots", body, token=headers)


def get_job(gw, ns, jid, headers=None):
    r = call(gw, "GET", f"/v2/namespaces/{ns}/snapshot-jobs/{jid}", token=headers)
    assert r.status == 200, r
    return r.json()


def wait_job(gw, ns, jid, until=None, timeout=30.0, headers=None):
    until = until or (lambda j: j["status"] != "running")
    return wait_until(lambda: (lambda j: j if until(j) else None)(get_job(gw, ns, jid, headers)),
                      timeout=timeout, what=f"snapshot job {jid}")


def run_job(gw, ns, body, headers=None):
    r = post_job(gw, ns, body, headers)
    assert r.status == 202, r
    j = r.json()
    assert j["status"] == "running" and j["namespace"] == ns, j
    assert j["field"] == body["field"] and j["source"] == body.get("source", "auto"), j
    return wait_job(gw, ns, j["id"], headers=headers)


def body_of(gw, ns, sha, headers=None):
    r = call(gw, "GET", f"/v2/namespaces/{ns}/snapshots/{sha}", token=headers)
    assert r.status == 200, r
    return r.json()


def counts(body, field):
    f = [f for f in body["fields"] if f["name"] == field]
    assert len(f) == 1, body
    return {v["v"]: v["n"] for v in f[0]["values"]}


def hint_sha(gw, ns):
    r = req(gw, "GET", f"/v1/namespaces/{ns}/hint_cache_warm?turbopuffer=false&documents=false")
    assert r.status == 200, r
    return r.json()["snapshots"].get("sha")


def on_demand_files(st, ns):
    d = os.path.join(st.gw_data, "objects", "snapshots-on-demand", ns)
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def test_origin_histograms_match_a_brute_force_count(st):
    ns = "sj_origin"
    rows = seed_rows(250)
    assert write(st.gw, ns, {"upsert_rows": rows}).status == 200
    origin = origin_rows(st.origin, ns)
    for field in ("tags", "color", "size"):
        j = run_job(st.gw, ns, {"field": field, "source": "origin", "page_size": 37})
        assert j["status"] == "completed", j
        assert j["effective_source"] == "origin" and j["documents_scanned"] == 250, j
        assert j["progress"] == 1 and j.get("completed_at"), j
        body = body_of(st.gw, ns, j["sha"])
        assert body["sha"] == j["sha"] and body["row_count"] == 250, body
        assert [f["name"] for f in body["fields"]] == [field], body
        assert counts(body, field) == brute_force(origin, field), field
        assert body["watermark_ms"] == j["stable_as_of"] == j["watermark_ms"], (body, j)
        assert j["key"] == f"snapshots-on-demand/{ns}/{body['watermark_ms']:013d}-{j['sha'][:7]}.json"

    # A filter, ANDed with the id cursor on every page.
    flt = ["And", [["size", "In", [1, 2]], ["color", "NotEq", "red"]]]
    j = run_job(st.gw, ns, {"field": "tags", "filters": flt, "page_size": 10})
    assert j["status"] == "completed" and j["effective_source"] == "origin", j
    want = [r for r in origin if r.get("size") in (1, 2) and r.get("color") != "red"]
    assert j["documents_scanned"] == len(want) > 10, j
    assert counts(body_of(st.gw, ns, j["sha"]), "tags") == brute_force(want, "tags")
    assert j["filters"] == flt, j


def test_stored_and_auto_and_never_shadowing_the_latest(st):
    ns = "sj_stored"
    rows = seed_rows(120)
    assert write(st.gw, ns, {"upsert_rows": rows}).status == 200
    # Nothing stored yet: stored fails saying so; auto reads the origin.
    j = run_job(st.gw, ns, {"field": "color", "source": "stored"})
    assert j["status"] == "failed" and "no stored snapshot" in j["error"], j
    assert j["sha"] is None, j
    j = run_job(st.gw, ns, {"field": "color"})
    assert j["status"] == "completed" and j["effective_source"] == "origin", j

    assert put_policy(st.gw, ns, {"facetFields": FIELDS, "interval": "1h"}).status == 200
    h = wait_until(lambda: history(st.gw, ns), timeout=20.0, what="the first full snapshot")
    full = body_of(st.gw, ns, h[0]["sha"])
    assert [f["name"] for f in full["fields"]] == FIELDS

    # stored: the full snapshot's sha and counts, nothing new written.
    before = on_demand_files(st, ns)
    j = run_job(st.gw, ns, {"field": "size", "source": "stored"})
    assert j["status"] == "completed" and j["effective_source"] == "stored", j
    assert j["sha"] == full["sha"] and j["stable_as_of"] == full["watermark_ms"], (j, full)
    assert j["documents_scanned"] == sum(counts(full, "size").values()), j
    assert j["key"] == f"snapshots/{ns}/{full['watermark_ms']:013d}-{h[0]['sha']}.json", j
    assert on_demand_files(st, ns) == before
    # auto prefers the stored snapshot when it has the field and there is no filter...
    j = run_job(st.gw, ns, {"field": "color", "source": "auto"})
    assert j["effective_source"] == "stored" and j["sha"] == full["sha"], j
    # ...and reads the origin for a field the policy does not cover, or with a filter.
    j = run_job(st.gw, ns, {"field": "other"})
    assert j["status"] == "completed" and j["effective_source"] == "origin", j
    assert len(counts(body_of(st.gw, ns, j["sha"]), "other")) == 120
    j2 = run_job(st.gw, ns, {"field": "color", "filters": ["size", "Eq", 0]})
    assert j2["effective_source"] == "origin", j2
    want = [r for r in origin_rows(st.origin, ns) if r.get("size") == 0]
    assert counts(body_of(st.gw, ns, j2["sha"]), "color") == brute_force(want, "color")
    # stored of a field the snapshot does not hold fails, naming it.
    j = run_job(st.gw, ns, {"field": "other", "source": "stored"})
    assert j["status"] == "failed" and "'other'" in j["error"], j

    # The on-demand bodies are newer than the full snapshot, yet the history, the latest the
    # hint's snapshots step serves and the automatic writer's listing show only full snapshots.
    assert len(on_demand_files(st, ns)) >= 3, on_demand_files(st, ns)
    assert history(st.gw, ns) == h
    assert hint_sha(st.gw, ns) == full["sha"]
    listing = os.listdir(os.path.join(st.gw_data, "objects", "snapshots", ns))
    assert listing == [f"{full['watermark_ms']:013d}-{h[0]['sha']}.json"], listing
    # A namespace delete purges the on-demand bodies too.
    assert req(st.gw, "DELETE", f"/v2/namespaces/{ns}").status == 200
    assert on_demand_files(st, ns) == []


def test_bad_requests_are_422_and_unknown_jobs_404(st):
    ns = "sj_bad"
    assert write(st.gw, ns, {"upsert_rows": seed_rows(5)}).status == 200
    for bad in ('{"field":""}', '{"field":"  "}', "{}", '{"field":3}', '{"field":"c","source":"x"}',
                '{"field":"c","page_size":0}', '{"field":"c","page_size":10001}',
                '{"field":"c","filters":"size"}', '{"field":"c","other":1}', "[1]", "{",
                '{"field":"c","source":"stored","filters":["size","Eq",1]}', '{"field":"id"}'):
        r = post_job(st.gw, ns, bad)
        assert r.status == 422 and r.json()["error"] == "validation_error", (bad, r)
    # The cache source: a cold namespace is 503 cache_cold; a malformed filter is refused first.
    r = post_job(st.gw, ns, {"field": "color", "source": "cache"})
    assert r.status == 503 and r.json()["error"] == "cache_cold", r
    assert r.json()["cache_state"] == "cold" and "no warm" in r.json()["message"], r
    for flt, status in ((["size", "Between", 1], 422), (["size", "Eq"], 422),
                        (["size", "Regex", "("], 400)):
        r = post_job(st.gw, ns, {"field": "color", "source": "cache", "filters": flt})
        assert r.status == status, (flt, r)
        assert r.json()["error"] == ("validation_error" if status == 422 else "bad_request"), r
    r = req(st.gw, "GET", f"/v2/namespaces/{ns}/snapshot-jobs")
    assert r.status == 200 and r.json() == {"snapshot_jobs": []}, r
    r = req(st.gw, "GET", f"/v2/namespaces/{ns}/snapshot-jobs/nope")
    assert r.status == 404 and r.json()["error"] == "not_found", r
    # A job is not found under another namespace, nor is a warm job a snapshot job.
    j = run_job(st.gw, ns, {"field": "color"})
    assert req(st.gw, "GET", f"/v2/namespaces/sj_other/snapshot-jobs/{j['id']}").status == 404
    w = req(st.gw, "POST", f"/v2/namespaces/{ns}/warm")
    assert w.status == 202, w
    assert req(st.gw, "GET", f"/v2/namespaces/{ns}/snapshot-jobs/{w.json()['id']}").status == 404


def test_list_join_conflict_and_cancel(st):
    ns = "sj_cancel"
    assert write(st.gw, ns, {"upsert_rows": seed_rows(300)}).status == 200
    done = run_job(st.gw, ns, {"field": "size", "source": "origin"})
    set_origin_faults(st.origin, {"query": {"latency_ms": 150}})
    try:
        body = {"field": "color", "source": "origin", "page_size": 10}
        r = post_job(st.gw, ns, body)
        assert r.status == 202, r
        jid = r.json()["id"]
        # The same request joins the running job; another one is refused while it runs.
        r2 = post_job(st.gw, ns, body)
        assert r2.status == 202 and r2.json()["id"] == jid, r2
        r3 = post_job(st.gw, ns, {"field": "size", "source": "origin"})
        assert r3.status == 409 and r3.json()["error"] == "conflict", r3
        listed = req(st.gw, "GET", f"/v2/namespaces/{ns}/snapshot-jobs").json()["snapshot_jobs"]
        assert [x["id"] for x in listed] == [done["id"], jid], listed
        wait_job(st.gw, ns, jid, until=lambda j: j["documents_scanned"] > 0)
        r = req(st.gw, "DELETE", f"/v2/namespaces/{ns}/snapshot-jobs/{jid}")
        assert r.status == 200, r
        c = r.json()
        assert c["status"] == "cancelled" and c["progress"] < 1 and c["sha"] is None, c
    finally:
        clear_origin_faults(st.origin)
    # It stays cancelled and writes nothing: a new job (accepted now) completes alone.
    j = run_job(st.gw, ns, {"field": "size", "source": "origin"})
    assert j["status"] == "completed", j
    c = get_job(st.gw, ns, jid)
    assert c["status"] == "cancelled" and c["sha"] is None, c
    # Only the size jobs stored bodies: the cancelled color job stored none.
    files = on_demand_files(st, ns)
    assert files, files
    for name in files:
        with open(os.path.join(st.gw_data, "objects", "snapshots-on-demand", ns, name)) as f:
            assert [x["name"] for x in json.load(f)["fields"]] == ["size"], name


def test_a_job_survives_kill_9(st):
    ns = "sj_resume"
    rows = seed_rows(200)
    assert write(st.gw, ns, {"upsert_rows": rows}).status == 200
    set_origin_faults(st.origin, {"query": {"latency_ms": 100}})
    try:
        r = post_job(st.gw, ns, {"field": "color", "source": "origin", "page_size": 10})
        assert r.status == 202, r
        jid = r.json()["id"]
        wait_job(st.gw, ns, jid, until=lambda j: j["documents_scanned"] >= 20)
        st.gw.stop()  # SIGKILL
        st.start_gateway()
    finally:
        clear_origin_faults(st.origin)
    j = wait_job(st.gw, ns, jid)
    assert j["status"] == "completed" and j["documents_scanned"] == 200, j  # started over
    assert "restarting snapshot job " + jid in st.gw.output()
    assert counts(body_of(st.gw, ns, j["sha"]), "color") == brute_force(
        origin_rows(st.origin, ns), "color")


def test_tenants_jobs_and_bodies_are_their_own(stack_factory):
    s = stack_factory(origin_args=("--api-key", "key-a", "--api-key", "key-b"))
    ns = "sj_tenants"
    assert call(s.gw, "POST", f"/v2/namespaces/{ns}", {"upsert_rows": seed_rows(30)},
                token="key-a").status == 200
    j = run_job(s.gw, ns, {"field": "color", "source": "origin"}, headers="key-a")
    assert j["status"] == "completed", j
    assert j["key"].startswith("tenants/") and f"/snapshots-on-demand/{ns}/" in j["key"], j
    # Tenant b sees neither the job nor the body.
    r = call(s.gw, "GET", f"/v2/namespaces/{ns}/snapshot-jobs", token="key-b")
    assert r.status == 200 and r.json() == {"snapshot_jobs": []}, r
    assert call(s.gw, "GET", f"/v2/namespaces/{ns}/snapshot-jobs/{j['id']}",
                token="key-b").status == 404
    assert call(s.gw, "GET", f"/v2/namespaces/{ns}/snapshots/{j['sha']}",
                token="key-b").status == 404
    assert body_of(s.gw, ns, j["sha"], headers="key-a")["sha"] == j["sha"]


# ---- The cache source (docs/design.md §7.8), against a strict origin ---------------------------

@pytest.fixture
def strict(stack_factory):
    return stack_factory(gw_args=("--upstream-api-key", TOKEN, "--watch-stable-interval", "100ms"),
                         origin_args=("--api-key", TOKEN))


CACHE_SCHEMA = {"when": "datetime", "score": "float"}


def cache_rows(n, first=1):
    rows = seed_rows(first + n - 1)[first - 1:]
    for r in rows:
        i = r["id"]
        r["when"] = f"2026-05-{1 + i % 7:02d}T10:00:00Z"  # written as the client likes...
        r["score"] = (i % 6) // 2  # ...ints for a float attribute: cached as 0.0, 1.0, 2.0
    return rows


def warm(gw, ns):
    """A warm that records cache_warmed_through (the watcher has seen the namespace stable)."""
    wait_until(lambda: call(gw, "GET", f"/v2/namespaces/{ns}/metadata").json()["layer"]
               ["is_stable"], timeout=20.0, what=f"{ns} stable")
    r = start_warm(gw, ns)
    assert r.status == 202, r
    j, _ = wait_warm(gw, ns, r.json()["id"], timeout=30.0)
    assert j["status"] == "completed" and type(j.get("stable_as_of")) is int, j
    layer = call(gw, "GET", f"/v2/namespaces/{ns}/metadata").json()["layer"]
    assert layer["cache_state"] == "warm", layer
    return j


def same_as_origin(gw, ns, body):
    """Runs the job from the cache and from the origin: the same histogram bytes."""
    c = run_job(gw, ns, {**body, "source": "cache"})
    assert c["status"] == "completed" and c["effective_source"] == "cache", c
    o = run_job(gw, ns, {**body, "source": "origin"})
    assert o["status"] == "completed", o
    cb, ob = body_of(gw, ns, c["sha"]), body_of(gw, ns, o["sha"])
    assert c["sha"] == o["sha"], (cb, ob)
    assert json.dumps(cb["fields"]) == json.dumps(ob["fields"]), (cb, ob)
    assert cb["row_count"] == ob["row_count"] == c["documents_scanned"], (cb, c)
    # (Both bodies have one sha: GET …/snapshots/{sha} serves the newer, the origin's.)
    assert c["key"] == f"snapshots-on-demand/{ns}/{c['watermark_ms']:013d}-{c['sha'][:7]}.json", c
    assert c["stable_as_of"] == c["watermark_ms"] <= o["watermark_ms"], (c, o)
    return c, cb


def test_cache_source_answers_as_the_origin_once_warm(strict):
    gw, ns = strict.gw, "sj_cache"
    assert write(gw, ns, {"upsert_rows": cache_rows(260), "schema": CACHE_SCHEMA}).status == 200
    # Cold until a warm completed: explicit cache is refused, auto reads the origin.
    r = post_job(gw, ns, {"field": "color", "source": "cache"})
    assert r.status == 503 and r.json()["error"] == "cache_cold", r
    j = run_job(gw, ns, {"field": "color"})
    assert j["effective_source"] == "origin", j
    warm(gw, ns)

    for field in ("color", "tags", "size", "when", "score", "other"):
        c, body = same_as_origin(gw, ns, {"field": field, "page_size": 37})
        assert c["documents_scanned"] == 260, c
    assert set(counts(body_of(gw, ns, same_as_origin(gw, ns, {"field": "when"})[0]["sha"]),
                      "when")) == {f"2026-05-{d:02d}T10:00:00.000000000Z" for d in range(1, 8)}
    assert set(counts(body_of(gw, ns, same_as_origin(gw, ns, {"field": "score"})[0]["sha"]),
                      "score")) == {"0.0", "1.0", "2.0"}

    # Filters select on cached rows what they select upstream (typed by the schema: datetimes,
    # floats given as ints), across pages.
    for flt in (["And", [["size", "In", [1, 2]], ["color", "NotEq", "red"]]],
                ["when", "Gte", "2026-05-04T00:00:00Z"],
                ["Or", [["score", "Eq", 1], ["tags", "Contains", "c"]]],
                ["Not", ["other", "Glob", "o1*"]],
                ["id", "In", [3, 5, 300]],
                ["tags", "Eq", None]):
        c, body = same_as_origin(gw, ns, {"field": "tags", "filters": flt, "page_size": 50})
        assert 0 < c["documents_scanned"] < 260, (flt, c)
        assert c["filters"] == flt, c
    # A filter the upstream refuses for the namespace's types fails the cache job, saying why.
    j = run_job(gw, ns, {"field": "tags", "source": "cache", "filters": ["when", "Eq", True]})
    assert j["status"] == "failed" and "filters" in j["error"], j

    # auto: no stored snapshot, the cache holds the namespace: the cache answers, filter or not.
    for body in ({"field": "color"}, {"field": "color", "filters": ["size", "Eq", 0]}):
        j = run_job(gw, ns, body)
        assert j["status"] == "completed" and j["effective_source"] == "cache", j
    # A filter the cache's evaluator refuses makes auto fall back to the origin, which refuses it
    # too: the job fails with the upstream's answer.
    j = run_job(gw, ns, {"field": "color", "filters": ["when", "Eq", True]})
    assert j["status"] == "failed" and "upstream" in j["error"], j


def test_cache_source_after_writes(strict):
    gw, ns = strict.gw, "sj_cache_writes"
    assert write(gw, ns, {"upsert_rows": cache_rows(120), "schema": CACHE_SCHEMA}).status == 200
    warm(gw, ns)
    # Upserts, patches and deletes acknowledged through the gateway are mirrored: the cache still
    # answers for the namespace, and its histogram has them.
    assert write(gw, ns, {"upsert_rows": cache_rows(30, first=200)}).status == 200
    assert write(gw, ns, {"patch_rows": [{"id": i, "color": "violet"} for i in range(1, 11)]}
                 ).status == 200
    assert write(gw, ns, {"deletes": list(range(11, 21))}).status == 200
    c, body = same_as_origin(gw, ns, {"field": "color"})
    assert c["documents_scanned"] == 120 + 30 - 10, c
    assert counts(body, "color")["violet"] == 10, body
    j = run_job(gw, ns, {"field": "size"})
    assert j["effective_source"] == "cache", j

    # A conditional write leaves the ids it touched without a cached version: the cache no longer
    # holds every row, so the cache source is cold and auto reads the origin...
    r = write(gw, ns, {"upsert_rows": [{"id": 1, "color": "teal"}],
                       "upsert_condition": ["color", "Eq", "violet"]})
    assert r.status == 200, r
    r = post_job(gw, ns, {"field": "color", "source": "cache"})
    assert r.status == 503 and r.json()["error"] == "cache_cold", r
    assert "invalidated" in r.json()["message"], r
    j = run_job(gw, ns, {"field": "color"})
    assert j["status"] == "completed" and j["effective_source"] == "origin", j
    assert counts(body_of(gw, ns, j["sha"]), "color")["teal"] == 1
    # ...until the rows it invalidated have long expired before a warm begins (docs/design.md
    # §7.8): a warm right away does not make it whole again.
    warm(gw, ns)
    r = post_job(gw, ns, {"field": "color", "source": "cache"})
    assert r.status == 503 and r.json()["error"] == "cache_cold", r


def test_cache_source_needs_the_cache(strict):
    gw, ns = strict.gw, "sj_cache_down"
    assert write(gw, ns, {"upsert_rows": cache_rows(20)}).status == 200
    warm(gw, ns)
    assert run_job(gw, ns, {"field": "color", "source": "cache"})["status"] == "completed"
    # The cache fails: explicit cache is 503 cache_cold, auto reads the origin.
    set_cache_faults(gw, disconnect=True)
    try:
        r = post_job(gw, ns, {"field": "color", "source": "cache"})
        assert r.status == 503 and r.json()["error"] == "cache_cold", r
        j = run_job(gw, ns, {"field": "size"})
        assert j["status"] == "completed" and j["effective_source"] == "origin", j
    finally:
        clear_cache_faults(gw)


# ---- The object store down or slow (s3rver behind the verifying front) -------------------------

def s3_front(tmp):
    from test_object_store_s3 import S3Front
    try:
        return S3Front(tmp)
    except (RuntimeError, OSError, ImportError, ValueError) as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"s3rver front did not start (CI must have node, s3rver, botocore): {e}")
        pytest.skip(f"s3rver front not available: {e}")


def front_faults(s3, faults):
    import urllib.request
    method = "POST" if faults else "DELETE"
    data = json.dumps(faults).encode() if faults else None
    rq = urllib.request.Request(s3.endpoint + "/_front/faults", data=data, method=method)
    with urllib.request.urlopen(rq, timeout=10) as r:
        assert r.status in (200, 204)


def test_object_store_down_or_slow_fails_only_snapshot_routes(st, tmp_path):
    from test_object_store_s3 import AWS_ENV, BUCKET
    s3 = s3_front(str(tmp_path / "s3"))
    try:
        g = gateway_process(st.tmp, st.origin.url, os.path.join(st.tmp, "gw-s3-data"),
                            "--upstream-api-key", TOKEN, "--object-store", f"s3://{BUCKET}/sj",
                            "--s3-endpoint", s3.endpoint, name="gws3")
        g.env = {**g.env, **AWS_ENV}
        gw = start(st._track(g))
        ns = "sj_store"
        assert write(gw, ns, {"upsert_rows": seed_rows(40)}).status == 200
        assert put_policy(gw, ns, {"facetFields": ["color"], "interval": "1h"}).status == 200
        assert run_job(gw, ns, {"field": "size", "source": "origin"})["status"] == "completed"

        fetch = f"/v2/namespaces/{ns}/documents/3"
        query = {"rank_by": ["id", "asc"], "top_k": 5, "include_attributes": ["color"]}

        def unaffected():
            assert req(gw, "GET", fetch).status == 200
            r = req(gw, "POST", f"/v2/namespaces/{ns}/query", query)
            assert r.status == 200 and len(r.json()["rows"]) == 5, r
            assert req(gw, "GET", f"/v1/namespaces/{ns}/schema").status == 200

        # Down: every object-store request answers 503 SlowDown, retries included.
        front_faults(s3, [{"status": 503, "code": "SlowDown", "count": 100000}])
        for method, path, body in [
                ("GET", f"/v2/namespaces/{ns}/snapshot-policy", None),
                ("PUT", f"/v2/namespaces/{ns}/snapshot-policy", {"facetFields": ["size"]}),
                ("GET", f"/v2/namespaces/{ns}/history", None),
                ("GET", f"/v2/namespaces/{ns}/snapshots/0123456", None),
                # The hint's step of a namespace whose latest is not mirrored in the cache.
                ("GET", "/v1/namespaces/sj_store_cold/hint_cache_warm?turbopuffer=false"
                 "&documents=false", None)]:
            r = req(gw, method, path, body)
            assert r.status == 502 and r.json()["error"] == "upstream_error", (path, r)
        # The cache's mirror of the latest still answers the hint's step (docs/design.md §7.2).
        r = req(gw, "GET", f"/v1/namespaces/{ns}/hint_cache_warm?turbopuffer=false&documents=false")
        assert r.status == 200 and r.json()["snapshots"]["status"] == "completed", r
        # A job needing the store fails, saying so; one that only reads the origin fails at
        # storing its body.
        j = run_job(gw, ns, {"field": "color", "source": "stored"})
        assert j["status"] == "failed" and "snapshot" in j["error"], j
        j = run_job(gw, ns, {"field": "color", "source": "origin"})
        assert j["status"] == "failed" and "object store" in j["error"], j
        unaffected()

        # Slow: a history call held by the store does not hold fetches or passthrough.
        front_faults(s3, None)
        # The history's own listing (the policy sweep lists other prefixes).
        front_faults(s3, [{"delay_ms": 3000, "count": 1,
                           "path_contains": f"snapshots%2F{ns}%2F"}])
        served = s3.stats()["faults_served"]
        out = {}
        t = threading.Thread(target=lambda: out.setdefault(
            "r", req(gw, "GET", f"/v2/namespaces/{ns}/history", timeout=60)))
        t.start()
        wait_until(lambda: s3.stats()["faults_served"] > served, timeout=10.0,
                   what="the history's listing held by the store")
        unaffected()
        assert t.is_alive()  # answered while the listing was still held
        t.join(60)
        assert out["r"].status == 200, out
    finally:
        front_faults(s3, None)
        s3.close()
