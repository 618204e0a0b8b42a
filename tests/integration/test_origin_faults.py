"""Fault injection on `layer origin --test-faults`, observed through the gateway."""

from __future__ import annotations

import http.client
import json
import threading
import time

import pytest

from layer_testlib import http_request, wait_until
from test_origin_durability import (TOKEN, kill9, origin_factory, post_json, query,  # noqa: F401
                                    write)

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
    # Below the 700 ms timeout: answered, and the query was delayed (the rule's budget is spent).
    set_faults(o, {"query": {"latency_ms": 300, "times": 1}})
    r = query(g, "f", Q)
    assert r.status == 200, r
    assert get_faults(o)["query"]["times"] == 0
    # Far beyond it: the gateway's own timeout answers (it says so), long before the origin would.
    set_faults(o, {"query": {"latency_ms": 30_000}})
    t0 = time.monotonic()
    r = query(g, "f", Q)
    assert r.status == 502, r
    assert r.json()["error"] == "upstream_error", r
    assert "did not answer within 700 ms" in r.json()["message"], r
    assert time.monotonic() - t0 < 7.0  # no hang: 10x the timeout, far below the 30 s latency


def test_faults_endpoint_is_404_without_flag(origin_factory):
    o = origin_factory()
    for method, body in (("GET", None), ("PUT", b'{"query":{"error_rate":1}}'), ("DELETE", None)):
        r = http_request(o, method, "/_test/faults", body)
        assert r.status == 404, (method, r)
    # And nothing was injected.
    assert write(o, "nf", {"upsert_rows": [{"id": 1}]}).status == 200
    assert query(o, "nf", Q).status == 200


# ---------------------------------------------------------------------------------------------
# After-apply faults: the write takes effect, its answer is lost or late (docs/origin.md)
# ---------------------------------------------------------------------------------------------
LOST_ANSWER = (http.client.HTTPException, ConnectionError)


def ids(target, ns):
    r = query(target, ns, Q)
    assert r.status == 200, r
    return [x["id"] for x in r.json()["rows"]]


def test_apply_then_drop_applies_the_write_durably(origin_factory, tmp_path):
    data = str(tmp_path / "drop-data")
    o = origin_factory("--test-faults", data_dir=data, name="drop1")
    assert write(o, "d", {"upsert_rows": [{"id": 1}]}).status == 200
    set_faults(o, {"write": {"after_apply": "drop", "times": 1}})
    with pytest.raises(LOST_ANSWER):
        write(o, "d", {"upsert_rows": [{"id": 2, "v": "applied"}]})
    # The client saw a closed connection, yet the write took effect...
    r = query(o, "d", {**Q, "include_attributes": True})
    assert r.status == 200 and r.json()["rows"] == [{"id": 1}, {"id": 2, "v": "applied"}], r
    # ...the budget is spent, so the next write is answered...
    assert get_faults(o)["write"]["times"] == 0
    assert write(o, "d", {"upsert_rows": [{"id": 3}]}).status == 200
    # ...and the dropped write was durable: it survives kill -9.
    kill9(o)
    o2 = origin_factory("--test-faults", data_dir=data, name="drop2")
    assert ids(o2, "d") == [1, 2, 3]


def test_apply_then_drop_on_namespace_delete(pair):
    o, _ = pair
    assert ids(o, "f") == [1]
    set_faults(o, {"delete_namespace": {"after_apply": "drop", "times": 1}})
    with pytest.raises(LOST_ANSWER):
        http_request(o, "DELETE", "/v2/namespaces/f", token=TOKEN)
    assert query(o, "f", Q).status == 404
    # Other families are not affected by the rule.
    assert write(o, "f2", {"upsert_rows": [{"id": 5}]}).status == 200


def test_apply_then_drop_through_the_gateway_is_502_but_applied(pair):
    o, g = pair
    set_faults(o, {"write": {"after_apply": "drop", "times": 1}})
    r = write(g, "f", {"upsert_rows": [{"id": 7}]})
    assert r.status == 502 and r.json()["error"] == "upstream_error", r
    assert ids(o, "f") == [1, 7]
    assert ids(g, "f") == [1, 7]


def test_after_apply_rules_only_act_on_data_changing_requests(pair):
    o, _ = pair
    set_faults(o, {"*": {"after_apply": "drop"}})
    # Reads are answered...
    assert ids(o, "f") == [1]
    assert http_request(o, "GET", "/v1/namespaces/f/schema", token=TOKEN).status == 200
    # ...writes of any family are applied and dropped.
    with pytest.raises(LOST_ANSWER):
        write(o, "f", {"upsert_rows": [{"id": 8}]})
    with pytest.raises(LOST_ANSWER):
        post_json(o, "/v1/namespaces/f/schema", {"s": {"type": "string"}})
    http_request(o, "DELETE", "/_test/faults")
    assert ids(o, "f") == [1, 8]
    schema = http_request(o, "GET", "/v1/namespaces/f/schema", token=TOKEN).json()
    assert schema["s"]["type"] == "string"
    # A rule that could never fire is refused.
    r = http_request(o, "PUT", "/_test/faults", json.dumps({"query": {"after_apply": "drop"}}).encode())
    assert r.status == 422, r


def test_apply_then_delay_makes_the_write_visible_before_its_answer(pair):
    o, _ = pair
    set_faults(o, {"write": {"after_apply": "delay", "after_apply_delay_ms": 4000, "times": 1}})
    answered = threading.Event()
    result = {}

    def slow_write():
        try:
            result["resp"] = write(o, "f", {"upsert_rows": [{"id": 9}]})
        except Exception as e:  # noqa: BLE001 - reported by the assertions below
            result["error"] = e
        answered.set()

    writer = threading.Thread(target=slow_write, daemon=True)
    writer.start()
    # Read from other connections until the write shows: it is applied while its answer waits.
    wait_until(lambda: 9 in ids(o, "f"), timeout=30, what="the delayed write to become visible")
    assert not answered.is_set(), f"the answer arrived before the write was seen: {result}"
    # The answer does come, late, and it is the ordinary one.
    assert answered.wait(timeout=30), "the delayed answer never came"
    assert "error" not in result, result
    r = result["resp"]
    assert r.status == 200 and r.json()["rows_upserted"] == 1, r
    assert get_faults(o)["write"]["times"] == 0


def test_apply_then_delay_past_the_gateways_timeout(pair):
    o, g = pair
    # The gateway gives up after 700 ms (502); the write took effect all the same.
    set_faults(o, {"write": {"after_apply": "delay", "after_apply_delay_ms": 5000, "times": 1}})
    r = write(g, "f", {"upsert_rows": [{"id": 11}]})
    assert r.status == 502 and r.json()["error"] == "upstream_error", r
    wait_until(lambda: ids(o, "f") == [1, 11], timeout=30, what="the timed-out write to show")
