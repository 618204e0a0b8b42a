"""Two gateways on one shared Redis cache (`--cache redis://...`, docs/design.md §3.11) in front of
one origin, with one tenant (`--upstream-api-key`, §9.7): what the shared cache alone guarantees.
A write through A mirrors or tombstones its rows in the shared cache, so B serves A's new row from
the cache and never the row A's write replaced; a delete through A is never served by B; a
namespace warmed through A is snapshotted from the cache through B (§7.8). Writes in flight are
shared as write intents (§4.9): B never serves a row a write through A may have replaced, not even
after A was killed with the write on its way, and reads spread over both replicas are
linearizable per id.

redis-server (Debian's, installed by scripts/setup.sh) is started by the tests on a free port; a
missing one skips them, except under CI (CI=true), where it fails them.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from layer_testlib import run_layer, clean_env, wait_until
from test_cache_support import (AUTH, TOKEN, doc, fetch, gateway_process, health_cache,
                                origin_faults, set_origin_faults, strip_reserved, upstream_row,
                                write)
from test_origin_durability import origin_process, start

REDIS_SERVER = os.environ.get("LAYER_REDIS_SERVER") or shutil.which("redis-server") or \
    "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_cli(port: int, *args: str) -> str:
    """One command through a raw RESP connection (no redis-cli needed); the reply as text."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        cmd = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
        s.sendall(cmd.encode())
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data.decode("utf-8", "replace").strip()


# Counts the keys matching ARGV[1] (SCAN with MATCH, on the server), only those whose value
# starts with ARGV[2] when it is not empty (a document key's value starts with its kind: `d` a row,
# `t` or `r` a tombstone, src/cache/redis/redis_cache.h).
COUNT_KEYS = """local n, cursor = 0, '0'
repeat
  local r = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)
  cursor = r[1]
  for _, k in ipairs(r[2]) do
    if ARGV[2] == '' or string.sub(redis.call('GET', k), 1, #ARGV[2]) == ARGV[2] then n = n + 1 end
  end
until cursor == '0'
return n"""


def doc_key_prefix(ns: str, epoch: int = 0) -> str:
    """The prefix of namespace `ns`'s document and tombstone keys in `epoch` (redis_cache.h)."""
    return f"L{len(ns)}{{{ns}}}d{epoch}:"


def count_doc_keys(port: int, ns: str, kind: str = "", epoch: int = 0) -> int:
    """How many document keys of `ns` (of one kind when `kind` is given) the server holds (`ns`
    must hold no glob character: `{` and `}` are none)."""
    reply = redis_cli(port, "EVAL", COUNT_KEYS, "0", doc_key_prefix(ns, epoch) + "*", kind)
    assert reply.startswith(":"), reply
    return int(reply[1:])


class RedisServer:
    """With `tls`, also listens with TLS on `tls_port` (a self-signed certificate for 127.0.0.1,
    `ca`, made by the openssl command); `port` stays plain for the test's own commands."""

    def __init__(self, workdir: str, policy: str = "volatile-lru", tls: bool = False):
        self.port = free_port()
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        extra = []
        if tls:
            self.ca = os.path.join(workdir, "cert.pem")
            key = os.path.join(workdir, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                            "1", "-subj", "/CN=localhost", "-addext",
                            "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", self.ca],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.tls_port = free_port()
            extra = ["--tls-port", str(self.tls_port), "--tls-cert-file", self.ca,
                     "--tls-key-file", key, "--tls-auth-clients", "no"]
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", workdir, "--maxmemory-policy", policy,
             "--logfile", os.path.join(workdir, "redis.log"), *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            try:
                return redis_cli(self.port, "PING") == "+PONG"
            except OSError:
                assert self.proc.poll() is None, "redis-server exited"
                return False
        wait_until(up, timeout=10, what="redis-server to answer PING")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


@pytest.fixture
def redis(tmp_path):
    if not os.path.exists(REDIS_SERVER):
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed (scripts/setup.sh installs it)")
        pytest.skip("redis-server is not installed")
    r = RedisServer(str(tmp_path / "redis"))
    yield r
    r.stop()


class Fleet:
    """One origin (strict: it takes only TOKEN) and two gateways on one Redis."""

    def __init__(self, tmp, redis_url: str, *gw_args: str):
        self.procs = []
        self.tmp, self.redis_url = tmp, redis_url
        self.origin = start(self._track(origin_process(str(tmp), str(tmp / "origin-data"),
                                                       "--api-key", TOKEN, "--test-faults",
                                                       name="origin")))
        self.a = self.gateway("gwA", *gw_args)
        self.b = self.gateway("gwB", *gw_args)

    def _track(self, p):
        self.procs.append(p)
        return p

    def gateway(self, name, *extra: str):
        g = gateway_process(str(self.tmp), self.origin.url, str(self.tmp / f"{name}-data"),
                            "--cache", self.redis_url, "--upstream-api-key", TOKEN, *extra,
                            name=name)
        return start(self._track(g))

    def close(self):
        for p in reversed(self.procs):
            p.stop()


@pytest.fixture
def fleet(tmp_path, redis):
    f = Fleet(tmp_path, redis.url)
    yield f
    f.close()


def cache_header(r) -> str:
    return r.header("x-layer-cache") or ""


def test_both_gateways_report_the_shared_redis_cache(fleet):
    for gw in (fleet.a, fleet.b):
        c = health_cache(gw)
        assert c["backend"] == "redis" and c["connected"] is True, c


def test_a_write_through_a_is_served_by_b_from_the_shared_cache(fleet):
    ns = "fleet-write"
    r = write(fleet.a, ns, {"upsert_rows": [{"id": 1, "v": "one"}, {"id": 2, "v": "two"}]})
    assert r.status == 200, r
    # A mirrored the rows into the shared cache: B's first fetch is a hit.
    r = fetch(fleet.b, ns, 1)
    assert doc(r)["v"] == "one" and cache_header(r) == "hit", (r, r.headers)
    # A newer write through A replaces the row B serves: B never serves the old one again.
    r = write(fleet.a, ns, {"upsert_rows": [{"id": 1, "v": "one-v2"}]})
    assert r.status == 200, r
    r = fetch(fleet.b, ns, 1)
    assert doc(r)["v"] == "one-v2" and cache_header(r) == "hit", (r, r.headers)
    # A patch through A merges into the cached row (or tombstones it): B sees the patch.
    r = write(fleet.a, ns, {"patch_rows": [{"id": 2, "w": 3}]})
    assert r.status == 200, r
    attrs = doc(fetch(fleet.b, ns, 2))
    assert attrs["v"] == "two" and attrs["w"] == 3, attrs


def test_a_row_b_cached_is_replaced_by_a_write_through_a(fleet):
    ns = "fleet-backfill"
    # The row reaches the origin around both gateways; B caches it on a miss.
    r = write(fleet.origin, ns, {"upsert_rows": [{"id": "k", "v": "old"}]})
    assert r.status == 200, r
    r = fetch(fleet.b, ns, "k")
    assert doc(r)["v"] == "old" and cache_header(r) == "miss", (r, r.headers)

    def b_hits():
        r = fetch(fleet.b, ns, "k")
        return cache_header(r) == "hit" and doc(r)["v"] == "old"
    wait_until(b_hits, timeout=10, what="B's backfill to land in the shared cache")
    # A sees B's backfill too.
    r = fetch(fleet.a, ns, "k")
    assert doc(r)["v"] == "old" and cache_header(r) == "hit", (r, r.headers)
    r = write(fleet.a, ns, {"upsert_rows": [{"id": "k", "v": "new"}]})
    assert r.status == 200, r
    for _ in range(3):
        r = fetch(fleet.b, ns, "k")
        assert doc(r)["v"] == "new", r


def test_a_delete_through_a_is_never_served_by_b(fleet):
    ns = "fleet-delete"
    r = write(fleet.a, ns, {"upsert_rows": [{"id": 5, "v": "doomed"}, {"id": 6, "v": "stays"}]})
    assert r.status == 200, r
    assert cache_header(fetch(fleet.b, ns, 5)) == "hit"
    r = write(fleet.a, ns, {"deletes": [5]})
    assert r.status == 200, r
    for _ in range(3):
        r = fetch(fleet.b, ns, 5)
        assert r.status == 404, r
    assert doc(fetch(fleet.b, ns, 6))["v"] == "stays"


def test_a_namespace_delete_through_a_empties_it_for_b(fleet):
    ns = "fleet-nsdelete"
    r = write(fleet.a, ns, {"upsert_rows": [{"id": 1, "v": "x"}]})
    assert r.status == 200, r
    assert cache_header(fetch(fleet.b, ns, 1)) == "hit"
    from test_cache_support import delete_namespace
    r = delete_namespace(fleet.a, ns)
    assert r.status in (200, 202, 204), r
    # The epoch bump through A is seen by B: nothing of the namespace is served from the cache.
    r = fetch(fleet.b, ns, 1)
    assert r.status == 404, r


def test_an_unsafe_eviction_policy_is_refused_at_start(tmp_path):
    if not os.path.exists(REDIS_SERVER):
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed (scripts/setup.sh installs it)")
        pytest.skip("redis-server is not installed")
    r = RedisServer(str(tmp_path / "redis"), policy="allkeys-lru")
    try:
        rc, out, err = run_layer(["serve", "--listen", "127.0.0.1:0", "--data-dir",
                                  str(tmp_path / "d"), "--upstream", "http://127.0.0.1:9",
                                  "--cache", r.url], env=clean_env(), timeout=20)
        assert rc not in (0, None), (rc, out, err)
        assert "maxmemory-policy allkeys-lru" in out + err, out + err
        # The same through the environment variable.
        rc, out, err = run_layer(["serve", "--listen", "127.0.0.1:0", "--data-dir",
                                  str(tmp_path / "d"), "--upstream", "http://127.0.0.1:9"],
                                 env=clean_env({"LAYER_CACHE": r.url}), timeout=20)
        assert rc not in (0, None) and "maxmemory-policy" in out + err, (rc, out, err)
    finally:
        r.stop()


def test_two_gateways_share_a_cache_over_tls(tmp_path):
    """`--cache rediss://…?ca=…`: the gateways' cache connections are TLS, verified by the
    server's certificate, and the fleet works through them as over plain TCP."""
    if not os.path.exists(REDIS_SERVER):
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed (scripts/setup.sh installs it)")
        pytest.skip("redis-server is not installed")
    r = RedisServer(str(tmp_path / "redis"), tls=True)
    f = Fleet(tmp_path, f"rediss://127.0.0.1:{r.tls_port}?ca={r.ca}")
    try:
        for gw in (f.a, f.b):
            c = health_cache(gw)
            assert c["backend"] == "redis" and c["connected"] is True, c
        assert write(f.a, "tls", {"upsert_rows": [{"id": 1, "v": "one"}]}).status == 200
        got = fetch(f.b, "tls", 1)
        assert doc(got) == {"v": "one"} and cache_header(got) == "hit", (got, got.headers)
        # The rows are on the server (read over its plain port).
        assert redis_cli(r.port, "DBSIZE") not in (":0", ""), "nothing reached the server"
        # A gateway that cannot verify the server's certificate does not start.
        rc, out, err = run_layer(["serve", "--listen", "127.0.0.1:0", "--data-dir",
                                  str(tmp_path / "d"), "--upstream", "http://127.0.0.1:9",
                                  "--cache", f"rediss://127.0.0.1:{r.tls_port}"],
                                 env=clean_env(), timeout=20)
        assert rc not in (0, None) and "certificate" in out + err, (rc, out, err)
    finally:
        f.close()
        r.stop()


def test_a_snapshot_job_reads_the_shared_cache(fleet):
    """The cache source scans Redis (SCAN over the namespace's keys, docs/design.md §3.7.1): a
    namespace warmed through A is snapshotted from the cache through B, with the origin's
    histogram, writes through A included."""
    from test_snapshot_jobs import CACHE_SCHEMA, body_of, cache_rows, counts, run_job, warm
    ns = "fleet-snap"
    assert write(fleet.a, ns, {"upsert_rows": cache_rows(150), "schema": CACHE_SCHEMA}
                 ).status == 200
    warm(fleet.a, ns)
    assert write(fleet.a, ns, {"upsert_rows": cache_rows(5, first=500),
                               "deletes": [1, 2, 3]}).status == 200
    for field, flt, scanned in (("color", None, 152), ("when", ["size", "In", [0, 3]], 76)):
        body = {"field": field, "page_size": 40, **({"filters": flt} if flt else {})}
        c = run_job(fleet.b, ns, {**body, "source": "cache"})
        assert c["status"] == "completed" and c["effective_source"] == "cache", c
        assert c["documents_scanned"] == scanned, c
        o = run_job(fleet.b, ns, {**body, "source": "origin"})
        assert o["status"] == "completed" and o["sha"] == c["sha"], (c, o)
        assert counts(body_of(fleet.b, ns, c["sha"]), field) == counts(
            body_of(fleet.b, ns, o["sha"]), field)
    assert run_job(fleet.b, ns, {"field": "size"})["effective_source"] == "cache"


def test_a_gateway_killed_with_a_write_in_flight_leaves_no_stale_row(tmp_path, fleet):
    """The embedded cache is discarded after an unclean stop (docs/design.md §3.8); a shared one
    is not, and the write's ticket and mirror lived only in the killed process. The write's
    intent, registered in the shared cache before it was sent (§4.9), outlives it: here C caches
    {"v": 1}, forwards {"v": 2}, the origin applies it and holds the answer, and C is killed. B
    reads the id upstream while the intent is within its deadline, and once the deadline passed
    its lookup closes the intent with a tombstone, so the row from before the write is never
    served again, and B caches {"v": 2} from the upstream."""
    ns = "fleet-crash"
    # A short deadline: 2 x 1 s upstream timeout + 1 s hold + the 10 s margin.
    c = fleet.gateway("gwC", "--upstream-timeout-ms", "1000", "--unknown-write-hold-ms", "1000")
    assert write(c, ns, {"upsert_rows": [{"id": 1, "v": 1}]}).status == 200
    assert cache_header(fetch(fleet.b, ns, 1)) == "hit"
    set_origin_faults(fleet.origin, {"write": {"after_apply": "delay",
                                               "after_apply_delay_ms": 5000, "times": 1}})
    answer = {}

    def send():
        try:
            answer["r"] = write(c, ns, {"upsert_rows": [{"id": 1, "v": 2}]})
        except OSError as e:  # the gateway was killed under it
            answer["r"] = e
    t = threading.Thread(target=send)
    t.start()
    wait_until(lambda: origin_faults(fleet.origin)["write"]["times"] == 0, timeout=30,
               what="the write to reach the origin")
    wait_until(lambda: strip_reserved(upstream_row(fleet.origin, ns, 1) or {}).get("v") == 2,
               timeout=30, what="the write to be applied upstream")
    c.stop()  # kill -9 while the write's answer is held
    t.join(60)
    assert not t.is_alive()
    seen = []

    def b_serves_the_new_row_from_the_cache():
        r = fetch(fleet.b, ns, 1)
        seen.append(cache_header(r))
        assert doc(r) == {"v": 2}, (seen, r.body)  # never the row from before the write
        return cache_header(r) == "hit"
    wait_until(b_serves_the_new_row_from_the_cache, timeout=120,
               what="B to cache the new row once the intent's deadline passed")
    assert seen[0] == "miss-on-error", seen  # in flight: read upstream
    r = fetch(fleet.a, ns, 1)
    assert doc(r) == {"v": 2} and cache_header(r) == "hit", (cache_header(r), r.body)


def test_a_write_in_flight_through_a_is_not_served_by_b(fleet):
    """While a write through A is on its way (the origin holds its answer after applying it), B
    neither serves the row it replaces nor backfills what it reads (§4.9)."""
    ns = "fleet-inflight"
    assert write(fleet.a, ns, {"upsert_rows": [{"id": 1, "v": 1}]}).status == 200
    assert cache_header(fetch(fleet.b, ns, 1)) == "hit"
    set_origin_faults(fleet.origin, {"write": {"after_apply": "delay",
                                               "after_apply_delay_ms": 3000, "times": 1}})
    answer = {}
    t = threading.Thread(target=lambda: answer.setdefault(
        "r", write(fleet.a, ns, {"upsert_rows": [{"id": 1, "v": 2}]})))
    t.start()
    wait_until(lambda: strip_reserved(upstream_row(fleet.origin, ns, 1) or {}).get("v") == 2,
               timeout=30, what="the write to be applied upstream")
    r = fetch(fleet.b, ns, 1)
    assert doc(r) == {"v": 2} and cache_header(r) == "miss-on-error", (cache_header(r), r.body)
    t.join(60)
    assert answer["r"].status == 200
    r = fetch(fleet.b, ns, 1)
    assert doc(r) == {"v": 2} and cache_header(r) == "hit", (cache_header(r), r.body)


# As the single-gateway linearizability test: a late answer (1.5 s) is a 502 after 600 ms. The
# test origin applies a write before it drops or delays the answer, so none is applied after the
# hold of an unknown outcome: 1 s instead of 60 ends those writes' intents within the run, and more
# of its reads go through the cache.
STRICT_GW_ARGS = ("--upstream-timeout-ms", "600", "--unknown-write-hold-ms", "1000")


@pytest.fixture
def strict_fleet(tmp_path, redis):
    f = Fleet(tmp_path, redis.url, *STRICT_GW_ARGS)
    yield f
    f.close()


def assert_fleet_run_linearizable(f: Fleet, ns: str, run, capsys, title: str) -> None:
    """Checks a run of test_linearizability's workload over the fleet's two replicas: 0 stale,
    resurrected or partial reads, then (faults off) both replicas converge on the origin's rows.
    Prints the checker's summary line."""
    from linearizability import check
    from test_linearizability import assert_converged, dump_context
    assert not run.unexpected, run.unexpected[:5]
    report = check(run.history)
    converged = [assert_converged(gw, f.origin, ns) for gw in (f.a, f.b)]
    line = (f"{title}: {report.summary()} "
            f"read_errors={run.read_errors} gateway_reads_by_cache_result={run.cache} "
            f"convergence_fetches={converged}")
    with capsys.disabled():
        print("\n" + line)
    assert report.linearizable, report.details() + "\n" + dump_context(report, run.history)
    assert report.unknown_writes > 0, line
    attempts = assert_cache_serves_again(f, ns)
    with capsys.disabled():
        print(f"{title}: the cache served both replicas again after {attempts} new row(s)")


def assert_cache_serves_again(f: Fleet, ns: str) -> int:
    """The shared cache is back in the path of both replicas once the run's writes have ended: a
    new row written through A is a hit through B. During the run most reads go upstream
    (miss-on-error) while writes of unknown outcome hold their intents, and the ids they or
    concurrent writes left tombstoned are read upstream until the tombstones expire (docs/design.md
    §4.2.7, §4.9); a whole-namespace intent that a fault kept from ending overlaps new writes until
    a lookup closes it past its deadline. So each attempt writes a new id, and the wait ends on the
    first hit (bounded well past the intents' deadline). Returns the number of rows written."""
    seen = []

    def new_row_hits() -> bool:
        i = 10_000 + len(seen) // 2
        r = write(f.a, ns, {"upsert_rows": [{"id": i, "after": f"run.{i}"}]})
        assert r.status == 200, r
        for gw in (f.b, f.a):
            r = fetch(gw, ns, i)
            assert doc(r) == {"after": f"run.{i}"}, (i, r.body)
            seen.append(cache_header(r))
        return seen[-2:] == ["hit", "hit"]

    wait_until(new_row_hits, timeout=120, interval=0.2,
               what="a new row to be a hit through both replicas after the run")
    return len(seen) // 2


def test_reads_through_two_replicas_are_linearizable_per_id(strict_fleet, capsys):
    """The per-id linearizability checker (test_linearizability.py) with writers and readers
    spread over two replicas on one Redis, writes racing on the same ids through both, and the
    origin applying writes and then dropping or delaying their answers: 0 stale, resurrected or
    partial reads, and both replicas converge on the origin's rows."""
    from test_linearizability import run_workload
    f = strict_fleet
    ns = "linz-fleet"
    run = run_workload([f.a, f.b], f.origin, ns)
    assert_fleet_run_linearizable(f, ns, run, capsys, "linearizability over two replicas")
