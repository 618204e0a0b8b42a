"""The write path and request validation around the document cache (docs/design.md §4.1–§4.3): patches on a cold cache, conditional and by-filter
writes, gzip bodies, reserved attributes, projections, the 422 cases, malformed writes and
namespace deletes."""

from __future__ import annotations

import gzip
import json

import pytest

from test_cache_support import (STAMP, doc, fetch, fetch_batch, query, req,  # noqa: F401
                                stack, stack_factory, strip_reserved, upstream_row, write)

AFFECTED_KEYS = ("upserted_ids", "patched_ids", "deleted_ids", "affected_ids")


def upstream_truth(origin, ns, doc_id):
    row = upstream_row(origin, ns, doc_id)
    if row is None:
        return None
    return {k: v for k, v in strip_reserved(row).items() if k not in ("id", "vector")}


def assert_matches_upstream(s, ns, ids, twice=True):
    for _ in range(2 if twice else 1):  # miss then hit
        for i in ids:
            want = upstream_truth(s.origin, ns, i)
            r = fetch(s.gw, ns, i)
            if want is None:
                assert r.status == 404, (i, r)
            else:
                assert r.status == 200 and doc(r) == want, (i, want, r)


# ---------------------------------------------------------------------------------------------
def test_patch_on_cold_cache_returns_full_document(stack):
    s = stack
    ns = "wp_cold"
    full = {"a": "A", "b": "B", "c": 3, "tags": ["x", "y"]}
    r = write(s.origin, ns, {"upsert_rows": [dict(id=i, **full) for i in (1, 2, 3)]})
    assert r.status == 200, r
    r = write(s.gw, ns, {"patch_rows": [{"id": 1, "b": "patched"}]})
    assert r.status == 200, r
    r = write(s.gw, ns, {"patch_columns": {"id": [2], "c": [30]}})
    assert r.status == 200, r
    want = {1: dict(full, b="patched"), 2: dict(full, c=30), 3: full}
    for _ in range(2):
        for i, a in want.items():
            r = fetch(s.gw, ns, i)
            assert r.status == 200 and doc(r) == a, f"partial or stale document after a patch: {r}"
        r = fetch_batch(s.gw, ns, [2, 1, 3])
        assert r.json() == {"documents": [{"id": i, "attributes": want[i]} for i in (2, 1, 3)],
                            "missing": []}, r
    # A patch of a now-cached document merges into the full row.
    assert write(s.gw, ns, {"patch_rows": [{"id": 1, "a": "again"}]}).status == 200
    r = fetch(s.gw, ns, 1)
    assert doc(r) == dict(full, b="patched", a="again"), r
    assert_matches_upstream(s, ns, [1, 2, 3])


# ---------------------------------------------------------------------------------------------
def seed_rows(s, ns, n=6):
    r = write(s.gw, ns, {"upsert_rows": [{"id": i, "v": "v1", "k": i} for i in range(1, n + 1)]})
    assert r.status == 200, r
    for i in range(1, n + 1):
        assert fetch(s.gw, ns, i).header("x-layer-cache") == "hit"


def test_conditional_writes_invalidate_exactly_affected_ids(stack):
    s = stack
    ns = "wp_cond"
    seed_rows(s, ns)
    # Only rows whose existing k < 2 are replaced.
    r = write(s.gw, ns, {"upsert_rows": [{"id": 1, "v": "v2", "k": 1}, {"id": 2, "v": "v2", "k": 2}],
                         "upsert_condition": ["k", "Lt", 2]})
    assert r.status == 200, r
    assert not any(k in r.json() for k in AFFECTED_KEYS), f"client did not ask for ids: {r}"
    r = write(s.gw, ns, {"patch_rows": [{"id": 3, "v": "p"}, {"id": 4, "v": "p"}],
                         "patch_condition": ["k", "Eq", 3]})
    assert r.status == 200, r
    assert not any(k in r.json() for k in AFFECTED_KEYS), r
    r = write(s.gw, ns, {"deletes": [5, 6], "delete_condition": ["k", "Eq", 6],
                         "return_affected_ids": True})
    assert r.status == 200, r
    assert r.json().get("deleted_ids") == [6], r
    expected = {1: {"v": "v2", "k": 1}, 2: {"v": "v1", "k": 2}, 3: {"v": "p", "k": 3},
                4: {"v": "v1", "k": 4}, 5: {"v": "v1", "k": 5}, 6: None}
    for i, a in expected.items():
        assert upstream_truth(s.origin, ns, i) == a, (i, upstream_row(s.origin, ns, i))
    assert_matches_upstream(s, ns, expected)


def test_filter_writes_invalidate_exactly_affected_ids(stack):
    s = stack
    ns = "wp_filter"
    seed_rows(s, ns)
    r = write(s.gw, ns, {"delete_by_filter": ["k", "Gte", 5]})
    assert r.status == 200, r
    assert not any(k in r.json() for k in AFFECTED_KEYS), r
    r = write(s.gw, ns, {"patch_by_filter": {"filters": ["k", "Lt", 3], "patch": {"v": "pbf"}}})
    assert r.status == 200, r
    assert not any(k in r.json() for k in AFFECTED_KEYS), r
    r = write(s.gw, ns, {"patch_by_filter": {"filters": ["k", "Eq", 3], "patch": {"v": "p3"}},
                         "return_affected_ids": True})
    assert r.status == 200, r
    assert r.json().get("patched_ids") == [3], r
    expected = {1: {"v": "pbf", "k": 1}, 2: {"v": "pbf", "k": 2}, 3: {"v": "p3", "k": 3},
                4: {"v": "v1", "k": 4}, 5: None, 6: None}
    for i, a in expected.items():
        assert upstream_truth(s.origin, ns, i) == a, i
    assert_matches_upstream(s, ns, expected)
    r = fetch(s.gw, ns, 4)
    assert r.header("x-layer-cache") == "hit", "an unaffected id was invalidated"
    r = fetch_batch(s.gw, ns, [1, 5, 4, 6])
    assert r.json() == {"documents": [{"id": 1, "attributes": expected[1]},
                                      {"id": 4, "attributes": expected[4]}], "missing": [5, 6]}, r


# ---------------------------------------------------------------------------------------------
def test_gzip_write_is_stamped_and_mirrored(stack):
    s = stack
    ns = "wp_gzip"
    body = gzip.compress(json.dumps({"upsert_rows": [{"id": "g1", "v": "zipped", "n": 7}]}).encode())
    r = req(s.gw, "POST", f"/v2/namespaces/{ns}", body,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status == 200, r
    r = fetch(s.gw, ns, "g1")
    assert doc(r) == {"v": "zipped", "n": 7} and r.header("x-layer-cache") == "hit", r
    row = upstream_row(s.origin, ns, "g1")
    assert isinstance(row.get(STAMP), int) and row[STAMP] > 0, f"gzip write not stamped: {row}"
    r = fetch(s.gw, ns, "g1", include=["v", STAMP])
    assert doc(r) == {"v": "zipped", STAMP: row[STAMP]}, r
    body = gzip.compress(json.dumps({"patch_rows": [{"id": "g1", "v": "zipped2"}]}).encode())
    r = req(s.gw, "POST", f"/v2/namespaces/{ns}", body,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status == 200, r
    assert doc(fetch(s.gw, ns, "g1")) == {"v": "zipped2", "n": 7}
    assert upstream_row(s.origin, ns, "g1")[STAMP] >= row[STAMP]


# ---------------------------------------------------------------------------------------------
RESERVED_WRITES = [
    {"upsert_rows": [{"id": 1, "v": "x", STAMP: 1}]},
    {"upsert_rows": [{"id": 1, "v": "x", "_hevlayer_x": 1}]},
    {"upsert_columns": {"id": [1], "_hevlayer_x": [1]}},
    {"patch_rows": [{"id": 1, STAMP: 1}]},
    {"patch_columns": {"id": [1], "_hevlayer_shard": [0]}},
    {"patch_by_filter": {"filters": ["id", "Eq", 1], "patch": {"_hevlayer_x": 1}}},
]


@pytest.mark.parametrize("body", RESERVED_WRITES, ids=range(len(RESERVED_WRITES)))
def test_reserved_attribute_in_write_is_422(stack, body):
    s = stack
    r = write(s.gw, "wp_reserved_new", body)
    assert r.status == 422 and r.json().get("error") == "validation_error", r
    assert query(s.origin, "wp_reserved_new", {"rank_by": ["id", "asc"], "top_k": 1}).status == 404
    # An existing document is left alone as well.
    assert write(s.gw, "wp_reserved", {"upsert_rows": [{"id": 1, "v": "orig"}]}).status == 200
    r = write(s.gw, "wp_reserved", body)
    assert r.status == 422 and r.json().get("error") == "validation_error", r
    assert upstream_truth(s.origin, "wp_reserved", 1) == {"v": "orig"}
    assert doc(fetch(s.gw, "wp_reserved", 1)) == {"v": "orig"}


def test_queries_hide_reserved_attributes_unless_named(stack):
    s = stack
    ns = "wp_query"
    assert write(s.gw, ns, {"upsert_rows": [{"id": 1, "v": "a", "w": 1}, {"id": 2, "v": "b", "w": 2}]}).status == 200
    base = {"rank_by": ["id", "asc"], "top_k": 10}
    r = query(s.gw, ns, dict(base, include_attributes=True))
    assert r.status == 200 and r.json()["rows"] == [{"id": 1, "v": "a", "w": 1}, {"id": 2, "v": "b", "w": 2}], r
    r = query(s.gw, ns, dict(base, exclude_attributes=["w"]))
    assert r.status == 200 and r.json()["rows"] == [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}], r
    r = query(s.gw, ns, dict(base, include_attributes=["v", STAMP]))
    rows = r.json()["rows"]
    assert [set(x) for x in rows] == [{"id", "v", STAMP}] * 2, r
    assert all(isinstance(x[STAMP], int) and x[STAMP] > 0 for x in rows), r
    r = query(s.gw, ns, dict(base, include_attributes=["v"]))
    assert r.json()["rows"] == [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}], r


def test_fetch_projection(stack):
    s = stack
    ns = "wp_proj"
    r = write(s.gw, ns, {"upsert_rows": [{"id": 1, "vector": [0.1, 0.2], "a": "A", "b": 2, "c": [1, 2]}],
                         "distance_metric": "cosine_distance"})
    assert r.status == 200, r
    for attempt in range(2):  # from the cache, then after a miss (upstream read)
        r = fetch(s.gw, ns, 1)
        assert doc(r) == {"a": "A", "b": 2, "c": [1, 2]}, r  # never vector, never reserved
        assert r.header("x-layer-warning") is None, r
        r = fetch(s.gw, ns, 1, include=["a"])
        assert doc(r) == {"a": "A"}, r
        r = fetch(s.gw, ns, 1, include=["a", "vector"])
        assert doc(r) == {"a": "A"}, r
        assert r.header("x-layer-warning") == "vector_attribute_dropped", r
        r = fetch(s.gw, ns, 1, include=["b", STAMP, "nope"])
        a = doc(r)
        assert set(a) == {"b", STAMP} and a["b"] == 2 and a[STAMP] > 0, r
        r = fetch_batch(s.gw, ns, [1, 2], include=["c", "vector"])
        assert r.json() == {"documents": [{"id": 1, "attributes": {"c": [1, 2]}}], "missing": [2]}, r
        assert r.header("x-layer-warning") == "vector_attribute_dropped", r
        r = fetch(s.gw, ns, 1, include=[" a ", "b"])  # names are trimmed
        assert doc(r) == {"a": "A", "b": 2}, r
        # A projected read must not have cached a fragment: invalidate, then read projected
        # first (miss) and full afterwards.
        assert write(s.gw, ns, {"patch_by_filter": {"filters": ["id", "Eq", 1], "patch": {"b": 2}}}).status == 200
        r = fetch(s.gw, ns, 1, include=["a"])
        assert doc(r) == {"a": "A"}, r


# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("body", [
    b'{"ids":[]}', b'{"ids":5}', b'{"ids":"1"}', b'{"ids":null}', b'{}', b'not json', b'[1,2]',
    json.dumps({"ids": list(range(1001))}).encode(),
], ids=["empty", "number", "string", "null", "no-ids", "not-json", "array", "1001-ids"])
def test_batch_fetch_422(stack, body):
    r = req(stack.gw, "POST", "/v2/namespaces/wp_422/documents", body)
    assert r.status == 422, r
    assert r.json().get("error") == "validation_error", r


def test_batch_fetch_1000_ids_ok(stack):
    assert write(stack.gw, "wp_1000", {"upsert_rows": [{"id": 5, "v": "x"}]}).status == 200
    r = fetch_batch(stack.gw, "wp_1000", list(range(1000)))
    assert r.status == 200, r
    body = r.json()
    assert body["documents"] == [{"id": 5, "attributes": {"v": "x"}}] and len(body["missing"]) == 999


@pytest.mark.parametrize("body", [{}, {"upserts": [{"id": 1, "v": "x"}]},
                                  {"patches": [{"id": 1, "v": "x"}]}],
                         ids=["empty", "legacy-upserts", "legacy-patches"])
def test_write_422(stack, body):
    r = write(stack.gw, "wp_w422", body)
    assert r.status == 422 and r.json().get("error") == "validation_error", r
    assert query(stack.origin, "wp_w422", {"rank_by": ["id", "asc"], "top_k": 1}).status == 404


@pytest.mark.parametrize("body", [
    b'{"upsert_rows":{"id":1}}', b'{"upsert_rows":[5]}', b'{"deletes":"x"}',
    b'{"upsert_rows":[{"v":"no id"}]}', b'{"patch_rows":[{"id":{"x":1}}]}',
], ids=range(5))
def test_malformed_write_answered_by_origin(stack, body):
    s = stack
    direct = req(s.origin, "POST", "/v2/namespaces/wp_malformed", body)
    via = req(s.gw, "POST", "/v2/namespaces/wp_malformed", body)
    assert 400 <= direct.status < 500, direct
    assert (via.status, via.body) == (direct.status, direct.body), (direct, via)


def test_namespace_delete_and_recreate(stack):
    s = stack
    ns = "wp_nsdel"
    seed_rows(s, ns, 4)
    r = req(s.gw, "DELETE", f"/v2/namespaces/{ns}")
    assert r.status == 200, r
    for i in range(1, 5):
        r = fetch(s.gw, ns, i)
        assert r.status == 404, f"document of a deleted namespace served: {r}"
    r = fetch_batch(s.gw, ns, [1, 2])
    assert r.status in (200, 404), r
    if r.status == 200:
        assert r.json() == {"documents": [], "missing": [1, 2]}, r
    # Re-created: old cached documents stay gone.
    assert write(s.gw, ns, {"upsert_rows": [{"id": 2, "v": "new", "k": 20}]}).status == 200
    for _ in range(2):
        assert fetch(s.gw, ns, 1).status == 404
        r = fetch(s.gw, ns, 2)
        assert doc(r) == {"v": "new", "k": 20}, r
        r = fetch_batch(s.gw, ns, [1, 2, 3])
        assert r.json() == {"documents": [{"id": 2, "attributes": {"v": "new", "k": 20}}],
                            "missing": [1, 3]}, r
    # Re-created directly upstream (bypassing this gateway) after a delete through it.
    assert req(s.gw, "DELETE", f"/v2/namespaces/{ns}").status == 200
    assert write(s.origin, ns, {"upsert_rows": [{"id": 3, "v": "direct"}]}).status == 200
    assert fetch(s.gw, ns, 2).status == 404
    assert doc(fetch(s.gw, ns, 3)) == {"v": "direct"}
