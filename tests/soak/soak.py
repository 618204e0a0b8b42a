#!/usr/bin/env python3
"""A fault soak: a bounded run of every kind of client operation through the gateway, on
overlapping ids, while faults are injected, checked for per-id linearizability as it goes.

The stack: the strict origin (`layer origin --api-key`, with --test-faults) and the gateway in
front of it (`layer serve --test-faults`, `--upstream-timeout-ms 600`), on the embedded RocksDB
cache (`--cache rocksdb`, the default) or on a redis-server the soak starts (`--cache redis`,
append-only file fsynced on every write, so that a restart keeps what it acknowledged: the
configuration docs/design.md §3.11 asks for). With `--replicas 2` (redis only), two gateways
share that cache, as a fleet does (docs/design.md §4.9): the clients are spread over them, a
gateway fault hits one of them, a cache fault both.

Clients, all on the same ids at once:
- raw HTTP writers (upserts of one or two rows, patches, deletes, delete_by_filter, namespace
  deletes, and now and then a warm: POST /v2/namespaces/{ns}/warm);
- raw HTTP readers (GET /v2/namespaces/{ns}/documents/{id} and the batch POST);
- a query reader, through the gateway (a passthrough) and at the origin;
- lanes of the official @turbopuffer/turbopuffer SDK (tests/soak/sdk_worker.mjs, one node process)
  doing all of the above (ns.write, ns.query, ns.deleteAll, client.get/post for fetches and
  warms).

Ids: each namespace uses 8 fresh ids per *segment*; the segment moves on every SEGMENT_OPS
requests, so per-id histories stay short enough for the exact search while the run is long.

Faults (a shuffled round of every kind, then again, until the duration is over; each lasting
fault stays on for PHASE_OPS requests, then is cleared, and the soak waits for the recovery:
/ready answers 200, the cache is connected, its breaker closed and no invalidation pending):
cache stalls (latency past the guard's deadline), cache errors and disconnects
(/_test/cache-faults); upstream apply-then-drop, apply-then-late (answered after the gateway's
timeout) and 5xx (the origin's /_test/faults); kill -9 of the gateway and a clean restart
(SIGTERM), both on the same data dir and port; with --cache redis, kill -9 and restart of
redis-server. Every wait is for an event (a request count, a process exit, /ready, /health);
the duration is the only elapsed-time bound.

The checker (tests/integration/linearizability.py, one job per id in worker processes, a segment
at a time once no request of it is in flight) reports stale, resurrected and partial reads and
reads no rule classifies but the search rejects ("other"); the run passes when all four are 0,
no id diverges from the origin once the faults are off, every fault kind was injected (runs of a
minute or more), no request met an unexpected answer, and the gateway never crashed. One
assumption goes past the checker's model, and only makes it stricter: a delete_by_filter or
namespace delete whose outcome is unknown is not considered for ids first used more than
UNKNOWN_HORIZON seconds after it was invoked.
Output: JSON lines (faults, recoveries, progress) and a summary JSON line, then one text line.

  tests/soak/soak.py [--duration SECONDS] [--seed N] [--cache rocksdb|redis] [--replicas N]
                     [--workdir DIR]
  (LAYER_BIN: the layer binary; LAYER_SOAK_SECONDS: the default duration, else 600)
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import queue
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from typing import Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from layer_testlib import Gateway, clean_env, http_request, layer_bin, wait_until  # noqa: E402
from linearizability import (DELETE, DELETE_BY_FILTER, INF, PATCH, READ,  # noqa: E402
                             UPSERT, Op, check)
from test_cache_redis import free_port, redis_cli  # noqa: E402

TOKEN = "soak-key"
NAMESPACES = ("soak-a", "soak-b")
IDS_PER_NS = 8
ID_WEIGHTS = [8, 8, 4, 2, 2, 1, 1, 1]  # two hot ids that writers race on, quieter ones that hit
GROUPS = (0, 1)  # the `g` attribute delete_by_filter selects on
SEGMENT_OPS = 1000  # requests per id segment
PHASE_OPS = 3000  # requests a lasting fault stays on for
QUIET_OPS = 1500  # requests between a recovery and the next fault
# A write whose outcome is unknown is assumed to take effect, if at all, within this long of its
# invocation when it is a delete_by_filter or namespace delete of an id segment begun later
# (every fault here applies a write before its answer is lost, or never; a killed gateway's
# last requests reach the origin at once). Within a segment the checker's own rule holds:
# at any time after the invocation.
UNKNOWN_HORIZON = 30.0
UPSTREAM_TIMEOUT_MS = 600
RECOVERY_TIMEOUT = 120.0  # a bound that proves a recovery does not hang (10x and more)
STALL_TIMEOUT = 120.0  # no request completing for this long is a hang

CACHE_FAULTS = {
    "cache_stall": {"latency_ms": 500},  # past the guard's 200 ms deadline
    "cache_error": {"fail": True},
    "cache_disconnect": {"disconnect": True},
}
UPSTREAM_FAULTS = {
    "upstream_drop": {"write": {"after_apply": "drop", "after_apply_rate": 0.2},
                      "delete_namespace": {"after_apply": "drop", "after_apply_rate": 0.5}},
    "upstream_late": {"write": {"after_apply": "delay", "after_apply_rate": 0.2,
                                "after_apply_delay_ms": 3 * UPSTREAM_TIMEOUT_MS},
                      "delete_namespace": {"after_apply": "delay", "after_apply_rate": 0.5,
                                           "after_apply_delay_ms": 3 * UPSTREAM_TIMEOUT_MS}},
    # Every route family: writes (refused before they apply), queries, fetch misses, warm pages,
    # schema reads, namespace deletes.
    "upstream_5xx": {"*": {"error_rate": 0.15, "error_status": 503}},
}
PROCESS_FAULTS = ("gateway_kill9", "gateway_restart")


def log_json(obj: dict) -> None:
    print(json.dumps(obj, sort_keys=True), flush=True)


# ---------------------------------------------------------------------------------------------
# delete_by_filter predicates (picklable: the check runs in worker processes)
# ---------------------------------------------------------------------------------------------
class GroupIs:
    def __init__(self, g: int):
        self.g = g

    def __call__(self, row: dict) -> bool:
        return row.get("g") == self.g


class AnyRow:
    """A namespace delete: it deletes every row."""

    def __call__(self, row: dict) -> bool:
        return True


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------
class Redis:
    """redis-server on a fixed port with an append-only file fsynced on every write: a restart
    (even after kill -9) comes back with everything it acknowledged."""

    def __init__(self, workdir: str):
        self.port = free_port()
        self.dir = os.path.join(workdir, "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.binary = os.environ.get("LAYER_REDIS_SERVER") or shutil.which("redis-server") or \
            "/usr/bin/redis-server"
        self.proc: Optional[subprocess.Popen] = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", self.dir,
             "--maxmemory-policy", "volatile-lru",
             "--logfile", os.path.join(self.dir, "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            assert self.proc.poll() is None, "redis-server exited"
            try:
                return redis_cli(self.port, "PING") == "+PONG"
            except OSError:
                return False
        wait_until(up, timeout=30, what="redis-server to answer PING")

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        self.kill9()


class Stack:
    """The origin, the gateways (each restartable on its own port and data dir) and perhaps
    redis. `port`, `gw`: the first gateway's."""

    def __init__(self, workdir: str, cache: str, replicas: int = 1):
        self.workdir = workdir
        self.redis: Optional[Redis] = None
        if cache == "redis":
            self.redis = Redis(workdir)
            self.redis.start()
        self.origin = Gateway([], clean_env(), workdir, "origin")
        self.origin.argv = [layer_bin(), "origin", "--listen", "127.0.0.1:0", "--port-file",
                            self.origin.port_file,
                            "--data-dir", os.path.join(workdir, "origin-data"),
                            "--api-key", TOKEN, "--test-faults", "--access-log", "false"]
        self.origin.start()
        self.ports = [0] * replicas
        self.gws: List[Optional[Gateway]] = [None] * replicas
        self.starts = 0
        for i in range(replicas):
            self.start_gateway(i)

    @property
    def port(self) -> int:
        return self.ports[0]

    @property
    def gw(self) -> Gateway:
        return self.gws[0]

    def start_gateway(self, i: int = 0) -> None:
        g = Gateway([], clean_env(), self.workdir, f"gw{self.starts}")
        self.starts += 1
        data = os.path.join(self.workdir, "gw-data" if i == 0 else f"gw{i}-data")
        g.argv = [layer_bin(), "serve", "--listen", f"127.0.0.1:{self.ports[i]}", "--port-file",
                  g.port_file, "--upstream", self.origin.url, "--data-dir", data,
                  "--test-faults", "--access-log", "false",
                  "--upstream-timeout-ms", str(UPSTREAM_TIMEOUT_MS)]
        if self.redis is not None:
            g.argv += ["--cache", self.redis.url]
        g.start(timeout=RECOVERY_TIMEOUT)
        self.ports[i] = g.port
        self.gws[i] = g
        wait_until(lambda: self.ready(i), timeout=RECOVERY_TIMEOUT, interval=0.02,
                   what="the gateway's /ready")

    def ready(self, i: Optional[int] = None) -> bool:
        """Whether gateway `i` (or every gateway) answers /ready."""
        try:
            return all(http_request(port, "GET", "/ready", timeout=5).status == 200
                       for port in (self.ports if i is None else [self.ports[i]]))
        except OSError:
            return False

    def health_cache(self, port: int) -> dict:
        r = http_request(port, "GET", "/health", timeout=10)
        return r.json()["cache"] if r.status == 200 else {}

    def cache_healthy(self) -> bool:
        """Every gateway's cache is connected, its breaker closed, nothing pending."""
        try:
            caches = [self.health_cache(port) for port in self.ports]
        except (OSError, ValueError, http.client.HTTPException):
            return False
        return all(bool(c.get("connected")) and c.get("breaker") == "closed" and
                   c.get("pending_invalidations") == 0 for c in caches)

    def set_cache_faults(self, faults: dict) -> None:
        for port in self.ports:
            r = http_request(port, "PUT", "/_test/cache-faults", json.dumps(faults).encode(),
                             headers={"Content-Type": "application/json"})
            assert r.status == 200, r

    def clear_cache_faults(self) -> None:
        for port in self.ports:
            r = http_request(port, "DELETE", "/_test/cache-faults")
            assert r.status == 200, r

    def set_origin_faults(self, faults: dict) -> None:
        r = http_request(self.origin, "PUT", "/_test/faults", json.dumps(faults).encode())
        assert r.status == 200, r

    def clear_origin_faults(self) -> None:
        r = http_request(self.origin, "DELETE", "/_test/faults")
        assert r.status in (200, 204), r

    def close(self) -> None:
        for p in (*self.gws, self.origin):
            if p is not None:
                p.stop()
        if self.redis is not None:
            self.redis.stop()


# ---------------------------------------------------------------------------------------------
# Shared run state
# ---------------------------------------------------------------------------------------------
class Run:
    def __init__(self, started: float, seconds: float):
        self.started = started
        self.deadline = started + seconds
        self.lock = threading.Lock()
        self.progress = threading.Condition(self.lock)
        # The history, by id segment: {segment: [(namespace, op)]} (list.append is atomic), and
        # the delete_by_filter and namespace deletes of each namespace, which concern every id.
        self.segments: Dict[int, List[Tuple[str, Op]]] = {1: []}
        self.filters: Dict[str, List[Op]] = {ns: [] for ns in NAMESPACES}
        self.segment_start: Dict[int, float] = {1: started}
        # By client thread: (segment, monotonic time) when its request in flight was planned.
        self.in_flight: Dict[str, Optional[Tuple[int, float]]] = {}
        self.requests = 0  # every request answered or failed
        self.segment = 1
        self.ops: Counter = Counter()  # by kind: requests made
        self.by_client: Counter = Counter()  # requests made by the SDK lanes and the raw clients
        self.ok: Counter = Counter()  # by kind: requests answered 2xx (404 for reads)
        self.outcomes: Counter = Counter()  # by "kind status"
        self.cache: Counter = Counter()  # x-layer-cache of gateway fetches
        self.unexpected: List[str] = []
        self.stop = threading.Event()
        self.gw_up = threading.Event()
        self.gw_up.set()
        self.errors: List[str] = []  # a client thread that died

    def ids(self, ns: str) -> List[int]:
        seg = self.segment
        return [seg * 100 + i for i in range(1, IDS_PER_NS + 1)]

    def begin(self, who: str) -> None:
        """Before a client plans its next request(s)."""
        self.in_flight[who] = (self.segment, time.monotonic())

    def end(self, who: str) -> None:
        self.in_flight[who] = None

    def done(self, kind: str, ok: bool, status, who: str) -> None:
        with self.lock:
            self.requests += 1
            self.ops[kind] += 1
            self.by_client["sdk" if who.startswith("sdk") else "raw_http"] += 1
            if ok:
                self.ok[kind] += 1
            self.outcomes[f"{kind} {status}"] += 1
            if self.requests % SEGMENT_OPS == 0:
                self.segments[self.segment + 1] = []
                self.segment_start[self.segment + 1] = time.monotonic()
                self.segment += 1
            self.progress.notify_all()

    def record(self, ns: str, op: Op) -> None:
        if op.kind == DELETE_BY_FILTER:
            with self.lock:  # Checker.prune replaces the list
                self.filters[ns].append(op)
        else:
            self.segments[op.key // 100].append((ns, op))

    def wait_requests(self, n: int) -> None:
        """Until `n` more requests completed, the deadline passed, or the run stopped."""
        with self.lock:
            target = self.requests + n
            last, last_t = self.requests, time.monotonic()
            while self.requests < target and not self.stop.is_set():
                if time.monotonic() >= self.deadline:
                    return
                self.progress.wait(0.5)
                if self.requests != last:
                    last, last_t = self.requests, time.monotonic()
                elif time.monotonic() - last_t > STALL_TIMEOUT:
                    raise AssertionError(f"no request completed for {STALL_TIMEOUT}s")


def attrs_of(row: dict) -> dict:
    return {k: v for k, v in row.items()
            if k not in ("id", "$dist", "vector") and not k.startswith("_hevlayer_")}


def pick_id(rng: random.Random, ids: List[int]) -> int:
    return rng.choices(ids, ID_WEIGHTS)[0]


# ---------------------------------------------------------------------------------------------
# The workload: each operation is a request plus the history ops it records
# ---------------------------------------------------------------------------------------------
class Planned:
    """One request: method, path, body, the op kind (for counts) and, for a write, the history
    ops it records (one per id, or one delete_by_filter)."""

    def __init__(self, kind: str, ns: str, method: str, path: str, body=None,
                 ops: Optional[List[Op]] = None, read_ids: Optional[List[int]] = None):
        self.kind, self.ns, self.method, self.path, self.body = kind, ns, method, path, body
        self.ops = ops or []
        self.read_ids = read_ids or []


def plan_write(rng: random.Random, run: Run, who: str, tok: str) -> Planned:
    ns = rng.choice(NAMESPACES)
    ids = run.ids(ns)
    path = f"/v2/namespaces/{ns}"
    kind = rng.choices(["upsert", "upsert2", "patch", "delete", "delete_by_filter",
                        "delete_namespace"], [38, 10, 27, 18, 5, 0.5])[0]
    if kind in ("upsert", "upsert2"):
        pick = [pick_id(rng, ids)]
        while kind == "upsert2" and len(pick) < 2:
            pick = list({*pick, pick_id(rng, ids)})
        rows = [{"id": i, "g": rng.choice(GROUPS), "u": f"{tok}.{i}", "x": f"{tok}.{i}"}
                for i in pick]
        ops = [Op(UPSERT, r["id"], 0, 0, attrs_of(r), who=who, what=r["u"]) for r in rows]
        return Planned("upsert", ns, "POST", path, {"upsert_rows": rows}, ops)
    if kind == "patch":
        i = pick_id(rng, ids)
        ops = [Op(PATCH, i, 0, 0, {"p": tok, "x": tok}, who=who, what=tok)]
        return Planned("patch", ns, "POST", path, {"patch_rows": [{"id": i, "p": tok, "x": tok}]},
                       ops)
    if kind == "delete":
        i = pick_id(rng, ids)
        return Planned("delete", ns, "POST", path, {"deletes": [i]},
                       [Op(DELETE, i, 0, 0, who=who, what=tok)])
    if kind == "delete_by_filter":
        g = rng.choice(GROUPS)
        return Planned("delete_by_filter", ns, "POST", path, {"delete_by_filter": ["g", "Eq", g]},
                       [Op(DELETE_BY_FILTER, None, 0, 0, GroupIs(g), who=who, what=f"g == {g}")])
    return Planned("delete_namespace", ns, "DELETE", path, None,
                   [Op(DELETE_BY_FILTER, None, 0, 0, AnyRow(), who=who, what=f"{tok} ns delete")])


def plan_read(rng: random.Random, run: Run, batch: bool) -> Planned:
    ns = rng.choice(NAMESPACES)
    ids = run.ids(ns)
    if not batch:
        i = rng.choice(ids)
        return Planned("fetch", ns, "GET", f"/v2/namespaces/{ns}/documents/{i}", read_ids=[i])
    pick = rng.sample(ids, rng.randint(2, 4))
    return Planned("fetch_batch", ns, "POST", f"/v2/namespaces/{ns}/documents", {"ids": pick},
                   read_ids=pick)


def plan_query(rng: random.Random, run: Run, at_origin: bool) -> Planned:
    ns = rng.choice(NAMESPACES)
    ids = run.ids(ns)
    body = {"rank_by": ["id", "asc"], "top_k": len(ids), "filters": ["id", "In", ids],
            "include_attributes": True}
    return Planned("query_origin" if at_origin else "query", ns, "POST",
                   f"/v2/namespaces/{ns}/query", body, read_ids=ids)


def plan_warm(rng: random.Random) -> Planned:
    ns = rng.choice(NAMESPACES)
    return Planned("warm", ns, "POST", f"/v2/namespaces/{ns}/warm?page_size=4")


def is_write(p: Planned) -> bool:
    return p.kind in ("upsert", "patch", "delete", "delete_by_filter", "delete_namespace")


def settle(run: Run, p: Planned, who: str, call: float, ret: float, status: Optional[int],
           body, cache: Optional[str], conn: Optional[str]) -> None:
    """Records the outcome of one request (from either client) in the history and the counts.
    status None: no answer; conn "refused": the request was never sent."""
    if is_write(p):
        draining = (status == 503 and isinstance(body, dict)
                    and body.get("error") == "gateway_draining")
        if conn == "refused" or draining:
            run.done(p.kind, False, "refused" if conn else 503, who)  # never applied: left out
            return
        if status is not None and 400 <= status < 500:
            # Refused, not applied: left out. A 404 is a write to a deleted namespace.
            if status != 404:
                run.unexpected.append(f"{who} {p.kind} {p.body} answered {status} {body!r:.300}")
            run.done(p.kind, False, status, who)
            return
        unknown = status is None or status >= 500
        if status is not None and status != 200 and not unknown:
            run.unexpected.append(f"{who} {p.kind} {p.body} answered {status} {body!r:.300}")
        for op in p.ops:
            op.call, op.ret = call, (None if unknown else ret)
            run.record(p.ns, op)
        run.done(p.kind, status == 200, status if status is not None else "lost", who)
        return
    if p.kind == "warm":
        # 202 (started or joined), 503 cache_cold while the cache is down, 404 for a namespace
        # that does not exist (deleted); none changes a row.
        ok = status == 202
        if status is not None and status not in (202, 404, 500, 502, 503, 504):
            run.unexpected.append(f"{who} warm answered {status} {body!r:.300}")
        run.done(p.kind, ok, status if status is not None else conn or "lost", who)
        return
    # Reads: only answered ones enter the history.
    if status not in (200, 404):
        run.done(p.kind, False, status if status is not None else conn or "lost", who)
        return
    found: Dict[int, dict] = {}
    if status == 200:
        if p.kind == "fetch":
            found = {p.read_ids[0]: body["attributes"]}
        elif p.kind == "fetch_batch":
            found = {d["id"]: d["attributes"] for d in body["documents"]}
        else:
            found = {r["id"]: attrs_of(r) for r in body["rows"]}
    if p.kind in ("fetch", "fetch_batch"):
        run.cache[cache or "none"] += 1
    what = f"{p.kind} x-layer-cache={cache}" if p.kind.startswith("fetch") else p.kind
    for i in p.read_ids:
        run.record(p.ns, Op(READ, i, call, ret, value=found.get(i), who=who, what=what))
    run.done(p.kind, True, status, who)


# ---------------------------------------------------------------------------------------------
# Raw HTTP clients
# ---------------------------------------------------------------------------------------------
class Client:
    """One keep-alive connection (reopened after a failure)."""

    def __init__(self, port_fn):
        self.port_fn = port_fn
        self.conn: Optional[http.client.HTTPConnection] = None

    def send(self, p: Planned):
        """(status, headers, body bytes, conn): conn "refused" (never sent) or "lost"."""
        fresh = self.conn is None
        if fresh:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port_fn(), timeout=30)
        data = None if p.body is None else json.dumps(p.body).encode()
        hdrs = {"Authorization": f"Bearer {TOKEN}"}
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        try:
            self.conn.request(p.method, p.path, body=data, headers=hdrs)
        except ConnectionRefusedError:
            self.close()
            return None, {}, b"", "refused"
        except (http.client.HTTPException, OSError):
            self.close()
            return None, {}, b"", "lost"
        try:
            r = self.conn.getresponse()
            body = r.read()
            headers = {k.lower(): v for k, v in r.getheaders()}
            if headers.get("connection", "").lower() == "close":
                self.close()
            return r.status, headers, body, None
        except (http.client.HTTPException, OSError):
            self.close()
            return None, {}, b"", "lost"

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def raw_request(run: Run, c: Client, p: Planned, who: str) -> None:
    """Sends `p` (planned after run.begin(who)) and records it."""
    call = time.monotonic()
    status, headers, raw, conn = c.send(p)
    ret = time.monotonic()
    body = None
    if raw:
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
    settle(run, p, who, call, ret, status, body, headers.get("x-layer-cache"), conn)
    run.end(who)
    if status is None:
        run.gw_up.wait()  # a restart is under way: wait for the gateway, not for a time


def guarded(run: Run, name: str, fn, *args) -> None:
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 -- reported, and fails the run
        run.errors.append(f"{name}: {traceback.format_exc()}")
        run.stop.set()


def replica_of(stack: Stack, name: str) -> int:
    """The gateway a client talks to: writers and readers of one number go to different ones."""
    return (int(name[1:]) + (name[0] == "r")) % len(stack.ports)


def raw_writer(run: Run, stack: Stack, name: str, seed: int) -> None:
    rng = random.Random(seed)
    i = replica_of(stack, name)
    c = Client(lambda: stack.ports[i])
    n = 0
    while not run.stop.is_set():
        n += 1
        run.begin(name)
        p = plan_warm(rng) if rng.random() < 0.05 else plan_write(rng, run, name, f"{name}-{n}")
        raw_request(run, c, p, name)
    c.close()


def raw_reader(run: Run, stack: Stack, name: str, seed: int) -> None:
    rng = random.Random(seed)
    i = replica_of(stack, name)
    c = Client(lambda: stack.ports[i])
    while not run.stop.is_set():
        run.begin(name)
        raw_request(run, c, plan_read(rng, run, batch=rng.random() < 0.4), name)
    c.close()


def query_reader(run: Run, stack: Stack, name: str, seed: int) -> None:
    rng = random.Random(seed)
    clients = [Client(lambda: stack.port), Client(lambda: stack.origin.port)]
    n = 0
    while not run.stop.is_set():
        n += 1
        at_origin = n % 2 == 0
        run.begin(name)
        raw_request(run, clients[at_origin], plan_query(rng, run, at_origin), name)
    for c in clients:
        c.close()


# ---------------------------------------------------------------------------------------------
# SDK clients (tests/soak/sdk_worker.mjs)
# ---------------------------------------------------------------------------------------------
class SdkWorker:
    def __init__(self, stack: Stack, workdir: str):
        node = shutil.which("node") or "node"
        self.stderr = open(os.path.join(workdir, "sdk_worker.stderr"), "wb")
        self.proc = subprocess.Popen(
            [node, os.path.join(HERE, "sdk_worker.mjs"), f"http://127.0.0.1:{stack.ports[-1]}",
             TOKEN],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, cwd=HERE)
        self.lock = threading.Lock()
        self.seq = 0
        self.waiting: Dict[int, "queue.Queue"] = {}
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            msg = json.loads(line)
            q = self.waiting.pop(msg["seq"], None)
            if q is not None:
                q.put(msg)
        for q in list(self.waiting.values()):
            q.put({"error": "the SDK worker exited"})

    def call(self, cmd: dict) -> dict:
        q: "queue.Queue" = queue.Queue()
        with self.lock:
            self.seq += 1
            cmd["seq"] = self.seq
            self.waiting[self.seq] = q
            self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
            self.proc.stdin.flush()
        msg = q.get(timeout=600)
        if "error" in msg:
            raise AssertionError(f"SDK worker: {msg['error']}")
        return msg

    def check_clock(self) -> None:
        """The worker's clock must be time.monotonic()'s (both CLOCK_MONOTONIC)."""
        t0 = time.monotonic()
        now = self.call({"cmd": "clock"})["now"]
        t1 = time.monotonic()
        assert t0 <= now <= t1, f"the SDK worker's clock is not monotonic()'s: {t0} {now} {t1}"

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        self.stderr.close()


def sdk_op(p: Planned) -> dict:
    if p.kind == "fetch":
        return {"kind": "fetch", "ns": p.ns, "id": p.read_ids[0]}
    if p.kind == "fetch_batch":
        return {"kind": "fetch_batch", "ns": p.ns, "ids": p.body["ids"]}
    if p.kind == "query":
        return {"kind": "query", "ns": p.ns, "body": p.body}
    if p.kind == "warm":
        return {"kind": "warm", "ns": p.ns}
    if p.kind == "delete_namespace":
        return {"kind": "delete_ns", "ns": p.ns}
    return {"kind": "write", "ns": p.ns, "body": p.body}


def sdk_lane(run: Run, sdk: SdkWorker, lane: int, seed: int) -> None:
    name = f"sdk{lane}"
    rng = random.Random(seed)
    n = 0
    while not run.stop.is_set():
        batch: List[Planned] = []
        run.begin(name)
        for _ in range(8):
            n += 1
            r = rng.random()
            if r < 0.5:
                p = plan_write(rng, run, name, f"{name}-{n}")
            elif r < 0.75:
                p = plan_read(rng, run, batch=False)
            elif r < 0.88:
                p = plan_read(rng, run, batch=True)
            elif r < 0.98:
                p = plan_query(rng, run, at_origin=False)
            else:
                p = plan_warm(rng)
            batch.append(p)
        msg = sdk.call({"cmd": "run", "lane": lane, "ops": [sdk_op(p) for p in batch]})
        lost = False
        for p, res in zip(batch, msg["results"]):
            body = res["body"]
            if p.kind == "query" and res["status"] == 200:
                body = {"rows": body.get("rows", [])}
            settle(run, p, name, res["call"], res["ret"], res["status"], body, res["cache"],
                   res["conn"])
            lost = lost or res["status"] is None
        run.end(name)
        if lost:
            run.gw_up.wait()


# ---------------------------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------------------------
class Faults:
    def __init__(self, run: Run, stack: Stack, rng: random.Random):
        self.run, self.stack, self.rng = run, stack, rng
        self.injected: Counter = Counter()
        self.recoveries: Counter = Counter()
        self.recovery_s: Dict[str, List[float]] = {}
        self.crashes: List[str] = []

    def kinds(self) -> List[str]:
        k = [*CACHE_FAULTS, *UPSTREAM_FAULTS, *PROCESS_FAULTS, "combined"]
        if self.stack.redis is not None:
            k.append("redis_restart")
        return k

    def check_alive(self) -> None:
        for i, gw in enumerate(self.stack.gws):
            if not gw.alive():
                self.crashes.append(f"gateway {i} exited with {gw.proc.returncode}:\n"
                                    f"{gw.output()[-3000:]}")
                self.restart_gateway(kill=False, i=i)

    def restart_gateway(self, kill: bool = True, term: bool = False,
                        i: Optional[int] = None) -> None:
        """Restarts gateway `i` (a random one when None)."""
        if i is None:
            i = self.rng.randrange(len(self.stack.gws))
        self.run.gw_up.clear()
        gw = self.stack.gws[i]
        if term:
            gw.sigterm()
            rc = gw.wait_exit(RECOVERY_TIMEOUT)
            assert rc is not None, "the gateway did not exit after SIGTERM"
        if kill:
            gw.stop()  # SIGKILL and reap
        gw.stop()  # closes its log files
        self.stack.start_gateway(i)
        self.run.gw_up.set()

    def restart_redis(self) -> None:
        self.stack.redis.kill9()
        self.stack.redis.start()

    def inject(self, kind: str) -> List[str]:
        """Injects `kind`; returns the lasting faults it turned on."""
        if kind == "combined":
            parts = [self.rng.choice(list(CACHE_FAULTS)), self.rng.choice(list(UPSTREAM_FAULTS))]
            for part in parts:
                self.inject(part)
            return parts
        self.injected[kind] += 1
        log_json({"event": "fault", "kind": kind, "t": round(time.monotonic(), 3),
                  "requests": self.run.requests})
        if kind in CACHE_FAULTS:
            self.stack.set_cache_faults(CACHE_FAULTS[kind])
            return [kind]
        if kind in UPSTREAM_FAULTS:
            self.stack.set_origin_faults(UPSTREAM_FAULTS[kind])
            return [kind]
        if kind == "gateway_kill9":
            self.restart_gateway(kill=True)
        elif kind == "gateway_restart":
            self.restart_gateway(kill=False, term=True)
        elif kind == "redis_restart":
            self.restart_redis()
        return []

    def clear(self, lasting: List[str]) -> None:
        if any(k in CACHE_FAULTS for k in lasting):
            self.stack.clear_cache_faults()
        if any(k in UPSTREAM_FAULTS for k in lasting):
            self.stack.clear_origin_faults()

    def recover(self, kind: str, since: float) -> None:
        """Waits until the gateway is ready and its cache healthy again."""
        wait_until(lambda: self.stack.ready() and self.stack.cache_healthy(),
                   timeout=RECOVERY_TIMEOUT, interval=0.05, what=f"recovery from {kind}")
        took = time.monotonic() - since
        self.recoveries[kind] += 1
        self.recovery_s.setdefault(kind, []).append(took)
        log_json({"event": "recovery", "kind": kind, "seconds": round(took, 3),
                  "requests": self.run.requests})

    def schedule(self) -> None:
        run = self.run
        while time.monotonic() < run.deadline and not run.stop.is_set():
            for kind in self.rng.sample(self.kinds(), len(self.kinds())):
                if time.monotonic() >= run.deadline or run.stop.is_set():
                    return
                t0 = time.monotonic()
                lasting = self.inject(kind)
                if lasting:
                    run.wait_requests(PHASE_OPS)
                    self.clear(lasting)
                    t0 = time.monotonic()
                self.check_alive()
                self.recover(kind, t0)
                run.wait_requests(QUIET_OPS)
                self.check_alive()
                log_json({"event": "progress", "requests": run.requests,
                          "segment": run.segment,
                          "elapsed_s": round(time.monotonic() - run.started, 1)})


# ---------------------------------------------------------------------------------------------
# Convergence and the check
# ---------------------------------------------------------------------------------------------
def converge(run: Run, stack: Stack) -> Tuple[int, List[str], Counter]:
    """With no fault and no write in flight: every id of the last two segments fetched through
    the gateway (twice: a miss backfills) equals the origin's row; a hit is byte for byte the
    answer built from the origin's row. Returns (ids compared, differences, cache results)."""
    diffs: List[str] = []
    seen: Counter = Counter()
    compared = 0
    gws = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for port in stack.ports]
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    for ns in NAMESPACES:
        ids = [s * 100 + i for s in (run.segment - 1, run.segment) if s >= 1
               for i in range(1, IDS_PER_NS + 1)]
        q = {"rank_by": ["id", "asc"], "top_k": len(ids), "filters": ["id", "In", ids],
             "include_attributes": True}
        r = http_request(stack.origin, "POST", f"/v2/namespaces/{ns}/query",
                         json.dumps(q).encode(), token=TOKEN)
        assert r.status in (200, 404), r
        want = {}
        if r.status == 200:
            for row in json.loads(r.body, object_pairs_hook=dict)["rows"]:
                want[row["id"]] = json.dumps(attrs_of(row), separators=(",", ":")).encode()
        for i in ids:
            compared += 1
            for gw in (g for g in gws for _ in range(2)):  # twice through every gateway
                gw.request("GET", f"/v2/namespaces/{ns}/documents/{i}", headers=auth)
                res = gw.getresponse()
                body = res.read()
                cache = res.getheader("x-layer-cache", "none")
                seen[cache] += 1
                if i not in want:
                    if res.status != 404:
                        diffs.append(f"{ns}/{i}: absent at the origin, gateway {res.status} "
                                     f"{cache} {body[:200]!r}")
                    continue
                expected = b'{"id":%d,"attributes":%s}' % (i, want[i])
                if res.status != 200 or body != expected:
                    diffs.append(f"{ns}/{i}: origin {expected!r}, gateway {res.status} {cache} "
                                 f"{body[:300]!r}")
    for gw in gws:
        gw.close()
    return compared, diffs, seen


def check_key_history(job) -> dict:
    ns, key, ops = job
    report = check(ops)
    out = {"ns": ns, "key": key, "ops": report.ops, "writes": report.writes,
           "unknown": report.unknown_writes, "reads": report.reads,
           "stale": report.count("stale"), "resurrected": report.count("resurrected"),
           "partial": report.count("partial"), "other": report.count("other"),
           "steps": max((k.steps for k in report.keys), default=0), "details": ""}
    if not report.linearizable:
        out["details"] = report.details() + "\n" + context(report, ops)
    return out


def context(report, ops: List[Op], width: int = 30) -> str:
    lines = []
    ordered = sorted(ops, key=lambda o: o.call)
    bad = [r for rs in report.bad_reads.values() for r in rs]
    bad += [k.stuck_at for k in report.keys if not k.linearizable and k.stuck_at]
    for b in bad[:3]:
        if b not in ordered:
            continue
        at = ordered.index(b)
        lines.append(f"--- around {b.describe()}")
        for o in ordered[max(0, at - width): at + 3]:
            lines.append(("=> " if o is b else "   ") + o.describe() + " " + o.what)
    return "\n".join(lines)


def retire_loop(run: Run, checker: "Checker") -> None:
    while not run.stop.wait(0.5):  # polls the in-flight marks; retiring is not time-critical
        checker.retire_ready()


class Checker:
    """Checks the history segment by segment while the run goes on (in worker processes): a
    segment is retired once no client has a request of it in flight and every request in flight
    was planned after the segment's last read returned (so every operation that may concern its
    ids is recorded). One job per (namespace, id): its operations, plus the namespace's
    delete_by_filter and namespace deletes that may fall within its span (ids are fresh, absent
    before their first operation; an operation invoked after the id's last read returned changes
    no read)."""

    def __init__(self, run: Run):
        self.run = run
        # Forked before any thread starts.
        self.pool = multiprocessing.get_context("fork").Pool(2)
        self.pending: List = []
        self.retired = 0  # segments up to this one were submitted
        self.totals: Counter = Counter()
        self.details: List[str] = []
        self.max_key_ops = 0
        self.max_steps = 0

    def retire_ready(self, final: bool = False) -> None:
        run = self.run
        while self.retired + 1 < run.segment or (final and self.retired + 1 <= run.segment):
            seg = self.retired + 1
            ops = run.segments.get(seg, [])
            last_read = max((op.ret for _, op in ops if op.kind == READ), default=-INF)
            if not final:
                busy = [v for v in list(run.in_flight.values()) if v is not None]
                if any(s <= seg or t <= last_read for s, t in busy):
                    return
            self.submit(seg, ops)
            run.segments.pop(seg, None)
            self.retired = seg
            self.prune(seg)

    def submit(self, seg: int, ops: List[Tuple[str, Op]]) -> None:
        jobs = []
        for ns in NAMESPACES:
            with self.run.lock:
                filters = list(self.run.filters[ns])
            by_key: Dict[int, List[Op]] = {}
            for n, op in ops:
                if n == ns:
                    by_key.setdefault(op.key, []).append(op)
            for key, key_ops in sorted(by_key.items()):
                lo = min(op.call for op in key_ops)
                hi = max((op.ret for op in key_ops if op.kind == READ), default=-INF)
                rel = [f for f in filters if f.call <= hi and (
                    (f.ret is not None and f.ret >= lo)
                    or (f.ret is None and f.call >= lo - UNKNOWN_HORIZON))]
                jobs.append((ns, key, key_ops + rel))
        if jobs:
            self.pending.append(self.pool.map_async(check_key_history, jobs, chunksize=4))

    def prune(self, seg: int) -> None:
        """Drops the filters no later segment's id can meet."""
        start = self.run.segment_start.get(seg + 1)
        if start is None:
            return
        for ns in NAMESPACES:
            with self.run.lock:
                self.run.filters[ns] = [
                    f for f in self.run.filters[ns]
                    if (f.ret is not None and f.ret >= start)
                    or (f.ret is None and f.call >= start - UNKNOWN_HORIZON)]

    def collect(self) -> None:
        for res in self.pending:
            for r in res.get():
                for k in ("ops", "writes", "unknown", "reads", "stale", "resurrected", "partial",
                          "other"):
                    self.totals[k] += r[k]
                self.totals["ids"] += 1
                self.max_key_ops = max(self.max_key_ops, r["ops"])
                self.max_steps = max(self.max_steps, r["steps"])
                if r["details"]:
                    self.details.append(f"=== {r['ns']} id {r['key']}\n{r['details']}")
        self.pending = []

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float,
                    default=float(os.environ.get("LAYER_SOAK_SECONDS", "600")))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("LAYER_SOAK_SEED", "1")))
    ap.add_argument("--cache", choices=("rocksdb", "redis"),
                    default=os.environ.get("LAYER_SOAK_CACHE", "rocksdb"))
    ap.add_argument("--replicas", type=int, default=int(os.environ.get("LAYER_SOAK_REPLICAS", "1")),
                    help="gateways sharing the cache (more than 1 needs --cache redis)")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the work dir after a pass")
    args = ap.parse_args()
    if args.replicas < 1 or (args.replicas > 1 and args.cache != "redis"):
        ap.error("--replicas: 1, or more with --cache redis (replicas share a cache)")

    workdir = args.workdir or tempfile.mkdtemp(prefix="layer-soak-")
    os.makedirs(workdir, exist_ok=True)
    log_json({"event": "start", "duration_s": args.duration, "seed": args.seed,
              "cache": args.cache, "replicas": args.replicas, "workdir": workdir,
              "binary": layer_bin()})
    stack = Stack(workdir, args.cache, args.replicas)
    sdk = None
    threads: List[threading.Thread] = []
    rng = random.Random(args.seed)
    started = time.monotonic()
    run = Run(started, args.duration)
    faults = Faults(run, stack, random.Random(args.seed * 7919))
    checker = Checker(run)  # forks its workers before any thread starts
    passed = False
    try:
        sdk = SdkWorker(stack, workdir)
        sdk.check_clock()
        roles = [("w0", raw_writer), ("w1", raw_writer), ("w2", raw_writer),
                 ("r0", raw_reader), ("r1", raw_reader), ("q", query_reader)]
        for name, fn in roles:
            threads.append(threading.Thread(target=guarded, name=name, daemon=True,
                                            args=(run, name, fn, run, stack, name,
                                                  rng.randrange(1 << 30))))
        for lane in range(2):
            threads.append(threading.Thread(target=guarded, name=f"sdk{lane}", daemon=True,
                                            args=(run, f"sdk{lane}", sdk_lane, run, sdk, lane,
                                                  rng.randrange(1 << 30))))
        threads.append(threading.Thread(target=guarded, name="checker", daemon=True,
                                        args=(run, "checker", retire_loop, run, checker)))
        for t in threads:
            t.start()
        try:
            faults.schedule()
        finally:
            run.stop.set()
            run.gw_up.set()
        workload_s = time.monotonic() - started
        for t in threads:
            t.join(RECOVERY_TIMEOUT)
            assert not t.is_alive(), f"client thread {t.name} hung"
        sdk.close()
        sdk = None
        t_check = time.monotonic()
        checker.retire_ready(final=True)
        # Faults off, then convergence.
        stack.clear_cache_faults()
        stack.clear_origin_faults()
        faults.check_alive()
        wait_until(lambda: stack.ready() and stack.cache_healthy(), timeout=RECOVERY_TIMEOUT,
                   interval=0.05, what="the final recovery")
        compared, diffs, conv_cache = converge(run, stack)
        faults.check_alive()
        checker.collect()
        check_s = time.monotonic() - t_check  # what the check took past the workload
        totals, details = dict(checker.totals), checker.details

        ops_per_s = {k: round(n / workload_s, 1) for k, n in sorted(run.ops.items())}
        summary = {
            "event": "summary", "cache": args.cache, "replicas": args.replicas,
            "seed": args.seed,
            "duration_s": round(workload_s, 1), "requests": run.requests,
            "requests_per_s": round(run.requests / workload_s, 1),
            "ops_per_s": ops_per_s, "ops": dict(sorted(run.ops.items())),
            "requests_by_client": dict(sorted(run.by_client.items())),
            "ok": dict(sorted(run.ok.items())),
            "faults": dict(sorted(faults.injected.items())),
            "recoveries": dict(sorted(faults.recoveries.items())),
            "recovery_s_max": {k: round(max(v), 3) for k, v in sorted(faults.recovery_s.items())},
            "gateway_starts": stack.starts, "gateway_crashes": len(faults.crashes),
            "fetch_cache": dict(sorted(run.cache.items())), "segments": run.segment,
            "history": totals, "check_tail_s": round(check_s, 1),
            "max_ops_per_id": checker.max_key_ops, "max_search_steps": checker.max_steps,
            "converged_ids": compared, "diverged_ids": len(diffs),
            "convergence_cache": dict(conv_cache),
            "unexpected": len(run.unexpected), "client_errors": len(run.errors),
        }
        log_json(summary)
        for line in run.unexpected[:10]:
            print("unexpected:", line)
        for line in run.errors[:5]:
            print("client error:", line)
        for line in faults.crashes[:3]:
            print("crash:", line)
        for line in diffs[:10]:
            print("diverged:", line)
        for d in details[:5]:
            print(d)
        missing = [k for k in faults.kinds() if k != "combined" and not faults.injected[k]]
        if args.duration < 60:
            missing = []  # a short run need not meet every kind
        passed = (totals.get("stale", 0) == 0 and totals.get("resurrected", 0) == 0
                  and totals.get("partial", 0) == 0 and totals.get("other", 0) == 0
                  and not diffs and not faults.crashes and not run.errors
                  and not run.unexpected and not missing)
        print(f"soak {'PASS' if passed else 'FAIL'}: cache={args.cache} "
              f"replicas={args.replicas} "
              f"{round(workload_s)}s {run.requests} requests "
              f"({summary['requests_per_s']}/s), faults={sum(faults.injected.values())} "
              f"recoveries={sum(faults.recoveries.values())} "
              f"stale={totals.get('stale', 0)} resurrected={totals.get('resurrected', 0)} "
              f"partial={totals.get('partial', 0)} other={totals.get('other', 0)} "
              f"diverged={len(diffs)} crashes={len(faults.crashes)}"
              + (f" never_injected={missing}" if missing else ""), flush=True)
    finally:
        run.stop.set()
        run.gw_up.set()
        if sdk is not None:
            sdk.close()
        checker.close()
        stack.close()
        if passed and not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        elif not passed:
            print(f"soak: logs kept in {workdir}", flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
