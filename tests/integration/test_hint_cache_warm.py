"""Integration tests for the orchestrated `GET /v1/namespaces/{ns}/hint_cache_warm` (issue [4/4]).

docs/design.md §6.3, §6.4 and §7
(src/gateway/hint_cache_warm.h). A bare call (or one naming only unknown parameters) is a raw
passthrough of the upstream; naming any of turbopuffer/documents/snapshots/page_size switches to
Layer orchestration with a per-step report.

Snapshot bodies are written straight into the gateway's local object store directory (keys map to
files under the root, src/snapshots/fs/fs_object_store.cc), with the sha reproduced byte for byte
from snapshot.cc's ShaInput.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time

import pytest

from layer_testlib import http_request
from test_cache_support import (AUTH, TOKEN, Stack, clear_cache_faults, clear_origin_faults, req,
                                set_cache_faults, set_origin_faults, stack_factory,  # noqa: F401
                                wait_cache_healthy)
from test_warm_support import (assert_job_shape, get_job, list_jobs, seed_origin, slow_origin_queries,
                               wait_job)

ORIGIN_HINT_BODY = {"status": "ACCEPTED", "message": "cache warm hint accepted"}
HEX64 = re.compile(r"^[0-9a-f]{64}$")


# ---------------------------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One origin (fault injection + access log) and one gateway with the default object store
    directory (<data-dir>/objects), shared by the tests of this module (each uses its own
    namespaces and clears any fault it sets). The gateway has an upstream key, so there is one
    tenant and snapshots are kept under their namespace's own name (docs/design.md §9.7)."""
    s = Stack(tmp_path_factory.mktemp("hcw"), gw_args=("--upstream-api-key", TOKEN),
              origin_args=("--access-log", "true"))
    s.objects = os.path.join(s.gw_data, "objects")
    yield s
    s.close()


@pytest.fixture
def st(shared):
    yield shared
    clear_origin_faults(shared.origin)
    clear_cache_faults(shared.gw)
    wait_cache_healthy(shared.gw)


def hint_path(ns: str, qs: str = "") -> str:
    return f"/v1/namespaces/{ns}/hint_cache_warm" + (f"?{qs}" if qs else "")


def hint(gw, ns: str, qs: str = ""):
    return req(gw, "GET", hint_path(ns, qs))


def origin_hint_count(origin, ns: str) -> int:
    """How many hint_cache_warm requests for `ns` the origin has logged (its access log)."""
    pat = f"path=/v1/namespaces/{ns}/hint_cache_warm "
    return sum(1 for line in origin.output().splitlines() if "access " in line and pat in line)


def wait_origin_hints(origin, ns: str, n: int, timeout: float = 3.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        c = origin_hint_count(origin, ns)
        if c >= n or time.monotonic() > deadline:
            return c
        time.sleep(0.02)


def assert_origin_hints(st, ns: str, n: int) -> None:
    """Exactly `n` hints for `ns` reached the origin: a passthrough hint sent now as a marker is
    the next one the origin logs (waited for, instead of waiting a while for a stray one)."""
    assert hint(st.gw, ns).status == 202
    assert wait_origin_hints(st.origin, ns, n + 1) == n + 1


def assert_error(r, status: int, kind: str) -> dict:
    assert r.status == status, r
    assert r.content_type.startswith("application/json"), r
    body = r.json()
    assert body["error"] == kind, body
    assert isinstance(body.get("message"), str) and body["message"], body
    return body


def assert_report(r, ns: str, tp: str, docs: str, snaps: str) -> dict:
    assert r.status == 200, r
    assert r.content_type.startswith("application/json"), r
    body = r.json()
    assert set(body) == {"namespace", "turbopuffer", "documents", "snapshots"}, body
    assert body["namespace"] == ns, body
    assert body["turbopuffer"] == {"enabled": tp != "skipped", "status": tp}, body
    d = body["documents"]
    assert d["enabled"] is (docs != "skipped") and d["status"] == docs, body
    if docs == "started":
        assert set(d) == {"enabled", "status", "job"}, body
        assert_job_shape(d["job"], ns)
    else:
        assert set(d) == {"enabled", "status"}, body
    s = body["snapshots"]
    assert s["enabled"] is (snaps != "skipped") and s["status"] == snaps, body
    if snaps == "completed":
        assert set(s) == {"enabled", "status", "key", "watermark_ms", "sha"}, body
    else:
        assert set(s) == {"enabled", "status"}, body
    return body


# --- snapshot bodies (snapshot.h / snapshot.cc) ------------------------------------------------
def _q(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def sha_input(row_count, fields, skipped) -> str:
    """Byte-for-byte snapshot.cc ShaInput: compact JSON of row_count, fields, fields_skipped."""
    out = '{"row_count":' + ("null" if row_count is None else str(row_count)) + ',"fields":['
    out += ",".join('{"name":' + _q(f["name"]) + ',"values":['
                    + ",".join('{"v":' + _q(v["v"]) + ',"n":' + str(v["n"]) + "}" for v in f["values"])
                    + "]}" for f in fields)
    out += '],"fields_skipped":['
    out += ",".join('{"name":' + _q(s["name"]) + ',"reason":' + _q(s["reason"])
                    + ',"distinct_observed":' + str(s["distinct_observed"]) + ',"cap":'
                    + str(s["cap"]) + "}" for s in skipped)
    return out + "]}"


def make_snapshot(ns: str, watermark_ms: int, row_count=3, fields=None, skipped=None):
    """A sealed (canonical, sha set) snapshot body: (key, bytes, sha)."""
    fields = fields if fields is not None else [
        {"name": "color", "values": [{"v": "blue", "n": 1}, {"v": "r\u00e9d \"x\"", "n": 2}]},
        {"name": "size", "values": [{"v": "10", "n": 3}]},
    ]
    skipped = skipped if skipped is not None else [
        {"name": "sku", "reason": "exceeded_cap", "distinct_observed": 10001, "cap": 10000}]
    fields = sorted(({"name": f["name"], "values": sorted(f["values"], key=lambda v: v["v"].encode())}
                     for f in fields), key=lambda f: f["name"].encode())
    skipped = sorted(skipped, key=lambda s: s["name"].encode())
    sha = hashlib.sha256(sha_input(row_count, fields, skipped).encode("utf-8")).hexdigest()
    body = {"namespace": ns, "watermark_ms": watermark_ms, "sha": sha}
    if row_count is not None:
        body["row_count"] = row_count
    body["fields"] = fields
    body["fields_skipped"] = skipped
    key = f"snapshots/{ns}/{watermark_ms:013d}-{sha[:7]}.json"
    return key, json.dumps(body, indent=2, ensure_ascii=False).encode("utf-8") + b"\n", sha


def put_object(root: str, key: str, data: bytes) -> None:
    path = os.path.join(root, *key.split("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


SNAPS_ONLY = "turbopuffer=false&documents=false&snapshots=true"


# ---------------------------------------------------------------------------------------------
# Self-check of the sha reproduction against a known vector (independent of the gateway)
# ---------------------------------------------------------------------------------------------
def test_sha_input_matches_the_documented_compact_form():
    s = sha_input(None, [{"name": "a", "values": [{"v": "x", "n": 1}]}], [])
    assert s == '{"row_count":null,"fields":[{"name":"a","values":[{"v":"x","n":1}]}],"fields_skipped":[]}'


# ---------------------------------------------------------------------------------------------
# Passthrough
# ---------------------------------------------------------------------------------------------
def test_seed_page_bare_curl_is_a_verbatim_passthrough(st):
    ns = "products"
    seed_origin(st.origin, ns, [1, 2, 3])
    before = origin_hint_count(st.origin, ns)
    # curl "$LAYER_GATEWAY_URL/v1/namespaces/products/hint_cache_warm" -H "Authorization: Bearer …"
    r = http_request(st.gw, "GET", "/v1/namespaces/products/hint_cache_warm", headers=dict(AUTH))
    direct = http_request(st.origin, "GET", "/v1/namespaces/products/hint_cache_warm",
                          headers=dict(AUTH))
    assert direct.status == 202 and direct.json() == ORIGIN_HINT_BODY, direct
    assert r.status == 202, r
    assert r.body == direct.body, (r, direct)
    assert r.content_type == direct.content_type, (r, direct)
    assert wait_origin_hints(st.origin, ns, before + 2) == before + 2  # one forwarded + one direct
    assert list_jobs(st.gw, ns) == []


@pytest.mark.parametrize("qs", ["foo=bar", "foo=bar&baz=1", "Documents=false", "page=2",
                                "turbopuffer_x=1", "x=documents"])
def test_unknown_parameters_only_stay_a_passthrough(st, qs):
    ns = "hcw_unknown"
    seed_origin(st.origin, ns, [1])
    r = hint(st.gw, ns, qs)
    assert r.status == 202 and r.json() == ORIGIN_HINT_BODY, (qs, r)
    assert list_jobs(st.gw, ns) == []


def test_passthrough_relays_an_upstream_error_verbatim(st):
    ns = "hcw_missing_ns"  # never written: the origin answers 404
    direct = http_request(st.origin, "GET", hint_path(ns), headers=dict(AUTH))
    assert direct.status == 404, direct
    r = hint(st.gw, ns)
    assert r.status == 404 and r.body == direct.body, (r, direct)


def test_passthrough_works_while_the_cache_is_down_but_orchestration_is_cache_cold(st):
    ns = "hcw_cold"
    seed_origin(st.origin, ns, [1, 2])
    key, data, _ = make_snapshot(ns, 1715600400000)
    put_object(st.objects, key, data)
    set_cache_faults(st.gw, disconnect=True)

    for qs in ("", "foo=bar"):
        r = hint(st.gw, ns, qs)
        assert r.status == 202 and r.json() == ORIGIN_HINT_BODY, (qs, r)
    hints = wait_origin_hints(st.origin, ns, 2)
    assert hints == 2, hints

    # The origin would fail the hint: a 503 (not a 502) proves the cache check comes first.
    set_origin_faults(st.origin, {"hint_cache_warm": {"error_rate": 1, "error_status": 500}})
    for qs in ("documents=true", "snapshots=true", "page_size=10", "turbopuffer=true",
               "turbopuffer=false", "documents=false", "snapshots=false",
               SNAPS_ONLY, "turbopuffer=false&documents=true&snapshots=false"):
        r = hint(st.gw, ns, qs)
        body = assert_error(r, 503, "cache_cold")
        assert body.get("cache_state") == "cold", (qs, body)
        assert ns in body["message"], body
    clear_origin_faults(st.origin)

    # Neither documents nor snapshots: no cache needed, the hint step alone runs.
    r = hint(st.gw, ns, "documents=false&snapshots=false")
    assert_report(r, ns, "completed", "skipped", "skipped")
    r = hint(st.gw, ns, "turbopuffer=false&documents=false&snapshots=false")
    assert_report(r, ns, "skipped", "skipped", "skipped")

    clear_cache_faults(st.gw)
    wait_cache_healthy(st.gw)
    # Only the two passthroughs and the one hint-only orchestration reached the origin.
    assert_origin_hints(st, ns, 3)
    assert list_jobs(st.gw, ns) == []


# ---------------------------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------------------------
def test_all_steps_default_on_and_the_documents_job_completes(st):
    ns = "hcw_full"
    ids = list(range(1, 24))
    seed_origin(st.origin, ns, ids)
    before = origin_hint_count(st.origin, ns)
    r = hint(st.gw, ns, "page_size=5")
    body = assert_report(r, ns, "completed", "started", "no_snapshot")
    j0 = body["documents"]["job"]
    assert j0["page_size"] == 5, j0
    assert j0["status"] in ("running", "completed"), j0
    assert wait_origin_hints(st.origin, ns, before + 1) == before + 1
    assert [j["id"] for j in list_jobs(st.gw, ns)] == [j0["id"]]
    j, _ = wait_job(st.gw, ns, j0["id"])
    assert j["status"] == "completed", j
    assert j["documents_scanned"] == len(ids) and j["progress"] == 1, j
    # The job is also polled through the exact seed-page form.
    r = http_request(st.gw, "GET", f"/v2/namespaces/{ns}/warm-jobs/{j0['id']}", headers=dict(AUTH))
    assert r.status == 200 and r.json()["id"] == j0["id"], r


def test_documents_false_alone_still_orchestrates(st):
    ns = "hcw_docs_false"
    seed_origin(st.origin, ns, [1])
    before = origin_hint_count(st.origin, ns)
    r = hint(st.gw, ns, "documents=false")
    assert_report(r, ns, "completed", "skipped", "no_snapshot")
    assert wait_origin_hints(st.origin, ns, before + 1) == before + 1
    assert list_jobs(st.gw, ns) == []


def test_page_size_alone_orchestrates_and_turbopuffer_false_sends_no_hint(st):
    ns = "hcw_pagesize"
    seed_origin(st.origin, ns, [1, 2, 3])
    r = hint(st.gw, ns, "turbopuffer=false&snapshots=0&page_size=2")
    body = assert_report(r, ns, "skipped", "started", "skipped")
    assert body["documents"]["job"]["page_size"] == 2, body
    j, _ = wait_job(st.gw, ns, body["documents"]["job"]["id"])
    assert j["status"] == "completed" and j["documents_scanned"] == 3, j
    assert_origin_hints(st, ns, 0)


@pytest.mark.parametrize("val,expect", [("true", True), ("1", True), ("false", False), ("0", False)])
def test_boolean_spellings(st, val, expect):
    ns = "hcw_bool"
    seed_origin(st.origin, ns, [1])
    r = hint(st.gw, ns, f"turbopuffer={val}&documents=false&snapshots={val}")
    assert_report(r, ns, "completed" if expect else "skipped", "skipped",
                  "no_snapshot" if expect else "skipped")


@pytest.mark.parametrize("qs", [
    "turbopuffer=yes", "documents=TRUE", "snapshots=False", "documents=2", "documents=",
    "documents", "turbopuffer=on", "snapshots=true&documents=nope", "documents=%20true",
    "page_size=0", "page_size=10001", "page_size=-1", "page_size=abc", "page_size=1.5",
    "page_size=", "page_size", "page_size=99999999999999999999", "page_size=%2B5", "page_size=5x",
])
def test_invalid_options_are_422_and_run_no_step(st, qs):
    ns = "hcw_invalid"
    seed_origin(st.origin, ns, [1])
    before = origin_hint_count(st.origin, ns)
    r = hint(st.gw, ns, qs)
    assert_error(r, 422, "validation_error")
    assert_origin_hints(st, ns, before)
    assert list_jobs(st.gw, ns) == []


def test_page_size_bounds_are_accepted(st):
    ns = "hcw_bounds"
    seed_origin(st.origin, ns, [1, 2])
    for n in (1, 10000):
        r = hint(st.gw, ns, f"turbopuffer=false&snapshots=false&page_size={n}")
        body = assert_report(r, ns, "skipped", "started", "skipped")
        assert body["documents"]["job"]["page_size"] == n, body
        wait_job(st.gw, ns, body["documents"]["job"]["id"])


def test_a_running_job_is_reported_not_duplicated(st):
    ns = "hcw_running"
    seed_origin(st.origin, ns, list(range(1, 11)))
    slow_origin_queries(st.origin, 300)
    r1 = hint(st.gw, ns, "turbopuffer=false&snapshots=false&page_size=2")
    b1 = assert_report(r1, ns, "skipped", "started", "skipped")
    r2 = hint(st.gw, ns, "turbopuffer=false&snapshots=false&page_size=2")
    b2 = assert_report(r2, ns, "skipped", "started", "skipped")
    assert b2["documents"]["job"]["id"] == b1["documents"]["job"]["id"], (b1, b2)
    assert len(list_jobs(st.gw, ns)) == 1
    clear_origin_faults(st.origin)
    j, _ = wait_job(st.gw, ns, b1["documents"]["job"]["id"])
    assert j["status"] == "completed" and j["documents_scanned"] == 10, j


def test_turbopuffer_step_failure_is_502_and_starts_no_job(st):
    ns = "hcw_tp_fail"
    seed_origin(st.origin, ns, [1, 2])
    set_origin_faults(st.origin, {"hint_cache_warm": {"error_rate": 1, "error_status": 500}})
    for qs in ("documents=true", "page_size=10", "turbopuffer=1", "snapshots=false"):
        r = hint(st.gw, ns, qs)
        assert_error(r, 502, "upstream_error")
    assert list_jobs(st.gw, ns) == []
    # The bare passthrough relays the upstream 500 as is (not a 502).
    r = hint(st.gw, ns)
    assert r.status == 500, r
    # With the hint step off, the other steps run.
    r = hint(st.gw, ns, "turbopuffer=false&snapshots=false")
    body = assert_report(r, ns, "skipped", "started", "skipped")
    clear_origin_faults(st.origin)
    wait_job(st.gw, ns, body["documents"]["job"]["id"])


def test_turbopuffer_step_on_an_unknown_namespace_is_502(st):
    ns = "hcw_tp_404"
    r = hint(st.gw, ns, "documents=false&snapshots=false")
    assert_error(r, 502, "upstream_error")


# ---------------------------------------------------------------------------------------------
# Snapshots step
# ---------------------------------------------------------------------------------------------
def test_seed_page_snapshot_curl_mirrors_the_latest_snapshot(st):
    ns = "products"
    older = make_snapshot(ns, 1715600000000, row_count=2,
                          fields=[{"name": "color", "values": [{"v": "red", "n": 2}]}], skipped=[])
    newer = make_snapshot(ns, 1715600400000)
    # Written newest first: "latest" is by key order, not by file time.
    put_object(st.objects, newer[0], newer[1])
    put_object(st.objects, older[0], older[1])
    # Noise that must be ignored: not of the key scheme, and another namespace's later snapshot.
    put_object(st.objects, f"snapshots/{ns}/zzzz.json", b"not json")
    put_object(st.objects, f"snapshots/{ns}/9999999999999-abcdefg.json", b"bad key: not hex sha7")
    other = make_snapshot("products2", 1999999999999)
    put_object(st.objects, other[0], other[1])

    # curl "$LAYER_GATEWAY_URL/v1/namespaces/products/hint_cache_warm?turbopuffer=false&documents=false&snapshots=true"
    r = http_request(st.gw, "GET",
                     "/v1/namespaces/products/hint_cache_warm?turbopuffer=false&documents=false&snapshots=true",
                     headers=dict(AUTH))
    body = assert_report(r, ns, "skipped", "skipped", "completed")
    s = body["snapshots"]
    assert s["key"] == newer[0] == "snapshots/products/1715600400000-" + newer[2][:7] + ".json", s
    assert s["watermark_ms"] == 1715600400000 and isinstance(s["watermark_ms"], int), s
    assert s["sha"] == newer[2] and HEX64.match(s["sha"]), s

    # Default steps: the same snapshot, alongside the hint and a job.
    seed_origin(st.origin, ns, [1])
    r = hint(st.gw, ns, "page_size=1000")
    body = assert_report(r, ns, "completed", "started", "completed")
    assert body["snapshots"] == s | {"enabled": True, "status": "completed"}, body
    wait_job(st.gw, ns, body["documents"]["job"]["id"])

    # A newer snapshot appears: the next call picks it up.
    newest = make_snapshot(ns, 1715600500000, row_count=None, skipped=[])
    put_object(st.objects, newest[0], newest[1])
    body = assert_report(hint(st.gw, ns, SNAPS_ONLY), ns, "skipped", "skipped", "completed")
    assert (body["snapshots"]["key"], body["snapshots"]["sha"]) == (newest[0], newest[2]), body


def test_no_snapshot_for_a_namespace_without_one(st):
    ns = "hcw_nosnap"
    # A sibling namespace sharing the prefix has one; it must not count.
    k, d, _ = make_snapshot("hcw_nosnap2", 1715600400000)
    put_object(st.objects, k, d)
    r = hint(st.gw, ns, SNAPS_ONLY)
    assert_report(r, ns, "skipped", "skipped", "no_snapshot")


def _latest_corrupt(st, ns: str, key: str, data: bytes):
    good = make_snapshot(ns, 1715600000000)
    put_object(st.objects, good[0], good[1])
    assert_report(hint(st.gw, ns, SNAPS_ONLY), ns, "skipped", "skipped", "completed")
    put_object(st.objects, key, data)
    return hint(st.gw, ns, SNAPS_ONLY)


def test_latest_body_of_another_namespace_is_502(st):
    ns = "hcw_foreign"
    k, d, sha = make_snapshot("someone_else", 1715600400000)
    r = _latest_corrupt(st, ns, f"snapshots/{ns}/1715600400000-{sha[:7]}.json", d)
    assert_error(r, 502, "upstream_error")


def test_latest_body_not_json_is_502(st):
    ns = "hcw_notjson"
    r = _latest_corrupt(st, ns, f"snapshots/{ns}/1715600400000-abcdef0.json", b"{not json")
    assert_error(r, 502, "upstream_error")


def test_latest_body_with_a_wrong_sha_is_502(st):
    ns = "hcw_badsha"
    k, d, sha = make_snapshot(ns, 1715600400000)
    body = json.loads(d)
    body["row_count"] = 4  # content changed, sha kept
    r = _latest_corrupt(st, ns, k, json.dumps(body).encode())
    assert_error(r, 502, "upstream_error")


def test_latest_body_whose_sha_does_not_match_its_key_is_502(st):
    ns = "hcw_keysha"
    k, d, sha = make_snapshot(ns, 1715600400000)
    wrong7 = "0000000" if not sha.startswith("0000000") else "1111111"
    r = _latest_corrupt(st, ns, f"snapshots/{ns}/1715600400000-{wrong7}.json", d)
    assert_error(r, 502, "upstream_error")


def test_latest_body_missing_a_member_is_502(st):
    ns = "hcw_nomember"
    k, d, sha = make_snapshot(ns, 1715600400000)
    body = json.loads(d)
    del body["fields"]
    r = _latest_corrupt(st, ns, k, json.dumps(body).encode())
    assert_error(r, 502, "upstream_error")


# ---------------------------------------------------------------------------------------------
# --object-store-dir
# ---------------------------------------------------------------------------------------------
def test_object_store_dir_flag_is_where_snapshots_are_read(stack_factory, tmp_path):
    objects = str(tmp_path / "elsewhere-objects")
    s = stack_factory(gw_args=("--object-store-dir", objects, "--upstream-api-key", TOKEN))
    ns = "hcw_flag"
    k, d, sha = make_snapshot(ns, 1715600400000)
    put_object(os.path.join(s.gw_data, "objects"), k, d)  # the default dir: not used
    assert_report(hint(s.gw, ns, SNAPS_ONLY), ns, "skipped", "skipped", "no_snapshot")
    put_object(objects, k, d)
    body = assert_report(hint(s.gw, ns, SNAPS_ONLY), ns, "skipped", "skipped", "completed")
    assert (body["snapshots"]["key"], body["snapshots"]["sha"]) == (k, sha), body


# ---------------------------------------------------------------------------------------------
# What reaches the upstream (a recording upstream in place of Turbopuffer)
# ---------------------------------------------------------------------------------------------
def test_upstream_sees_the_raw_passthrough_and_a_clean_orchestrated_hint(upstream, start_gateway,
                                                                         tmp_path):
    gw = start_gateway(upstream, "--data-dir", str(tmp_path / "gw-data"), "--access-log", "false")
    r = hint(gw, "ns1")
    assert r.status == 200 and r.body == b'{"ok":true}', r  # the upstream's answer, verbatim
    r = hint(gw, "ns1", "foo=bar&x=%20y")
    assert r.status == 200 and r.body == b'{"ok":true}', r
    r = hint(gw, "ns1", "documents=false&snapshots=false&foo=bar")
    assert_report(r, "ns1", "completed", "skipped", "skipped")
    r = hint(gw, "ns1", "turbopuffer=false&documents=false&snapshots=false")
    assert_report(r, "ns1", "skipped", "skipped", "skipped")
    got = [(q.method, q.target, q.header("Authorization")) for q in upstream.requests]
    assert got == [
        ("GET", "/v1/namespaces/ns1/hint_cache_warm", "Bearer x"),
        ("GET", "/v1/namespaces/ns1/hint_cache_warm?foo=bar&x=%20y", "Bearer x"),
        # The caller's key is a tenant here: validated once before the first orchestrated hint
        # (docs/design.md §9.7), and trusted for --key-validation-ttl after it.
        ("GET", "/v1/namespaces/ns1/schema", "Bearer x"),
        # The orchestrated hint carries none of the Layer options upstream.
        ("GET", "/v1/namespaces/ns1/hint_cache_warm", "Bearer x"),
    ], got


# ---------------------------------------------------------------------------------------------
# Percent-encoding in option names and values
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("qs", ["turbopuffer=false&snapshots=false&documents=%ZZ",
                                "turbopuffer=false&documents=false&snapshots=%ZZ",
                                "turbopuffer=false&snapshots=false&page_size=%ZZ"])
def test_malformed_percent_escape_in_a_value_is_422(st, qs):
    ns = "hcw_bug_pct_value"
    seed_origin(st.origin, ns, [1])
    r = hint(st.gw, ns, qs)
    try:
        assert_error(r, 422, "validation_error")
    finally:
        for j in list_jobs(st.gw, ns):
            wait_job(st.gw, ns, j["id"])


def test_percent_encoded_option_name_is_honoured(st):
    ns = "hcw_bug_pct_name"
    seed_origin(st.origin, ns, [1])
    r = hint(st.gw, ns, "%64ocuments=false")
    try:
        assert_report(r, ns, "completed", "skipped", "no_snapshot")
        assert list_jobs(st.gw, ns) == []
    finally:
        for j in list_jobs(st.gw, ns):
            wait_job(st.gw, ns, j["id"])


def test_a_failing_snapshot_step_starts_no_warm_job(st):
    """The snapshots step runs before the documents step: when it fails, the call answers 502 and
    no job was started whose id the caller would never see."""
    ns = "hcw_snapfail_nojob"
    seed_origin(st.origin, ns, [1, 2])
    put_object(st.objects, f"snapshots/{ns}/1715600400000-abcdef0.json", b"{not json")
    assert_error(hint(st.gw, ns, "page_size=1000"), 502, "upstream_error")
    assert list_jobs(st.gw, ns) == []


def test_documents_step_needs_the_write_scope(stack_factory):
    """Starting a warm through the hint needs what POST /warm needs; the other steps do not."""
    s = stack_factory(gw_args=("--auth-mode", "keys", "--gateway-key", "reader:read",
                               "--gateway-key", "writer:read+write"))
    ns = "hcw_scope"
    seed_origin(s.origin, ns, [1])

    def call(token, qs):
        return http_request(s.gw, "GET", hint_path(ns, qs),
                            headers={"Authorization": f"Bearer {token}"})

    r = call("reader", "turbopuffer=false")  # documents defaults to on
    assert r.status == 403, r
    assert r.json()["required_scope"] == "write", r.json()
    assert call("reader", "documents=true").status == 403
    assert_report(call("reader", "documents=false&snapshots=false"), ns, "completed", "skipped",
                  "skipped")
    assert call("reader", "").status == 202  # the raw passthrough needs only read
    body = assert_report(call("writer", "turbopuffer=false&snapshots=false"), ns, "skipped",
                         "started", "skipped")
    job_path = f"/v2/namespaces/{ns}/warm-jobs/{body['documents']['job']['id']}"
    deadline = time.monotonic() + 30  # only to prove it does not hang
    while True:
        job = http_request(s.gw, "GET", job_path, headers={"Authorization": "Bearer writer"}).json()
        if job["status"] != "running" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert job["status"] == "completed", job
