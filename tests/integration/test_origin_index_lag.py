"""`layer origin --index-lag-ms N`: metadata reports the index as updating for N ms after a write."""

from __future__ import annotations

from layer_testlib import Gateway, clean_env, http_request, wait_until
from test_origin_durability import TOKEN, origin_factory, query, start, write  # noqa: F401

LAG_MS = 1500


def metadata(target, ns: str, version: str = "v2"):
    r = http_request(target, "GET", f"/{version}/namespaces/{ns}/metadata", token=TOKEN)
    assert r.status == 200, r
    return r.json()


def check_lag(target, ns: str) -> None:
    r = write(target, ns, {"upsert_rows": [{"id": i, "text": "some words " * 5} for i in range(10)]})
    assert r.status == 200, r
    for version in ("v2", "v1"):
        md = metadata(target, ns, version)
        assert md["index"]["status"] == "updating", md
        assert isinstance(md["index"]["unindexed_bytes"], int) and md["index"]["unindexed_bytes"] > 0, md
    # Strong queries see the unindexed write at once.
    rows = query(target, ns, {"rank_by": ["id", "asc"], "limit": 100}).json()["rows"]
    assert len(rows) == 10
    # Up-to-date once the lag is over (the bound only proves it does not stay updating).
    md = wait_until(lambda: (lambda m: m if m["index"]["status"] == "up-to-date" else None)(metadata(target, ns)),
                    timeout=10 * LAG_MS / 1000, interval=0.05, what="index up-to-date")
    assert md["index"] == {"status": "up-to-date"}, md
    # A second write starts a new lag window.
    assert write(target, ns, {"upsert_rows": [{"id": 100}]}).status == 200
    assert metadata(target, ns)["index"]["status"] == "updating"


def test_index_lag_direct(origin_factory):
    o = origin_factory("--index-lag-ms", str(LAG_MS))
    check_lag(o, "lagged")


def test_index_lag_through_gateway(origin_factory, start_gateway, tmp_path):
    o = origin_factory("--index-lag-ms", str(LAG_MS))
    g = start_gateway(o.url, "--access-log", "false", "--data-dir", str(tmp_path / "gw-data"))
    check_lag(g, "lagged-gw")


def test_no_lag_by_default(origin_factory):
    o = origin_factory()
    assert write(o, "nolag", {"upsert_rows": [{"id": 1}]}).status == 200
    assert metadata(o, "nolag")["index"] == {"status": "up-to-date"}
