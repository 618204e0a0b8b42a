"""Per-id linearizability of reads through the gateway (docs/design.md §4.1, §4.2), against the
strict origin (`layer origin --api-key`) whose write faults apply a write and then drop its answer
or answer too late.

Writers upsert, patch and delete a small shared set of ids through the gateway, concurrently and
on the same ids, and now and then delete_by_filter; readers fetch them through the gateway (single
and batch fetches), and one reader queries them, through the gateway (a passthrough) and at the
origin. Every written value carries a unique
version token. Each operation's invocation and response times and result are recorded, and the
history is checked per id by linearizability.py: no read may return a stale, resurrected or
partial row. A write answered 5xx (the gateway's 502 for a lost or late answer) may or may not
have taken effect, at any time after its invocation. The run is bounded by a number of
operations (LAYER_LINZ_SCALE multiplies them, e.g. 10 for a soak). Afterwards, with the faults
off, every id is fetched through the gateway and must equal the origin's row; a hit's bytes must
equal the answer built from the origin's row.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import pytest

from layer_testlib import wait_until
from linearizability import DELETE, DELETE_BY_FILTER, PATCH, READ, UPSERT, Op, check, per_key
from test_cache_support import (TOKEN, clear_origin_faults, doc_path, keepalive,  # noqa: F401
                                set_origin_faults, stack_factory, wait_cache_healthy)

NS = "linz"
IDS = [1, 2, 3, 4, 5, 6]
WRITE_WEIGHTS = [8, 8, 2, 2, 1, 1]
SCALE = max(1, int(os.environ.get("LAYER_LINZ_SCALE", "1")))
GROUPS = (0, 1)  # the `g` attribute delete_by_filter selects on

DROP = {"write": {"after_apply": "drop", "after_apply_rate": 0.1}}
LATE = {"write": {"after_apply": "delay", "after_apply_delay_ms": 1500, "after_apply_rate": 0.1}}


@pytest.fixture
def st(stack_factory):
    # The gateway gives up on an answer after 600 ms: a "late" write (answered after 1.5 s) is
    # a 502 whose write was applied.
    return stack_factory(gw_args=("--upstream-timeout-ms", "600"),
                         origin_args=("--api-key", TOKEN))


# ---------------------------------------------------------------------------------------------
# Clients (one keep-alive connection per thread)
# ---------------------------------------------------------------------------------------------
class Client:
    def __init__(self, target):
        self.target = target
        self.conn: Optional[http.client.HTTPConnection] = None

    def send(self, method: str, path: str, body=None):
        """(status, headers, body bytes), or None when the connection failed."""
        if self.conn is None:
            self.conn = keepalive(self.target, timeout=30)
        data = None if body is None else json.dumps(body).encode()
        hdrs = {"Authorization": f"Bearer {TOKEN}"}
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        try:
            self.conn.request(method, path, body=data, headers=hdrs)
            r = self.conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = None
            return None

    def close(self):
        if self.conn is not None:
            self.conn.close()


@dataclass
class Run:
    """What every thread records; list.append is atomic."""
    history: List[Op] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    read_errors: int = 0
    cache: Dict[str, int] = field(default_factory=dict)
    writes_done: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def attrs_of(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "id" and not k.startswith("_hevlayer_")}


# ---------------------------------------------------------------------------------------------
# The workload
# ---------------------------------------------------------------------------------------------
def write_op(c: Client, run: Run, ns: str, body: dict, ops: List[Op]) -> None:
    """Sends one write and records `ops` (one per id it names) with its times and outcome."""
    call = time.monotonic()
    res = c.send("POST", f"/v2/namespaces/{ns}", body)
    ret = time.monotonic()
    if res is not None and res[0] // 100 == 4:
        run.unexpected.append(f"write {body} answered {res[0]} {res[2][:300]!r}")
        return  # refused: not applied, left out of the history
    unknown = res is None or res[0] >= 500  # may or may not have been applied
    if res is not None and res[0] != 200 and not unknown:
        run.unexpected.append(f"write {body} answered {res[0]} {res[2][:300]!r}")
    for op in ops:
        op.call, op.ret = call, (None if unknown else ret)
        run.history.append(op)


def pick_id(rng: random.Random) -> int:
    """Writers favour the first ids: two writers race on them, while the others are quiet often
    enough for the cache to serve them."""
    return rng.choices(IDS, WRITE_WEIGHTS)[0]


def writer(run: Run, gw, ns: str, name: str, n_ops: int, seed: int, on_half) -> None:
    rng = random.Random(seed)
    c = Client(gw)
    try:
        for n in range(n_ops):
            tok = f"{name}-{n}"
            kind = rng.choices(["upsert", "upsert2", "patch", "delete", "dbf"],
                               [40, 10, 25, 20, 5])[0]
            if kind in ("upsert", "upsert2"):
                ids = [pick_id(rng)]
                while kind == "upsert2" and len(ids) < 2:
                    ids = list({*ids, pick_id(rng)})
                rows = [{"id": i, "g": rng.choice(GROUPS), "u": f"{tok}.{i}", "x": f"{tok}.{i}"}
                        for i in ids]
                ops = [Op(UPSERT, r["id"], 0, 0, attrs_of(r), who=name, what=r["u"]) for r in rows]
                write_op(c, run, ns, {"upsert_rows": rows}, ops)
            elif kind == "patch":
                i = pick_id(rng)
                ops = [Op(PATCH, i, 0, 0, {"p": tok, "x": tok}, who=name, what=tok)]
                write_op(c, run, ns, {"patch_rows": [{"id": i, "p": tok, "x": tok}]}, ops)
            elif kind == "delete":
                i = pick_id(rng)
                write_op(c, run, ns, {"deletes": [i]}, [Op(DELETE, i, 0, 0, who=name, what=tok)])
            else:
                g = rng.choice(GROUPS)
                pred = (lambda row, g=g: row.get("g") == g)
                write_op(c, run, ns, {"delete_by_filter": ["g", "Eq", g]},
                         [Op(DELETE_BY_FILTER, None, 0, 0, pred, who=name, what=f"g == {g}")])
            with run.lock:
                run.writes_done += 1
                done = run.writes_done
            on_half(done)
        # A last round upserts every id (racing the other writers' last rounds), so that the ids
        # end present and convergence compares rows, not only absences.
        for i in rng.sample(IDS, len(IDS)):
            tok = f"{name}-last.{i}"
            row = {"id": i, "g": rng.choice(GROUPS), "u": tok, "x": tok}
            write_op(c, run, ns, {"upsert_rows": [row]},
                     [Op(UPSERT, i, 0, 0, attrs_of(row), who=name, what=tok)])
    finally:
        c.close()


def count_read_error(run: Run) -> None:
    with run.lock:
        run.read_errors += 1


def count_cache(run: Run, result: str) -> None:
    with run.lock:
        run.cache[result] = run.cache.get(result, 0) + 1


def record_read(run: Run, key, value, call, ret, who, what) -> None:
    run.history.append(Op(READ, key, call, ret, value=value, who=who, what=what))


def gateway_reader(run: Run, gw, ns: str, name: str, n_ops: int, seed: int) -> None:
    rng = random.Random(seed)
    c = Client(gw)
    try:
        for _ in range(n_ops):
            if rng.random() < 0.55:
                i = rng.choice(IDS)
                call = time.monotonic()
                res = c.send("GET", doc_path(ns, i))
                ret = time.monotonic()
                if res is None or res[0] not in (200, 404):
                    count_read_error(run)
                    continue
                cache = res[1].get("x-layer-cache", "none")
                count_cache(run, cache)
                value = json.loads(res[2])["attributes"] if res[0] == 200 else None
                record_read(run, i, value, call, ret, name, f"GET x-layer-cache={cache}")
            else:
                ids = rng.sample(IDS, rng.randint(2, 3))
                call = time.monotonic()
                res = c.send("POST", f"/v2/namespaces/{ns}/documents", {"ids": ids})
                ret = time.monotonic()
                if res is None or res[0] != 200:
                    count_read_error(run)
                    continue
                cache = res[1].get("x-layer-cache", "none")
                count_cache(run, cache)
                body = json.loads(res[2])
                found = {d["id"]: d["attributes"] for d in body["documents"]}
                for i in ids:
                    record_read(run, i, found.get(i), call, ret, name,
                                f"batch x-layer-cache={cache}")
    finally:
        c.close()


def query_reader(run: Run, gw, origin, ns: str, name: str, n_ops: int) -> None:
    """Reads every id with a query, in turn through the gateway (a passthrough) and from the
    origin directly: the upstream's view, which the gateway's fetches must agree with."""
    clients = [Client(gw), Client(origin)]
    q = {"rank_by": ["id", "asc"], "top_k": len(IDS), "filters": ["id", "In", IDS],
         "include_attributes": True}
    try:
        for n in range(n_ops):
            c = clients[n % 2]
            call = time.monotonic()
            res = c.send("POST", f"/v2/namespaces/{ns}/query", q)
            ret = time.monotonic()
            if res is None or res[0] not in (200, 404):
                count_read_error(run)
                continue
            rows = json.loads(res[2])["rows"] if res[0] == 200 else []
            found = {r["id"]: attrs_of(r) for r in rows}
            what = "query via gateway" if c is clients[0] else "query at origin"
            for i in IDS:
                record_read(run, i, found.get(i), call, ret, name, what)
    finally:
        for c in clients:
            c.close()


def run_workload(gw, origin, ns: str, writers: int = 3, writer_ops: int = 150,
                 readers: int = 4, reader_ops: int = 400, query_reads: int = 200,
                 seed: int = 1) -> Run:
    """Runs the concurrent workload to completion; the origin's write faults switch from
    apply-then-drop to apply-then-late half way through the writes. `gw` is a gateway or a list
    of replicas sharing one cache: writers and readers are then spread over them in turn."""
    gws = gw if isinstance(gw, list) else [gw]
    gw = gws[0]
    run = Run()
    # Every id exists before the concurrent part (sequential, recorded like the rest).
    c = Client(gw)
    for i in IDS:
        row = {"id": i, "g": 0, "u": f"seed.{i}", "x": f"seed.{i}"}
        write_op(c, run, ns, {"upsert_rows": [row]},
                 [Op(UPSERT, i, 0, 0, attrs_of(row), who="seed", what=row["u"])])
    c.close()
    assert not run.unexpected and all(op.ret is not None for op in run.history), run.unexpected

    set_origin_faults(origin, DROP)
    half = writers * writer_ops // 2
    switched = threading.Event()

    def on_half(done: int) -> None:
        if done >= half and not switched.is_set():
            switched.set()
            set_origin_faults(origin, LATE)

    threads = [threading.Thread(target=writer, args=(run, gws[k % len(gws)], ns, f"w{k}",
                                                     writer_ops, seed * 100 + k, on_half))
               for k in range(writers)]
    threads += [threading.Thread(target=gateway_reader,
                                 args=(run, gws[(k + 1) % len(gws)], ns, f"r{k}", reader_ops,
                                       seed * 100 + 50 + k))
                for k in range(readers)]
    threads.append(threading.Thread(target=query_reader,
                                    args=(run, gws[-1], origin, ns, "q", query_reads)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
        assert not t.is_alive(), "a workload thread hung"
    clear_origin_faults(origin)
    return run


# ---------------------------------------------------------------------------------------------
# Convergence
# ---------------------------------------------------------------------------------------------
def origin_rows(origin, ns: str) -> Dict[int, bytes]:
    """Each id's attributes as the origin has them, as compact JSON in the origin's order."""
    c = Client(origin)
    res = c.send("POST", f"/v2/namespaces/{ns}/query",
                 {"rank_by": ["id", "asc"], "top_k": len(IDS), "filters": ["id", "In", IDS],
                  "include_attributes": True})
    c.close()
    assert res is not None and res[0] == 200, res
    out = {}
    for row in json.loads(res[2], object_pairs_hook=dict)["rows"]:
        out[row["id"]] = json.dumps(attrs_of(row), separators=(",", ":")).encode()
    return out


def assert_converged(gw, origin, ns: str) -> Dict[str, int]:
    """With no write in flight: every id fetched through the gateway equals the origin's row,
    and an answer from the cache is byte for byte the answer built from the origin's row."""
    wait_cache_healthy(gw, timeout=30)
    want = origin_rows(origin, ns)
    seen: Dict[str, int] = {}
    c = Client(gw)
    try:
        for i in IDS:
            # Twice: a miss backfills (after its answer), so the second may be a hit.
            for _ in range(2):
                res = c.send("GET", doc_path(ns, i))
                assert res is not None, "the gateway did not answer"
                status, headers, body = res
                cache = headers.get("x-layer-cache", "none")
                seen[cache] = seen.get(cache, 0) + 1
                if i not in want:
                    assert status == 404, (i, cache, body)
                    continue
                assert status == 200, (i, status, body)
                assert json.loads(body)["attributes"] == json.loads(want[i]), \
                    (i, cache, body, want[i])
                expected = b'{"id":%d,"attributes":%s}' % (i, want[i])
                assert body == expected, (i, cache, body, expected)
    finally:
        c.close()
    return seen


# ---------------------------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------------------------
def test_reads_through_the_gateway_are_linearizable_per_id(st, capsys):
    run = run_workload(st.gw, st.origin, NS, writer_ops=150 * SCALE, reader_ops=400 * SCALE,
                       query_reads=200 * SCALE)
    assert not run.unexpected, run.unexpected[:5]
    report = check(run.history)
    converged = assert_converged(st.gw, st.origin, NS)
    line = (f"linearizability: {report.summary()} read_errors={run.read_errors} "
            f"gateway_reads_by_cache_result={run.cache} convergence_fetches={converged}")
    with capsys.disabled():
        print("\n" + line)
    assert report.linearizable, report.details() + "\n" + dump_context(report, run.history)
    # The run exercised what it is meant to: unknown outcomes, and reads served from the cache.
    assert report.unknown_writes > 0, line
    assert run.cache.get("hit", 0) > 0, line


def dump_context(report, history, width: int = 40) -> str:
    """The operations around each id's stuck read (for a failure's report)."""
    out = []
    by_key = per_key(history)
    for k in report.keys:
        if k.linearizable or k.stuck_at is None:
            continue
        ops = sorted(by_key[k.key], key=lambda o: o.call)
        at = ops.index(k.stuck_at)
        out.append(f"--- id {k.key!r}")
        for o in ops[max(0, at - width): at + 3]:
            out.append(("=> " if o is k.stuck_at else "   ") + o.describe() + " " + o.what)
    return "\n".join(out)


def test_a_write_applied_after_the_gateway_gave_up_on_it(st):
    """Not apply-then-drop/late: here the upstream applies the write only after the gateway's
    timeout (it was still queued), and after a later write of the same id was acknowledged and
    mirrored. Its 502 invalidated the id, and its ids stay in flight for --unknown-write-hold-ms
    (default 60 s) after it: the later write is overlapped by it and not
    mirrored, and fetches read upstream, so the cache never serves {"v": 3} while the upstream
    holds {"v": 2} (docs/design.md §4.2.5)."""
    ns = "linz_late_apply"
    c = Client(st.gw)
    try:
        path = f"/v2/namespaces/{ns}"
        assert c.send("POST", path, {"upsert_rows": [{"id": 1, "v": 1}]})[0] == 200
        set_origin_faults(st.origin, {"write": {"latency_ms": 1500, "times": 1}})
        res = c.send("POST", path, {"upsert_rows": [{"id": 1, "v": 2}]})
        assert res is not None and res[0] == 502, res
        c.close()
        c = Client(st.gw)
        assert c.send("POST", path, {"upsert_rows": [{"id": 1, "v": 3}]})[0] == 200
        q = {"rank_by": ["id", "asc"], "top_k": 1, "filters": ["id", "Eq", 1],
             "include_attributes": ["v"]}
        o = Client(st.origin)

        def origin_v():
            r = o.send("POST", f"/v2/namespaces/{ns}/query", q)
            return json.loads(r[2])["rows"][0]["v"]

        wait_until(lambda: origin_v() == 2, timeout=30, what="the late write upstream")
        o.close()
        res = c.send("GET", doc_path(ns, 1))
        assert res is not None and res[0] == 200, res
        assert json.loads(res[2])["attributes"] == {"v": 2}, (res[1].get("x-layer-cache"), res[2])
    finally:
        c.close()
