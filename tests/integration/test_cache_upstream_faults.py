"""Upstream faults (docs/design.md §4.2.2, §4.2.5, §8.1 "upstream down"): a write the origin
refuses (4xx) or that never reached it leaves the cache exactly as it was; one whose outcome is
unknown (a 5xx, a dropped answer) invalidates the ids it names, which are then read again, never
served from before the write; a fetch miss with the upstream down is a 502 upstream_error, while
cache hits are still served."""

from __future__ import annotations

import pytest

from test_cache_support import (clear_origin_faults, doc, fetch, fetch_batch, set_origin_faults,  # noqa: F401
                                stack, stack_factory, upstream_row, write)

V1 = {1: {"v": "one", "n": 1}, 2: {"v": "two", "n": 2}}


def seed(gw, ns):
    r = write(gw, ns, {"upsert_rows": [dict(id=i, **a) for i, a in V1.items()]})
    assert r.status == 200, r
    for i, a in V1.items():
        r = fetch(gw, ns, i)
        assert doc(r) == a and r.header("x-layer-cache") == "hit", r


def assert_unchanged(s, ns, cache_result="hit"):
    """The rows are as before the failed write; `cache_result` says whether the cache still had
    them ("hit") or they were invalidated and read again while the write whose outcome is unknown
    still counts as in flight ("miss-on-error", docs/design.md §4.2.5)."""
    for i, a in V1.items():
        r = fetch(s.gw, ns, i)
        assert r.status == 200 and doc(r) == a, f"cache changed by a failed write: {r}"
        assert r.header("x-layer-cache") == cache_result, r
    clear_origin_faults(s.origin)
    for i, a in V1.items():
        row = upstream_row(s.origin, ns, i)
        assert {k: v for k, v in row.items() if k in a} == a, row


FAILING_WRITE = {"upsert_rows": [{"id": 1, "v": "NEW", "n": 9}], "patch_rows": [{"id": 2, "v": "NEW"}],
                 "deletes": [2]}


@pytest.mark.parametrize("status,cache_result", [(500, "miss-on-error"), (503, "miss-on-error"), (429, "hit")])
def test_write_error_is_relayed_and_a_5xx_invalidates(stack, status, cache_result):
    ns = f"uf_{status}"
    seed(stack.gw, ns)
    set_origin_faults(stack.origin, {"write": {"error_rate": 1, "error_status": status}})
    r = write(stack.gw, ns, FAILING_WRITE)
    assert r.status == status, r
    assert r.json() == {"status": "error", "error": "injected fault"}, r
    r = write(stack.gw, ns, {"upsert_columns": {"id": [1, 2], "v": ["X", "Y"], "n": [0, 0]}})
    assert r.status == status, r
    assert_unchanged(stack, ns, cache_result)


def test_dropped_write_is_502_and_invalidates_what_it_names(stack):
    ns = "uf_drop"
    seed(stack.gw, ns)
    set_origin_faults(stack.origin, {"write": {"drop_rate": 1}})
    r = write(stack.gw, ns, FAILING_WRITE)
    assert r.status == 502, r
    assert r.json().get("error") == "upstream_error", r
    assert_unchanged(stack, ns, "miss-on-error")


def test_fetch_with_upstream_failing(stack):
    s = stack
    ns = "uf_fetch"
    seed(s.gw, ns)
    # 3 exists upstream but is not cached (written directly to the origin).
    assert write(s.origin, ns, {"upsert_rows": [{"id": 3, "v": "three", "n": 3}]}).status == 200
    for faults in ({"query": {"error_rate": 1, "error_status": 503}}, {"query": {"drop_rate": 1}},
                   {"*": {"error_rate": 1, "error_status": 500}}):
        set_origin_faults(s.origin, faults)
        r = fetch(s.gw, ns, 3)
        assert r.status == 502, (faults, r)
        assert r.json().get("error") == "upstream_error", r
        r = fetch_batch(s.gw, ns, [1, 3])
        assert r.status == 502, (faults, r)
        # Hits are served without the upstream.
        r = fetch(s.gw, ns, 1)
        assert r.status == 200 and doc(r) == V1[1] and r.header("x-layer-cache") == "hit", r
        r = fetch_batch(s.gw, ns, [2, 1])
        assert r.status == 200 and r.header("x-layer-cache") == "hit", r
        assert r.json() == {"documents": [{"id": 2, "attributes": V1[2]}, {"id": 1, "attributes": V1[1]}],
                            "missing": []}, r
        clear_origin_faults(s.origin)
    # The failed reads did not poison anything: 3 is fetched (and backfilled) now.
    r = fetch(s.gw, ns, 3)
    assert r.status == 200 and doc(r) == {"v": "three", "n": 3}, r


def test_upstream_process_down(stack):
    s = stack
    ns = "uf_down"
    seed(s.gw, ns)
    assert write(s.origin, ns, {"upsert_rows": [{"id": 3, "v": "three", "n": 3}]}).status == 200
    s.origin.stop()  # kill -9: connection refused from now on
    r = write(s.gw, ns, FAILING_WRITE)
    assert r.status == 502 and r.json().get("error") == "upstream_error", r
    r = fetch(s.gw, ns, 3)
    assert r.status == 502 and r.json().get("error") == "upstream_error", r
    for i, a in V1.items():
        r = fetch(s.gw, ns, i)
        assert r.status == 200 and doc(r) == a and r.header("x-layer-cache") == "hit", r
    r = fetch_batch(s.gw, ns, [1, 2])
    assert r.status == 200 and r.header("x-layer-cache") == "hit", r
