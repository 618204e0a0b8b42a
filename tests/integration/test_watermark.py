"""The stable watermark and cache state through the gateway (docs/design.md §4.6, §6.1, §6.2).

`layer origin --index-lag-ms 1500` reports its index as "updating" for 1.5 s after each write; the
gateway's consistency watcher polls the upstream metadata every second and moves the namespace's
stable watermark (`poll start − 500 ms`) once the index is up-to-date. The gateway exposes it as
`layer.stable_as_of` on v2 metadata, as `x-layer-stable-as-of` on query responses, and the cache
state as `layer.cache_state` / `/health` `cache_state[]`.
"""

from __future__ import annotations

import time

import pytest

from layer_testlib import http_request, wait_until
from test_cache_support import TOKEN, Stack, query, req, write
from test_warm_support import assert_job_shape, start_warm, wait_job

LAG_MS = 1500
LAYER_KEYS = {"stable_as_of", "is_stable", "cache_state", "cache_warmed_through"}


@pytest.fixture(scope="module")
def st(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("wm"), origin_args=("--index-lag-ms", str(LAG_MS)))
    yield s
    s.close()


def metadata(target, ns: str, version: str = "v2") -> dict:
    r = req(target, "GET", f"/{version}/namespaces/{ns}/metadata")
    assert r.status == 200, r
    assert r.content_type.startswith("application/json"), r
    return r.json()


def health_states(gw) -> dict:
    r = http_request(gw, "GET", "/health")
    assert r.status == 200, r
    entries = r.json()["cache_state"]
    assert isinstance(entries, list), entries
    out = {}
    for e in entries:
        assert {"namespace", "state", "warm_inflight"} <= set(e), e
        assert set(e) <= {"namespace", "tenant", "state", "warmed_through", "warm_inflight"}, e
        assert e["state"] in ("cold", "warming", "warm"), e
        assert isinstance(e["warm_inflight"], bool), e
        assert e["namespace"] not in out, entries
        # Callers' keys are tenants here (one key in these tests): the entry names its partition's
        # tenant by tag (docs/design.md §9.7), never by key.
        e = dict(e)
        tenant = e.pop("tenant", None)
        assert tenant is None or (len(tenant) == 16 and TOKEN not in tenant), e
        out[e["namespace"]] = e
    return out


# The watcher sees a write stable within the lag (1.5 s) plus a tick (1 s): 25 s only proves no hang.
STABLE_TIMEOUT = 25.0


def stable_md(gw, ns: str, timeout: float = STABLE_TIMEOUT) -> dict:
    return wait_until(lambda: (lambda m: m if m["layer"]["is_stable"] else None)(metadata(gw, ns)),
                      timeout=timeout, interval=0.1, what=f"{ns} stable")


def wait_watcher_stable(gw, ns: str, timeout: float = STABLE_TIMEOUT) -> int:
    """Waits (without reading metadata, which itself observes) until queries carry the header."""
    def hdr():
        r = query(gw, ns, {"rank_by": ["id", "asc"], "top_k": 10})
        assert r.status == 200, r
        return r.header("x-layer-stable-as-of")
    return int(wait_until(hdr, timeout=timeout, interval=0.1, what=f"{ns} x-layer-stable-as-of"))


# ---------------------------------------------------------------------------------------------
def test_metadata_layer_object_moves_from_unstable_to_stable(st):
    gw, ns = st.gw, "wm_basic"
    t_write = int(time.time() * 1000)
    r = write(gw, ns, {"upsert_rows": [{"id": i, "text": "some words " * 5} for i in range(1, 6)]})
    assert r.status == 200, r

    upstream = metadata(st.origin, ns)
    md = metadata(gw, ns)
    # The upstream fields are all there (the origin's own keys), plus `layer`.
    assert set(upstream) <= set(md), (upstream, md)
    for k in upstream:
        if k == "schema":  # the gateway hides its reserved attributes
            assert md[k] == {a: v for a, v in upstream[k].items()
                             if not a.startswith("_hevlayer_")}, (upstream, md)
        elif k not in ("index", "updated_at"):
            assert md[k] == upstream[k], (k, upstream, md)
    assert md["index"]["status"] == "updating", md
    layer = md["layer"]
    assert set(layer) == LAYER_KEYS, layer
    assert layer["is_stable"] is False, layer
    assert layer["stable_as_of"] is None, layer  # never stable yet
    assert layer["cache_state"] == "cold", layer
    assert layer["cache_warmed_through"] is None, layer
    # Writes through the gateway don't make it warm; nothing stable yet → no header.
    r = query(gw, ns, {"rank_by": ["id", "asc"], "top_k": 10})
    assert r.status == 200 and len(r.json()["rows"]) == 5, r
    assert r.header("x-layer-stable-as-of") is None, r

    # The watcher (1 s ticks) sees the index up-to-date after the 1.5 s lag: queries get the header
    # without any metadata read in between.
    hdr_wm = wait_watcher_stable(gw, ns)
    now = int(time.time() * 1000)
    assert t_write - 500 <= hdr_wm <= now, (t_write, hdr_wm, now)
    assert hdr_wm >= t_write + LAG_MS - 500 - 100, (t_write, hdr_wm)  # polled only after the lag

    md = metadata(gw, ns)
    layer = md["layer"]
    assert set(layer) == LAYER_KEYS, layer
    assert md["index"] == {"status": "up-to-date"}, md
    assert layer["is_stable"] is True, layer
    wm = layer["stable_as_of"]
    now = int(time.time() * 1000)
    assert type(wm) is int and t_write - 500 <= wm <= now, (t_write, wm, now)
    assert wm >= hdr_wm, (wm, hdr_wm)  # monotonic
    assert layer["cache_state"] == "cold" and layer["cache_warmed_through"] is None, layer

    # Query responses carry exactly the metadata's watermark (no metadata read in between).
    for _ in range(2):
        r = query(gw, ns, {"rank_by": ["id", "asc"], "top_k": 10})
        assert r.status == 200, r
        assert r.header("x-layer-stable-as-of") == str(wm), (r.headers, wm)

    # /health lists the namespace, cold.
    e = health_states(gw)[ns]
    assert e == {"namespace": ns, "state": "cold", "warm_inflight": False}, e


def test_a_new_write_makes_it_unstable_but_keeps_the_watermark(st):
    gw, ns = st.gw, "wm_rewrite"
    assert write(gw, ns, {"upsert_rows": [{"id": 1, "t": "a"}]}).status == 200
    wm1 = stable_md(gw, ns)["layer"]["stable_as_of"]
    assert write(gw, ns, {"upsert_rows": [{"id": 2, "t": "b"}]}).status == 200
    layer = metadata(gw, ns)["layer"]
    assert layer["is_stable"] is False, layer
    assert layer["stable_as_of"] == wm1, (layer, wm1)  # the previous watermark holds
    r = query(gw, ns, {"rank_by": ["id", "asc"], "top_k": 10})
    assert r.header("x-layer-stable-as-of") == str(wm1), r
    layer2 = stable_md(gw, ns)["layer"]
    assert layer2["stable_as_of"] > wm1, (layer2, wm1)


def test_warm_makes_the_namespace_warm_with_the_jobs_watermark(st):
    gw, ns = st.gw, "wm_warm"
    assert write(gw, ns, {"upsert_rows": [{"id": i, "t": str(i)} for i in range(1, 8)]}).status == 200
    stable_md(gw, ns)
    assert metadata(gw, ns)["layer"]["cache_state"] == "cold"

    r = start_warm(gw, ns, 3)
    assert r.status == 202, r
    j0 = r.json()
    assert_job_shape(j0, ns)
    j, _ = wait_job(gw, ns, j0["id"])
    assert j["status"] == "completed" and j["documents_scanned"] == 7, j
    sao = j.get("stable_as_of")
    assert type(sao) is int, j
    assert sao <= int(time.time() * 1000), j

    md = metadata(gw, ns)
    layer = md["layer"]
    assert layer["cache_state"] == "warm", layer
    assert layer["cache_warmed_through"] == sao, (layer, j)
    assert layer["is_stable"] is True, layer
    assert layer["stable_as_of"] >= sao, (layer, j)

    e = health_states(gw)[ns]
    assert e == {"namespace": ns, "state": "warm", "warmed_through": sao, "warm_inflight": False}, e


def test_v1_metadata_has_no_layer_object(st):
    gw, ns = st.gw, "wm_v1"
    assert write(gw, ns, {"upsert_rows": [{"id": 1, "t": "a"}]}).status == 200
    for _ in range(2):  # before and after stable
        md = metadata(gw, ns, "v1")
        assert "layer" not in md, md
        up = metadata(st.origin, ns, "v1")
        assert set(md) == set(up), (md, up)
        stable_md(gw, ns)


def test_never_written_namespace_has_no_header(st):
    gw = st.gw
    ns = "wm_outside"  # written straight to the origin, never through the gateway
    assert write(st.origin, ns, {"upsert_rows": [{"id": 1, "t": "a"}]}).status == 200
    r = query(gw, ns, {"rank_by": ["id", "asc"], "top_k": 10})
    assert r.status == 200 and r.header("x-layer-stable-as-of") is None, r
    # A namespace written through the gateway afterwards: once the watcher made it stable, it has
    # polled after the origin's index of `ns` caught up too (had it known `ns`, `ns` would be
    # stable by now).
    marker = "wm_outside_marker"
    assert write(gw, marker, {"upsert_rows": [{"id": 1, "t": "a"}]}).status == 200
    wait_watcher_stable(gw, marker)
    assert metadata(st.origin, ns)["index"]["status"] == "up-to-date"
    r = query(gw, ns, {"rank_by": ["id", "asc"], "top_k": 10})
    assert r.status == 200 and len(r.json()["rows"]) == 1, r
    assert r.header("x-layer-stable-as-of") is None, r
    assert ns not in health_states(gw)
    r = query(gw, "wm_missing", {"rank_by": ["id", "asc"], "top_k": 10})
    assert r.status == 404, r
    assert r.header("x-layer-stable-as-of") is None, r


def test_health_cache_state_is_sorted_by_namespace(st):
    gw = st.gw
    for ns in ("wm_sort_b", "wm_sort_a"):
        assert write(gw, ns, {"upsert_rows": [{"id": 1}]}).status == 200
    r = http_request(gw, "GET", "/health")
    names = [e["namespace"] for e in r.json()["cache_state"]]
    assert "wm_sort_a" in names and "wm_sort_b" in names, names
    assert names == sorted(names), names


def test_warm_while_updating_captures_the_existing_watermark(st):
    """docs/design.md §6.2: a warm captures start_wm = the *current stable watermark* (may be none);
    on success cache_warmed_through = start_wm and the job's stable_as_of = it. A namespace that
    was stable once but is updating again at warm start still has that watermark."""
    gw, ns = st.gw, "wm_warm_updating"
    assert write(gw, ns, {"upsert_rows": [{"id": 1, "t": "a"}]}).status == 200
    wm1 = stable_md(gw, ns)["layer"]["stable_as_of"]
    assert write(gw, ns, {"upsert_rows": [{"id": 2, "t": "b"}]}).status == 200
    r = start_warm(gw, ns)  # the origin reports "updating" for another ~1.5 s
    assert r.status == 202, r
    j, _ = wait_job(gw, ns, r.json()["id"])
    assert j["status"] == "completed" and j["documents_scanned"] == 2, j
    layer = metadata(gw, ns)["layer"]
    assert j.get("stable_as_of") == wm1, (j, wm1)
    assert layer["cache_state"] == "warm" and layer["cache_warmed_through"] == wm1, (layer, wm1)


def test_namespace_delete_purges_watermark_and_warm_state(st):
    """docs/design.md §4.3, DELETE /v2/namespaces/{ns}: purges the in-memory watermark and
    cache_warmed_through (among others). A namespace re-created afterwards starts cold, with no
    stable watermark and no x-layer-stable-as-of until the watcher sees it stable again."""
    gw, ns = st.gw, "wm_deleted"
    assert write(gw, ns, {"upsert_rows": [{"id": 1, "t": "a"}]}).status == 200
    stable_md(gw, ns)
    r = start_warm(gw, ns)
    assert r.status == 202, r
    j, _ = wait_job(gw, ns, r.json()["id"])
    assert j["status"] == "completed" and type(j.get("stable_as_of")) is int, j
    assert health_states(gw)[ns]["state"] == "warm"

    r = req(gw, "DELETE", f"/v2/namespaces/{ns}")
    assert r.status == 200, r
    assert ns not in health_states(gw), health_states(gw)

    # Re-created (straight at the origin, so the gateway's watcher is not told).
    assert write(st.origin, ns, {"upsert_rows": [{"id": 2, "t": "b"}]}).status == 200
    r = query(gw, ns, {"rank_by": ["id", "asc"], "top_k": 10})
    assert r.status == 200 and [x["id"] for x in r.json()["rows"]] == [2], r
    assert r.header("x-layer-stable-as-of") is None, r
    layer = metadata(gw, ns)["layer"]
    assert layer["stable_as_of"] is None and layer["is_stable"] is False, layer
    assert layer["cache_state"] == "cold" and layer["cache_warmed_through"] is None, layer


def test_v2_metadata_of_an_unknown_namespace_is_relayed_like_turbopuffer(st):
    """Turbopuffer-compatible routes answer exactly as Turbopuffer does (docs/design.md §9.2): the
    upstream's 404 is relayed, so an SDK sees the same NotFoundError with or without Layer."""
    r = req(st.gw, "GET", "/v2/namespaces/wm_nowhere/metadata")
    assert r.status == 404, r
    body = r.json()
    assert body.get("status") == "error"
    assert "wm_nowhere" in body.get("error", "")
    assert "layer" not in body
