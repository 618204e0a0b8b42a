"""`layer serve` with no --upstream runs the local origin in-process under --data-dir."""

from __future__ import annotations

import json
import os

from layer_testlib import Gateway, clean_env
from test_origin_durability import TOKEN, all_rows, query, start, write


def embedded(tmp_path, name: str, *extra: str) -> Gateway:
    g = Gateway([], clean_env(), str(tmp_path), name)
    g.argv += ["--listen", "127.0.0.1:0", "--port-file", g.port_file,
               "--data-dir", str(tmp_path / "data"), *extra]
    return start(g)


def test_embedded_origin_logs_write_query_restart(tmp_path):
    g = embedded(tmp_path, "emb0")
    try:
        first = g.output().splitlines()[:4]
        text = "\n".join(first)
        data_dir = os.path.realpath(str(tmp_path / "data"))
        assert "origin" in text and ("local" in text or "embedded" in text), first
        assert data_dir in text or str(tmp_path / "data") in text, (data_dir, first)

        r = write(g, "emb", {"distance_metric": "cosine_distance",
                             "upsert_rows": [{"id": 1, "vector": [1, 0], "t": "a"},
                                             {"id": 2, "vector": [0, 1], "t": "b"}]})
        assert r.status == 200, r
        assert r.json()["rows_upserted"] == 2
        r = query(g, "emb", {"rank_by": ["vector", "ANN", [1, 0]], "limit": 1,
                             "include_attributes": ["t"]})
        assert r.status == 200, r
        assert r.json()["rows"] == [{"id": 1, "$dist": 0, "t": "a"}]
        r = query(g, "missing", {"rank_by": ["id", "asc"], "limit": 1})
        assert r.status == 404 and r.json()["status"] == "error", r
    finally:
        g.stop()  # kill -9: the acknowledged write must survive

    g = embedded(tmp_path, "emb1")
    try:
        assert all_rows(g, "emb") == [{"id": 1, "vector": [1, 0], "t": "a"},
                                      {"id": 2, "vector": [0, 1], "t": "b"}]
        assert write(g, "emb", {"deletes": [1]}).status == 200
        g.sigterm()
        assert g.wait_exit(20) == 0, g.output()[-2000:]
    finally:
        g.stop()

    g = embedded(tmp_path, "emb2")
    try:
        assert [r["id"] for r in all_rows(g, "emb", include=False)] == [2]
    finally:
        g.stop()


def test_embedded_origin_index_lag_flag(tmp_path):
    g = embedded(tmp_path, "lag", "--origin-index-lag-ms", "1500")
    try:
        assert write(g, "lag", {"upsert_rows": [{"id": 1, "a": "x" * 100}]}).status == 200
        from layer_testlib import http_request
        md = http_request(g, "GET", "/v2/namespaces/lag/metadata", token=TOKEN).json()
        assert md["index"]["status"] == "updating", md
        assert md["index"]["unindexed_bytes"] > 0, md
    finally:
        g.stop()
