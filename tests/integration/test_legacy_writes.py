"""Turbopuffer's legacy v1 writes through the gateway (docs/design.md §4.2.3, §4.3): a
`POST /v1/namespaces/{ns}` write and a `DELETE /v1/namespaces/{ns}` change rows upstream, so no
version from before them may be served from the cache afterwards."""

from __future__ import annotations

import pytest

from test_cache_support import (TOKEN, fetch, fetch_batch, req, set_origin_faults,  # noqa: F401
                                stack_factory, write)


@pytest.fixture
def st(stack_factory):
    return stack_factory(gw_args=("--upstream-timeout-ms", "1000"),
                         origin_args=("--api-key", TOKEN))


def cached(st, ns: str) -> None:
    assert write(st.gw, ns, {"upsert_rows": [{"id": 1, "v": 1}, {"id": 2, "v": 1}]}).status == 200
    for i in (1, 2):
        r = fetch(st.gw, ns, i)
        assert r.status == 200 and r.header("x-layer-cache") == "hit", r


def test_a_v1_write_invalidates_the_namespace(st):
    ns = "legacy_write"
    cached(st, ns)
    r = req(st.gw, "POST", f"/v1/namespaces/{ns}", {"upserts": [{"id": 1, "attributes": {"v": 2}}]})
    assert r.status == 200, r
    r = fetch(st.gw, ns, 1)
    assert r.status == 200 and r.json()["attributes"] == {"v": 2}, (r.header("x-layer-cache"), r)
    # Ids the write did not name are read again too (the gateway does not follow the v1 shape).
    r = fetch(st.gw, ns, 2)
    assert r.status == 200 and r.header("x-layer-cache") == "miss", r
    # A v1 delete (ids without vectors) as well.
    r = req(st.gw, "POST", f"/v1/namespaces/{ns}", {"ids": [2], "vectors": [None]})
    assert r.status == 200, r
    assert fetch(st.gw, ns, 2).status == 404


def test_a_v1_write_whose_answer_is_lost_invalidates_the_namespace(st):
    ns = "legacy_lost"
    cached(st, ns)
    set_origin_faults(st.origin, {"legacy": {"after_apply": "drop", "times": 1}})
    r = req(st.gw, "POST", f"/v1/namespaces/{ns}", {"upserts": [{"id": 1, "attributes": {"v": 3}}]})
    assert r.status == 502, r
    r = fetch(st.gw, ns, 1)
    assert r.status == 200 and r.json()["attributes"] == {"v": 3}, (r.header("x-layer-cache"), r)


def test_a_refused_v1_write_leaves_the_cache_alone(st):
    ns = "legacy_refused"
    cached(st, ns)
    r = req(st.gw, "POST", f"/v1/namespaces/{ns}", b"{not json")
    assert 400 <= r.status < 500, r
    assert fetch(st.gw, ns, 1).header("x-layer-cache") == "hit"


def test_a_v1_namespace_delete_drops_the_cached_rows(st):
    ns = "legacy_delete"
    cached(st, ns)
    r = req(st.gw, "DELETE", f"/v1/namespaces/{ns}")
    assert r.status == 200, r
    assert fetch(st.gw, ns, 1).status == 404
    r = fetch_batch(st.gw, ns, [1, 2])
    assert r.status == 200 and r.json()["documents"] == [], r
