"""`layer origin` durability: every acknowledged write and namespace delete survives kill -9."""

from __future__ import annotations

import http.client
import json
import os
import threading
import time

import pytest

from layer_testlib import Gateway, clean_env, http_request, layer_bin, wait_until

TOKEN = "tpuf_test"


# ---------------------------------------------------------------------------------------------
# Helpers (imported by the other test_origin_* files)
# ---------------------------------------------------------------------------------------------
def origin_process(workdir: str, data_dir: str, *extra: str, name: str = "origin") -> Gateway:
    """A `layer origin` process (reuses the Gateway process helper with the origin subcommand)."""
    p = Gateway([], clean_env(), workdir, name)
    p.argv = [layer_bin(), "origin", "--listen", "127.0.0.1:0", "--port-file", p.port_file,
              "--data-dir", data_dir, *extra]
    return p


def wait_for_binary(timeout: float = 60.0) -> None:
    """The owner rebuilds the binary now and then; it may vanish for a moment."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(layer_bin()):
        if time.monotonic() > deadline:
            raise AssertionError(f"layer binary not found at {layer_bin()}")
        time.sleep(0.5)


def start(proc: Gateway) -> Gateway:
    wait_for_binary()
    try:
        os.unlink(proc.port_file)  # a restart must not read the previous run's port
    except OSError:
        pass
    return proc.start()


def kill9(proc: Gateway) -> None:
    """SIGKILL and reap (Gateway.stop sends SIGKILL)."""
    proc.stop()
    assert proc.proc.returncode is not None


def post_json(target, path: str, body, conn=None, timeout: float = 15.0):
    return http_request(target, "POST", path, json.dumps(body).encode(),
                        token=TOKEN, conn=conn, timeout=timeout)


def write(target, ns: str, body, conn=None):
    return post_json(target, f"/v2/namespaces/{ns}", body, conn=conn)


def query(target, ns: str, body):
    return post_json(target, f"/v2/namespaces/{ns}/query", body)


def all_rows(target, ns: str, include=True):
    """Every document of `ns` by paging on id (Turbopuffer's export pattern)."""
    rows, last = [], None
    while True:
        body = {"rank_by": ["id", "asc"], "limit": 1000, "include_attributes": include}
        if last is not None:
            body["filters"] = ["id", "Gt", last]
        r = query(target, ns, body)
        assert r.status == 200, r
        page = r.json()["rows"]
        rows += page
        if len(page) < 1000:
            return rows
        last = page[-1]["id"]


@pytest.fixture
def origin_factory(tmp_path):
    procs = []

    def _make(*extra, data_dir=None, name=None) -> Gateway:
        d = data_dir or str(tmp_path / "origin-data")
        p = origin_process(str(tmp_path), d, *extra, name=name or f"origin{len(procs)}")
        procs.append(p)
        return start(p)

    yield _make
    for p in procs:
        p.stop()


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------
def test_acknowledged_write_survives_kill9_repeatedly(origin_factory, tmp_path):
    data = str(tmp_path / "d")
    expected = {}
    for rnd in range(5):
        o = origin_factory(data_dir=data, name=f"o{rnd}")
        # Everything acknowledged in earlier rounds is still there after the previous kill -9.
        got = {r["id"]: r for r in all_rows(o, "dur")} if expected else {}
        assert got == expected, f"round {rnd}: rows lost or changed after kill -9"
        rows = [{"id": rnd * 100 + i, "round": rnd, "v": f"r{rnd}-{i}"} for i in range(20)]
        body = {"upsert_rows": rows}
        if rnd >= 2:  # also a patch and a delete of earlier rows, in the same acknowledged write
            body["patch_rows"] = [{"id": (rnd - 1) * 100, "v": f"patched-in-{rnd}"}]
            body["deletes"] = [(rnd - 2) * 100 + 1]
        r = write(o, "dur", body)
        assert r.status == 200, r
        for row in rows:
            expected[row["id"]] = row
        if rnd >= 2:
            expected[(rnd - 1) * 100]["v"] = f"patched-in-{rnd}"
            expected.pop((rnd - 2) * 100 + 1)
        kill9(o)  # right after the acknowledged response
    o = origin_factory(data_dir=data, name="final")
    assert {r["id"]: r for r in all_rows(o, "dur")} == expected


def test_write_burst_from_threads_with_kill9_mid_burst(origin_factory, tmp_path):
    data = str(tmp_path / "burst")
    for rnd in range(3):
        o = origin_factory(data_dir=data, name=f"burst{rnd}")
        acked = {}  # id -> value, only for 200 answers
        lock = threading.Lock()
        stop = threading.Event()

        def writer(t: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", o.port, timeout=10)
            i = 0
            while not stop.is_set() and i < 5000:
                ids = [rnd * 1_000_000 + t * 100_000 + i * 3 + k for k in range(3)]
                body = {"upsert_rows": [{"id": x, "t": t, "i": i} for x in ids]}
                try:
                    r = write(o, "burst", body, conn=conn)
                except (OSError, http.client.HTTPException):
                    return  # the server died mid-request: this write is not acknowledged
                if r.status != 200:
                    return
                with lock:
                    for x in ids:
                        acked[x] = (t, i)
                i += 1
            conn.close()

        threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()

        def acked_count() -> int:
            with lock:
                return len(acked)
        # Mid-burst, further into it each round (the later rounds past the origin's log compaction,
        # every 1000 records; 3 ids a write): every writer is still going.
        wait_until(lambda: acked_count() >= (1500, 3600, 6600)[rnd]
                   and all(th.is_alive() for th in threads),
                   timeout=60, what=f"round {rnd}: the write burst to be under way")
        kill9(o)  # mid-burst
        stop.set()
        for th in threads:
            th.join(timeout=15)
        assert len(acked) > 0, "no write was acknowledged before the kill"

        o2 = origin_factory(data_dir=data, name=f"burst{rnd}-after")
        rows = {r["id"]: (r["t"], r["i"]) for r in all_rows(o2, "burst")}
        missing = [x for x in acked if x not in rows]
        assert not missing, f"round {rnd}: {len(missing)} of {len(acked)} acknowledged rows lost, e.g. {missing[:5]}"
        wrong = [x for x in acked if rows[x] != acked[x]]
        assert not wrong, f"round {rnd}: rows changed: {wrong[:5]}"
        # The namespace is healthy: a new write and a query work after the crash.
        r = write(o2, "burst", {"upsert_rows": [{"id": 1, "t": -1, "i": -1}]})
        assert r.status == 200, r
        kill9(o2)


def test_namespace_delete_survives_kill9(origin_factory, tmp_path):
    data = str(tmp_path / "del")
    o = origin_factory(data_dir=data, name="d0")
    for ns in ("keep", "drop", "recreate"):
        assert write(o, ns, {"upsert_rows": [{"id": 1, "ns": ns}]}).status == 200
    r = http_request(o, "DELETE", "/v2/namespaces/drop", token=TOKEN)
    assert r.status == 200 and r.json() == {"status": "OK"}, r
    r = http_request(o, "DELETE", "/v2/namespaces/recreate", token=TOKEN)
    assert r.status == 200, r
    assert write(o, "recreate", {"upsert_rows": [{"id": 2, "ns": "again"}]}).status == 200
    kill9(o)

    o = origin_factory(data_dir=data, name="d1")
    r = query(o, "drop", {"rank_by": ["id", "asc"], "limit": 10})
    assert r.status == 404, r
    assert r.json() == {"status": "error", "error": "🤷 namespace 'drop' was not found"}
    assert http_request(o, "GET", "/v1/namespaces/drop/schema", token=TOKEN).status == 404
    assert all_rows(o, "keep") == [{"id": 1, "ns": "keep"}]
    assert all_rows(o, "recreate") == [{"id": 2, "ns": "again"}]
    listing = http_request(o, "GET", "/v1/namespaces", token=TOKEN).json()
    assert listing == {"namespaces": [{"id": "keep"}, {"id": "recreate"}], "next_cursor": None}
    # Delete right before a kill -9 of a namespace that has many rows.
    assert write(o, "keep", {"upsert_rows": [{"id": i} for i in range(2, 500)]}).status == 200
    assert http_request(o, "DELETE", "/v2/namespaces/keep", token=TOKEN).status == 200
    kill9(o)
    o = origin_factory(data_dir=data, name="d2")
    assert query(o, "keep", {"rank_by": ["id", "asc"], "limit": 1}).status == 404
    listing = http_request(o, "GET", "/v1/namespaces", token=TOKEN).json()
    assert listing == {"namespaces": [{"id": "recreate"}], "next_cursor": None}


def test_schema_update_survives_kill9(origin_factory, tmp_path):
    data = str(tmp_path / "schema")
    o = origin_factory(data_dir=data, name="s0")
    assert write(o, "sch", {"upsert_rows": [{"id": 1, "name": "x"}]}).status == 200
    r = post_json(o, "/v1/namespaces/sch/schema", {"name": {"type": "string", "glob": True, "filterable": True}})
    assert r.status == 200, r
    before = http_request(o, "GET", "/v1/namespaces/sch/schema", token=TOKEN).json()
    assert before["name"]["glob"] is True
    kill9(o)
    o = origin_factory(data_dir=data, name="s1")
    assert http_request(o, "GET", "/v1/namespaces/sch/schema", token=TOKEN).json() == before
