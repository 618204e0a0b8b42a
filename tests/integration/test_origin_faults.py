"""Fault injection on `layer origin --test-faults`, observed through the gateway."""

from __future__ import annotations

import json
import time

import pytest

from layer_testlib import http_request
from test_origin_durability import TOKEN, origin_factory, query, write  # noqa: F401

Q = {"rank_by": ["id", "asc"], "limit": 10}


def set_faults(origin, faults) -> None:
    r = http_request(origin, "PUT", "/_test/faults", json.dumps(faults).encode())
    assert r.status == 200, r


def get_faults(origin):
    r = http_request(origin, "GET", "/_test/faults")
    assert r.status == 200, r
    return r.json()


@pytest.fixture
def pair(origin_factory, start_gateway, tmp_path):
    o = origin_factory("--test-faults")
    g = start_gateway(o.url, "--access-log", "false", "--upstream-timeout-ms", "700",
                      "--data-dir", str(tmp_path / "gw-data"))
    assert write(o, "f", {"upsert_rows": [{"id": 1, "a": "x"}]}).status == 200
    yield o, g
    http_request(o, "DELETE", "/_test/faults")


def test_faults_endpoint_roundtrip(pair):
    o, _ = pair
    assert get_faults(o) == {}
    set_faults(o, {"query": {"latency_ms": 5, "error_rate": 0.5, "error_status": 503, "drop_rate": 0}})
    f = get_faults(o)
    assert f["query"]["latency_ms"] == 5 and f["query"]["error_status"] == 503
    assert f["query"]["error_rate"] == 0.5 and f["query"]["drop_rate"] == 0
    r = http_request(o, "DELETE", "/_test/faults")
    assert r.status in (200, 204), r
    assert get_faults(o) == {}
    r = http_request(o, "PUT", "/_test/faults", b"{not json")
    assert 400 <= r.status < 500, r


def test_injected_503_is_relayed_verbatim(pair):
    o, g = pair
    set_faults(o, {"query": {"error_rate": 1, "error_status": 503}})
    direct = query(o, "f", Q)
    via = query(g, "f", Q)
    assert direct.status == 503, direct
    assert via.status == 503, via
    assert via.body == direct.body
    assert via.content_type == direct.content_type
    assert direct.json()["status"] == "error"
    # Only the query family is affected.
    assert write(g, "f", {"upsert_rows": [{"id": 2}]}).status == 200
    assert http_request(g, "GET", "/v1/namespaces/f/schema", token=TOKEN).status == 200
    # Other statuses are relayed too (429 and 500 families).
    for status in (429, 500, 400):
        set_faults(o, {"query": {"error_rate": 1, "error_status": status}})
        d, v = query(o, "f", Q), query(g, "f", Q)
        assert (d.status, v.status) == (status, status), (d, v)
        assert v.body == d.body
    http_request(o, "DELETE", "/_test/faults")
    r = query(g, "f", Q)
    assert r.status == 200 and [x["id"] for x in r.json()["rows"]] == [1, 2], r


def test_wildcard_family_and_write_family(pair):
    o, g = pair
    set_faults(o, {"write": {"error_rate": 1, "error_status": 503}})
    r = write(g, "f", {"upsert_rows": [{"id": 3}]})
    assert r.status == 503, r
    assert query(g, "f", Q).status == 200
    # A failed write was not applied.
    assert [x["id"] for x in query(g, "f", Q).json()["rows"]] == [1]
    set_faults(o, {"*": {"error_rate": 1, "error_status": 502}})
    for method, path, body in (("POST", "/v2/namespaces/f/query", json.dumps(Q).encode()),
                               ("GET", "/v2/namespaces/f/metadata", None),
                               ("GET", "/v1/namespaces", None),
                               ("GET", "/v1/namespaces/f/hint_cache_warm", None)):
        d = http_request(o, method, path, body, token=TOKEN)
        v = http_request(g, method, path, body, token=TOKEN)
        assert d.status == 502 and v.status == 502, (path, d, v)
        assert v.body == d.body


def test_dropped_connection_becomes_502_upstream_error(pair):
    o, g = pair
    set_faults(o, {"query": {"drop_rate": 1}})
    with pytest.raises(Exception):
        query(o, "f", Q)  # the origin closes the connection without an answer
    r = query(g, "f", Q)
    assert r.status == 502, r
    assert r.content_type.startswith("application/json"), r
    assert r.json()["error"] == "upstream_error", r
    # The gateway is fine afterwards.
    http_request(o, "DELETE", "/_test/faults")
    assert query(g, "f", Q).status == 200


def test_latency_beyond_upstream_timeout_is_502(pair):
    o, g = pair
    set_faults(o, {"query": {"latency_ms": 300}})
    t0 = time.monotonic()
    r = query(g, "f", Q)
    assert r.status == 200, r  # below the 700 ms timeout
    assert time.monotonic() - t0 >= 0.28
    set_faults(o, {"query": {"latency_ms": 2500}})
    t0 = time.monotonic()
    r = query(g, "f", Q)
    elapsed = time.monotonic() - t0
    assert r.status == 502, r
    assert r.json()["error"] == "upstream_error", r
    assert 0.6 <= elapsed < 2.4, f"gateway answered after {elapsed:.2f}s, timeout is 0.7s"


def test_faults_endpoint_is_404_without_flag(origin_factory):
    o = origin_factory()
    for method, body in (("GET", None), ("PUT", b'{"query":{"error_rate":1}}'), ("DELETE", None)):
        r = http_request(o, method, "/_test/faults", body)
        assert r.status == 404, (method, r)
    # And nothing was injected.
    assert write(o, "nf", {"upsert_rows": [{"id": 1}]}).status == 200
    assert query(o, "nf", Q).status == 200
