"""Namespace snapshots (docs/design.md §7): policies stored in the object store and applied at
once, the automatic writer fired by the watcher's watermark (histograms checked against a brute
force count of the origin's rows), dedupe of an unchanged distribution, history and bodies,
retention that keeps the newest, the hint's snapshots step, and a namespace delete purging them.
Against the default local object store (<data-dir>/objects)."""
from __future__ import annotations

import json
import os
from collections import Counter

import pytest

from layer_testlib import wait_until
from test_cache_support import (TOKEN, metric, query, req, stack_factory,  # noqa: F401
                                write)

FIELDS = ["color", "size", "tags"]


@pytest.fixture
def st(stack_factory):
    return stack_factory(gw_args=("--upstream-api-key", TOKEN, "--watch-stable-interval", "100ms",
                                  "--snapshot-sweep-interval", "200ms"))


def put_policy(gw, ns, body):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    if isinstance(data, str):
        data = data.encode()
    return req(gw, "PUT", f"/v2/namespaces/{ns}/snapshot-policy", data)


def history(gw, ns, qs=""):
    r = req(gw, "GET", f"/v2/namespaces/{ns}/history" + (f"?{qs}" if qs else ""))
    assert r.status == 200, r
    return r.json()


def origin_rows(origin, ns):
    rows, cursor = [], None
    while True:
        q = {"rank_by": ["id", "asc"], "top_k": 1000, "include_attributes": True}
        if cursor is not None:
            q["filters"] = ["id", "Gt", cursor]
        r = query(origin, ns, q)
        assert r.status == 200, r
        page = r.json()["rows"]
        rows += page
        if len(page) < 1000:
            return rows
        cursor = page[-1]["id"]


def brute_force(rows, field):
    """Per value text, the number of rows holding it (array elements once per row)."""
    c = Counter()
    for row in rows:
        if field not in row:
            continue
        v = row[field]
        values = set(v) if isinstance(v, list) else {v}
        for x in values:
            c[x if isinstance(x, str) else json.dumps(x, separators=(",", ":"))] += 1
    return dict(c)


def seed_rows(n):
    colors = ["red", "green", "blue"]
    rows = []
    for i in range(1, n + 1):
        row = {"id": i, "color": colors[i % 3], "size": i % 4, "other": f"o{i}"}
        if i % 5:
            row["tags"] = ["a", "b"] if i % 2 else ["b", "b", "c"]
        rows.append(row)
    return rows


def test_policies_are_validated_stored_and_normalised(st):
    ns = "snap_policy"
    r = req(st.gw, "GET", f"/v2/namespaces/{ns}/snapshot-policy")
    assert r.status == 404 and r.json()["error"] == "not_found", r
    for bad in ('{"facetFields":[""]}', '{"facetFields":"color"}', '{"interval":"0s"}',
                '{"interval":"soon"}', '{"retention":"forever"}', '{"colour":1}', "[1]", "{"):
        r = put_policy(st.gw, ns, bad)
        assert r.status == 422 and r.json()["error"] == "validation_error", (bad, r)
        assert req(st.gw, "GET", f"/v2/namespaces/{ns}/snapshot-policy").status == 404, bad
    r = put_policy(st.gw, ns, {"facetFields": ["size", "color", "size"], "interval": "1s",
                               "retention": "30d"})
    assert r.status == 200, r
    want = {"facetFields": ["color", "size"], "interval": "1s", "retention": "30d"}
    assert r.json() == want
    assert req(st.gw, "GET", f"/v2/namespaces/{ns}/snapshot-policy").json() == want
    assert os.path.exists(os.path.join(st.gw_data, "objects", "snapshot-policies", f"{ns}.json"))
    r = put_policy(st.gw, ns, {})
    assert r.json() == {"facetFields": [], "interval": "5m", "retention": "never"}, r


def test_the_writer_snapshots_a_namespace_as_it_changes(st):
    ns = "snap_auto"
    rows = seed_rows(250)
    assert write(st.gw, ns, {"upsert_rows": rows}).status == 200
    r = put_policy(st.gw, ns, {"facetFields": FIELDS, "interval": "1s"})
    assert r.status == 200, r
    h = wait_until(lambda: history(st.gw, ns), timeout=20.0, what="the first snapshot")
    assert set(h[0]) == {"watermark_ms", "sha"} and len(h[0]["sha"]) == 7, h
    r = req(st.gw, "GET", f"/v2/namespaces/{ns}/snapshots/{h[0]['sha']}")
    assert r.status == 200, r
    body = r.json()
    assert body["namespace"] == ns and body["row_count"] == len(rows), body
    assert body["sha"].startswith(h[0]["sha"]) and body["watermark_ms"] == h[0]["watermark_ms"]
    origin = origin_rows(st.origin, ns)
    for f in body["fields"]:
        assert {v["v"]: v["n"] for v in f["values"]} == brute_force(origin, f["name"]), f
        assert [v["v"] for v in f["values"]] == sorted(v["v"] for v in f["values"])
    assert [f["name"] for f in body["fields"]] == FIELDS
    # The full sha finds it too; an unknown one is a 404, a malformed one a 422.
    assert req(st.gw, "GET", f"/v2/namespaces/{ns}/snapshots/{body['sha']}").json() == body
    assert req(st.gw, "GET", f"/v2/namespaces/{ns}/snapshots/0000000").status == 404
    assert req(st.gw, "GET", f"/v2/namespaces/{ns}/snapshots/xyz").status == 422
    # The hint's snapshots step serves the same snapshot, with its key.
    r = req(st.gw, "GET", f"/v1/namespaces/{ns}/hint_cache_warm?turbopuffer=false&documents=false")
    assert r.status == 200, r
    s = r.json()["snapshots"]
    assert s["status"] == "completed" and s["sha"] == body["sha"], s
    assert s["key"] == f"snapshots/{ns}/{body['watermark_ms']:013d}-{h[0]['sha']}.json", s

    # A change to a facet makes a new snapshot; a change elsewhere is deduped.
    deduped = metric(st.gw, "layer_snapshots_deduped_total")
    assert write(st.gw, ns, {"patch_rows": [{"id": 1, "other": "changed"}]}).status == 200
    wait_until(lambda: metric(st.gw, "layer_snapshots_deduped_total") > deduped, timeout=20.0,
               what="a deduped snapshot")
    assert len(history(st.gw, ns)) == 1
    assert write(st.gw, ns, {"upsert_rows": [{"id": 1000, "color": "violet"}]}).status == 200
    h2 = wait_until(lambda: (lambda h: h if len(h) == 2 else None)(history(st.gw, ns)),
                    timeout=20.0, what="a second snapshot")
    assert h2[0]["watermark_ms"] > h2[1]["watermark_ms"] and h2[1] == h[0], h2
    newest = req(st.gw, "GET", f"/v2/namespaces/{ns}/snapshots/{h2[0]['sha']}").json()
    colors = next(f for f in newest["fields"] if f["name"] == "color")
    assert {"v": "violet", "n": 1} in colors["values"], colors
    # history's limit and before.
    assert history(st.gw, ns, "limit=1") == h2[:1]
    assert history(st.gw, ns, f"before={h2[0]['watermark_ms']}") == h2[1:]
    assert req(st.gw, "GET", f"/v2/namespaces/{ns}/history?limit=0").status == 422

    # A namespace delete purges its snapshots.
    assert req(st.gw, "DELETE", f"/v2/namespaces/{ns}").status == 200
    assert history(st.gw, ns) == []


def test_a_field_over_the_cap_is_listed_as_skipped(st):
    ns = "snap_cap"
    rows = [{"id": i, "uniq": f"u{i}", "color": "red"} for i in range(1, 10003)]
    for i in range(0, len(rows), 5000):
        assert write(st.origin, ns, {"upsert_rows": rows[i:i + 5000]}).status == 200
    assert put_policy(st.gw, ns, {"facetFields": ["uniq", "color"], "interval": "1s"}).status == 200
    h = wait_until(lambda: history(st.gw, ns), timeout=30.0, what="the snapshot")
    body = req(st.gw, "GET", f"/v2/namespaces/{ns}/snapshots/{h[0]['sha']}").json()
    assert [f["name"] for f in body["fields"]] == ["color"], body["fields_skipped"]
    assert body["fields_skipped"] == [{"name": "uniq", "reason": "exceeded_cap",
                                       "distinct_observed": 10002, "cap": 10000}]
    assert metric(st.gw, "layer_snapshot_fields_skipped_total", field="uniq") >= 1


def test_retention_keeps_the_newest(st):
    ns = "snap_retention"
    assert write(st.gw, ns, {"upsert_rows": [{"id": 1, "color": "red"}]}).status == 200
    assert put_policy(st.gw, ns, {"facetFields": ["color"], "interval": "1s"}).status == 200
    wait_until(lambda: history(st.gw, ns), timeout=20.0, what="the first snapshot")
    assert write(st.gw, ns, {"upsert_rows": [{"id": 2, "color": "blue"}]}).status == 200
    wait_until(lambda: len(history(st.gw, ns)) == 2, timeout=20.0, what="the second snapshot")
    newest = history(st.gw, ns)[0]
    # Everything older than a second goes, but never the newest.
    assert put_policy(st.gw, ns, {"facetFields": ["color"], "interval": "1h",
                                  "retention": "1s"}).status == 200
    wait_until(lambda: history(st.gw, ns) == [newest], timeout=20.0, what="retention")
    assert metric(st.gw, "layer_snapshots_pruned_total") >= 1
