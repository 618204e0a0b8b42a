"""A cache hit is byte-equal to a miss (docs/design.md §4.2.8), against the strict origin
(`layer origin --api-key`): rows written through a gateway in forms Turbopuffer normalises
(datetimes with offsets, uuids in upper case or braces, ints written as floats, floats written
as integers, f32 vectors as base64, arrays of these) are mirrored in the form the origin returns
them in. Each test writes through gateway A and reads the rows back from A's cache (a hit), then
reads the same version through a second gateway with an empty cache of its own (a miss), for the
single and the batch fetch, and compares the bodies byte for byte. Rows whose stored form is not
pinned are invalidated instead of mirrored, so A reads them upstream too."""
from __future__ import annotations

import base64
import json
import os
import struct

import pytest

from layer_testlib import wait_until
from test_cache_support import (TOKEN, clear_origin_faults, fetch, fetch_batch, gateway_process,
                                query, set_origin_faults, stack_factory, start,  # noqa: F401
                                write)
from test_warm_support import start_warm, wait_job

UUID = "769c134d-07b8-4225-954a-b6cc5ffc320c"


@pytest.fixture
def st(stack_factory):
    return stack_factory(origin_args=("--api-key", TOKEN))


def cold_gateway(st):
    """Another gateway in front of the same origin, with an empty cache of its own."""
    n = len(st.procs)
    g = gateway_process(st.tmp, st.origin.url, os.path.join(st.tmp, f"cold{n}-data"),
                        name=f"cold{n}")
    return start(st._track(g))


def body_with_literals(body: dict, literals: dict) -> bytes:
    """`body` as JSON text, each string "@name" replaced by the literal JSON text literals[name]
    (number forms such as 1e3 that Python's json module would not write)."""
    text = json.dumps(body)
    for name, literal in literals.items():
        text = text.replace(json.dumps("@" + name), literal)
    return text.encode()


def assert_hit_equals_miss(st, ns: str, ids):
    """Single and batch fetches of `ids` through the gateway that wrote them are hits and answer
    exactly the bytes that fetches through cold gateways (misses) answer. Returns the attributes
    by id."""
    singles = {}
    for i in ids:
        r = fetch(st.gw, ns, i)
        assert r.status == 200 and r.header("x-layer-cache") == "hit", (i, r)
        singles[i] = r.body
    batch = fetch_batch(st.gw, ns, ids)
    assert batch.status == 200 and batch.header("x-layer-cache") == "hit", batch

    cold = cold_gateway(st)
    for i in ids:
        r = fetch(cold, ns, i)
        assert r.status == 200 and r.header("x-layer-cache") == "miss", (i, r)
        assert r.body == singles[i], (i, r.body, singles[i])
    cold = cold_gateway(st)  # its cache has not seen these ids: the batch is a miss too
    r = fetch_batch(cold, ns, ids)
    assert r.status == 200 and r.header("x-layer-cache") == "miss", r
    assert r.body == batch.body, (r.body, batch.body)
    return {i: json.loads(b)["attributes"] for i, b in singles.items()}


def assert_not_mirrored(st, ns: str, ids):
    """The write left no cached version of `ids`: the gateway's first fetch of each reads the
    origin (a miss) and answers what a cold gateway answers; once its backfill landed, it serves
    hits with the origin's bytes."""
    cold = cold_gateway(st)
    for i in ids:
        r = fetch(st.gw, ns, i)
        assert r.status == 200 and r.header("x-layer-cache") == "miss", (i, r)
        assert fetch(cold, ns, i).body == r.body, i
    for i in ids:
        wait_until(lambda: fetch(st.gw, ns, i).header("x-layer-cache") == "hit",
                   what=f"the backfill of {i}")
    assert_hit_equals_miss(st, ns, ids)


SCHEMA = {
    "s": "string", "i": "int", "u": "uint", "f": "float", "b": "bool", "dt": "datetime",
    "uu": "uuid", "as": "[]string", "ai": "[]int", "au": "[]uint", "af": "[]float",
    "ab": "[]bool", "adt": "[]datetime", "auu": "[]uuid",
    "emb": {"type": "[2]f32", "ann": True},
}


def f32_base64(*values: float) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def test_every_declared_type_hits_with_the_bytes_of_a_miss(st):
    ns = "canon_declared"
    rows = [
        {"id": 1, "s": "2026-05-30T02:00:00+02:00", "i": "@one_point_zero",
         "u": 18446744073709551615, "f": 2, "b": True, "dt": "2026-05-30T02:00:00+02:00",
         "uu": "{769C134D-07B8-4225-954A-B6CC5FFC320C}", "as": ["x", "\u00c9\n\"q"],
         "ai": "@ints_as_floats", "au": [0, 9223372036854775808], "af": [1, 0.5, -0.0],
         "ab": [True, False], "adt": ["2026-05-30", "2026-05-30T00:00:00.123-01:00"],
         "auu": ["769C134D07B84225954AB6CC5FFC320D", "urn:uuid:" + UUID],
         "emb": [1, 0.1000000001]},
        {"id": 2, "s": "plain", "i": "@exponent", "u": 0, "f": "@small_exponent", "b": False,
         "dt": "1969-12-31T23:59:59.5Z", "uu": UUID, "as": [], "ai": [-9007199254740993],
         "au": [], "af": [123456789012, 1e300], "ab": [], "adt": ["2024-02-29t12:00:00,250z"],
         "auu": [], "emb": f32_base64(0.7, -2.5)},
        {"id": 3, "s": None, "i": "@negative_zero", "f": -3, "dt": "2026-05-30",
         "uu": "769c134d07b84225954ab6cc5ffc320e", "emb": [0.25, 3]},
    ]
    literals = {"one_point_zero": "1.0", "ints_as_floats": "[1.0,2e0,-3]", "exponent": "1e3",
                "small_exponent": "1E-7", "negative_zero": "-0.0"}
    body = body_with_literals({"distance_metric": "cosine_distance", "schema": SCHEMA,
                               "upsert_rows": rows}, literals)
    r = write(st.gw, ns, body)
    assert r.status == 200, r
    got = assert_hit_equals_miss(st, ns, [1, 2, 3])
    # What was cached is Turbopuffer's form, not the request's.
    assert got[1]["dt"] == "2026-05-30T00:00:00.000000000Z", got[1]
    assert got[1]["uu"] == UUID and got[1]["i"] == 1, got[1]
    assert got[2]["i"] == 1000 and got[2]["emb"] == [pytest.approx(0.7), -2.5], got[2]
    assert "s" not in got[3] and got[3]["i"] == 0, got[3]

    # Patches merge values in the same form into the cached rows.
    patch = body_with_literals({
        "patch_rows": [{"id": 1, "dt": "2026-06-01T01:00:00+01:00", "f": 7, "i": "@four",
                        "s": None, "uu": "URN:UUID:769C134D07B84225954AB6CC5FFC320F"}],
        "patch_columns": {"id": [2, 3], "adt": [["2026-01-01"], ["2026-01-02T00:00:00Z"]],
                          "af": [[1], None]},
    }, {"four": "4.0"})
    r = write(st.gw, ns, patch)
    assert r.status == 200, r
    got = assert_hit_equals_miss(st, ns, [1, 2, 3])
    assert got[1]["dt"] == "2026-06-01T00:00:00.000000000Z" and "s" not in got[1], got[1]
    assert got[2]["adt"] == ["2026-01-01T00:00:00.000000000Z"], got[2]


def test_warm_pages_and_backfills_cache_the_upstreams_bytes(stack_factory):
    # Warm jobs read the origin with the gateway's own key.
    st = stack_factory(gw_args=("--upstream-api-key", TOKEN), origin_args=("--api-key", TOKEN))
    ns = "canon_warm"
    # Written around the gateway: the cache holds only what warm pages and misses bring.
    rows = [{"id": 1, "f": "@tiny", "af": "@floats", "dt": "2026-05-30T02:00:00+02:00",
             "uu": "{769C134D-07B8-4225-954A-B6CC5FFC320C}", "s": "\u00e9\u0001", "emb": [1, 0.3]},
            {"id": 2, "f": "@big", "i": "@one_point_zero", "adt": ["2026-05-30"]}]
    literals = {"tiny": "1.5e-7",
                "floats": "[0.0001,1e16,1E15,-0.0,5e-324," + ",".join(HARD_FLOATS) + "]",
                "big": "1.7976931348623157e308", "one_point_zero": "1.0"}
    body = body_with_literals({"schema": SCHEMA, "distance_metric": "cosine_distance",
                               "upsert_rows": rows}, literals)
    r = write(st.origin, ns, body)
    assert r.status == 200, r
    r = start_warm(st.gw, ns)
    assert r.status == 202, r
    j, _ = wait_job(st.gw, ns, r.json()["id"])
    assert j["status"] == "completed" and j["documents_scanned"] == 2, (j.get("error"), j)
    assert_hit_equals_miss(st, ns, [1, 2])


# Shortest texts of doubles that a reader not rounding exactly (Boost.JSON before 1.83) reads one
# ulp off.
HARD_FLOATS = ["0.11935319286735585", "1.6266288757324219", "2.1829489720880483e41"]


def test_floats_keep_every_digit(st):
    ns = "canon_floats"
    literal = "[" + ",".join(HARD_FLOATS) + "]"
    body = body_with_literals({"schema": {"f": "float", "af": "[]float"},
                               "upsert_rows": [{"id": 1, "f": "@f", "af": "@af"}]},
                              {"f": HARD_FLOATS[0], "af": literal})
    r = write(st.gw, ns, body)
    assert r.status == 200, r
    # Forwarded exactly: the origin holds the values written.
    row = query(st.origin, ns, {"rank_by": ["id", "asc"], "top_k": 1,
                                "include_attributes": ["f", "af"]})
    assert row.status == 200, row
    assert f'"af":{literal}'.encode() in row.body, row.body
    assert_hit_equals_miss(st, ns, [1])
    r = fetch(st.gw, ns, 1)
    assert f'"f":{HARD_FLOATS[0]},"af":{literal}'.encode() in r.body, r.body
    # A patch merges into the cached row without changing the digits of the rest.
    r = write(st.gw, ns, {"patch_rows": [{"id": 1, "g": True}]})
    assert r.status == 200, r
    assert_hit_equals_miss(st, ns, [1])
    assert f'"af":{literal}'.encode() in fetch(st.gw, ns, 1).body


def test_inferred_types_follow_the_upstreams_schema(st):
    ns = "canon_inferred"
    # No schema: the origin infers the types; the gateway reads them from its schema.
    r = write(st.gw, ns, {"upsert_rows": [
        {"id": 1, "s": "2026-05-30T02:00:00+02:00", "i": 1, "f": 1.5, "b": True,
         "as": ["769C134D-07B8-4225-954A-B6CC5FFC320C"], "ai": [1, 2], "af": [1.5, 2.5],
         "ab": [False], "e": []}]})
    assert r.status == 200, r
    # The types are known from now on: an integer written to the float attributes is a float.
    r = write(st.gw, ns, {"upsert_rows": [{"id": 2, "f": 2, "af": [1, 2], "i": 3, "s": "x"}]})
    assert r.status == 200, r
    got = assert_hit_equals_miss(st, ns, [1, 2])
    assert got[1]["s"] == "2026-05-30T02:00:00+02:00", got[1]  # a string, not a datetime
    assert got[2]["f"] == 2.0 and isinstance(got[2]["f"], float), got[2]


def test_an_attribute_typed_outside_the_gateway(st):
    ns = "canon_outside"
    # `score` becomes a float by a write that bypasses the gateway.
    r = write(st.origin, ns, {"upsert_rows": [{"id": 100, "score": 1.5, "when": "x"}]})
    assert r.status == 200, r
    r = write(st.gw, ns, {"upsert_rows": [{"id": 1, "score": 2}]})
    assert r.status == 200, r
    fetch(st.gw, ns, 1)
    single = fetch(st.gw, ns, 1)
    assert single.header("x-layer-cache") == "hit", single
    assert b'"score":2.0' in single.body, single  # not the request's 2
    assert_hit_equals_miss(st, ns, [1])


def test_values_whose_stored_form_is_not_pinned_are_read_upstream(st):
    ns = "canon_unpinned"
    schema = {"dt": "datetime", "h": {"type": "[2]f16", "ann": True},
              "sp": {"type": "{}f16", "sparse_knn": {"distance_metric": "dot_product"}}}
    rows = [{"id": 1, "dt": "2026-05-30T00:00:00.0001Z"},  # below a millisecond
            {"id": 2, "dt": 1780099200000},                # epoch ms as a number
            {"id": 3, "h": [0.5, 0.1]},                    # f16
            {"id": 4, "sp": {"1": 0.1}},                   # sparse f16
            {"id": 5, "dt": "2026-05-30T02:00:00+02:00"}]  # pinned: mirrored
    r = write(st.gw, ns, {"distance_metric": "cosine_distance", "schema": schema,
                          "upsert_rows": rows})
    assert r.status == 200, r
    # The four rows were invalidated, not mirrored: their first fetch reads the origin, whose
    # bytes are cached then.
    assert_not_mirrored(st, ns, [1, 2, 3, 4])
    assert_hit_equals_miss(st, ns, [5])


def test_a_failed_schema_read_invalidates_instead_of_mirroring(st):
    ns = "canon_schema_fault"
    set_origin_faults(st.origin, {"schema": {"error_rate": 1.0, "error_status": 500}})
    r = write(st.gw, ns, {"upsert_rows": [{"id": 1, "n": 1, "t": "2026-05-30T02:00:00+02:00"}]})
    assert r.status == 200, r
    clear_origin_faults(st.origin)
    # The gateway could not learn the types: the row was not mirrored.
    assert_not_mirrored(st, ns, [1])
    # The next write reads the schema and mirrors.
    r = write(st.gw, ns, {"upsert_rows": [{"id": 2, "n": 2.0, "t": "y"}]})
    assert r.status == 200, r
    got = assert_hit_equals_miss(st, ns, [1, 2])
    assert got[2]["n"] == 2 and isinstance(got[2]["n"], int), got[2]
