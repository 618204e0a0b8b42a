"""Two gateways sharing a PostgreSQL job store (src/jobs/postgres/, docs/design.md §5): a warm
started on A is the namespace's one running warm across both (a POST through B returns it, B
lists and cancels it); when A is killed with SIGKILL mid-warm, B takes the job over once A's lease
has expired and completes it from A's last checkpoint.

The test creates its own PostgreSQL cluster (initdb in a temporary directory, as the postgres user
when run as root) on a free port. Without the PostgreSQL binaries it skips, except under CI=true,
where it fails (scripts/setup.sh installs them)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from layer_testlib import wait_until
from test_cache_redis import count_doc_keys, redis  # noqa: F401
from test_cache_support import (TOKEN, clear_origin_faults, doc, fetch, gateway_process, start,  # noqa: F401,E501
                                keepalive, kill9_and_reap, stack_factory, strip_reserved,
                                wait_cache_healthy)
from test_warm_support import (attrs_for, cancel_job, get_job, job, list_jobs, seed_origin,
                               slow_origin_queries, start_warm, wait_job)

# The lease a gateway's jobs hold (src/jobs/job_store.h: 30 s) and the sweep that claims expired
# ones (a third of it): a dead owner's job is taken over within about 40 s. Bounds below are
# generous multiples of that, only against a hang.
TAKEOVER_BOUND_S = 120
SECRET = "pg-s3cret-pw"


def _pg_bin() -> str | None:
    env = os.environ.get("LAYER_PG_BIN")
    if env:
        return env
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[-3]) if p.split("/")[-3].isdigit() else 0)
    return os.path.dirname(found[-1]) if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A throwaway PostgreSQL cluster listening on 127.0.0.1:port."""

    def __init__(self):
        self.bin = _pg_bin()
        if not self.bin:
            raise RuntimeError("no initdb under /usr/lib/postgresql/*/bin (or $LAYER_PG_BIN)")
        # Not under pytest's tmp_path: its parents are private to the user running the tests.
        self.dir = tempfile.mkdtemp(prefix="layer_pg_")
        self.data = os.path.join(self.dir, "data")
        self.prefix = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(self.dir, "postgres", "postgres")
            os.chmod(self.dir, 0o755)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self.port = _free_port()
        self.started = False
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync",
                  "-E", "UTF8", "--locale=C")
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                    f"unix_socket_directories = '{self.dir}'\nfsync = off\n")
        self.start()
        self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d",
                  "postgres", "-qc", "CREATE DATABASE layer")

    def start(self) -> None:
        self._run("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "server.log"), "-w",
                  "-t", "120", "start")
        self.started = True

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop: `fast` rolls back open transactions and closes every connection."""
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "120", "stop")
        self.started = False

    def _run(self, tool, *args):
        r = subprocess.run([*self.prefix, os.path.join(self.bin, tool), *args],
                           capture_output=True, text=True, timeout=180)
        if r.returncode != 0:
            raise RuntimeError(f"{tool} failed: {r.stdout}{r.stderr}")
        return r.stdout

    def url(self, db: str = "layer", password: str = "") -> str:
        # The cluster trusts local connections: a password is accepted and not checked.
        user = f"postgres:{password}" if password else "postgres"
        return f"postgresql://{user}@127.0.0.1:{self.port}/{db}"

    def sql(self, statement: str) -> str:
        return self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d",
                         "layer", "-Atqc", statement).strip()

    def close(self):
        if self.started:
            subprocess.run([*self.prefix, os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-m",
                            "immediate", "-w", "stop"], capture_output=True, timeout=120)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def postgres():
    try:
        server = PostgresServer()
    except (RuntimeError, OSError, KeyError, LookupError) as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL did not start (CI installs it: scripts/setup.sh): {e}")
        pytest.skip(f"PostgreSQL not available: {e}")
    yield server
    server.close()


def start_fleet(stack_factory, postgres, *extra: str):
    """One origin and two gateways (A, B) on it, each with its own data dir, sharing the
    PostgreSQL job store (and whatever `extra` adds, e.g. a shared cache). An upstream key lets a
    taken-over job run without its caller's key (docs/design.md §9.7)."""
    args = ("--upstream-api-key", TOKEN, "--job-store", postgres.url(password=SECRET), *extra)
    stack = stack_factory(gw_args=args)
    b = gateway_process(stack.tmp, stack.origin.url, os.path.join(stack.tmp, "gw-b-data"), *args,
                        name="gw-b")
    stack.procs.append(b)
    start(b)
    return stack, stack.gw, b


@pytest.fixture
def fleet(stack_factory, postgres):
    """A and B with embedded caches of their own."""
    return start_fleet(stack_factory, postgres)


@pytest.fixture
def redis_fleet(stack_factory, postgres, redis):
    """A and B sharing one Redis cache as well (docs/design.md §3.11)."""
    # A generous cache call deadline: a busy machine's slow call would open the breaker.
    return start_fleet(stack_factory, postgres, "--cache", redis.url, "--cache-op-timeout-ms",
                       "3000")


def test_job_store_is_logged_without_its_password(fleet, postgres):
    _, a, b = fleet
    for g in (a, b):
        out = wait_until(lambda: "job store: postgresql" in g.output() and g.output(), timeout=10,
                         what="the job store in the log")
        assert f"postgres:<redacted>@127.0.0.1:{postgres.port}/layer" in out, out
        assert SECRET not in out, out
    # Both replicas created (migrated) the one schema.
    assert postgres.sql("SELECT version FROM layer_schema_version WHERE component = 'jobs'") == "1"


def assert_every_document_is_a_hit(gw, ns: str, total: int) -> None:
    """Fetches ids 1..total through `gw`: each is served from the cache with its attributes. A
    fetch that fell through because a cache call failed on a busy machine is asked again once the
    breaker closed."""
    wait_cache_healthy(gw, timeout=30)
    conn = keepalive(gw)
    try:
        for i in range(1, total + 1):
            r = fetch(gw, ns, i, conn=conn)
            if r.header("x-layer-cache") == "miss-on-error":
                wait_cache_healthy(gw, timeout=30)
                r = fetch(gw, ns, i, conn=conn)
            assert r.header("x-layer-cache") == "hit", (gw.port, i, r)
            assert strip_reserved(doc(r)) == attrs_for(i), (gw.port, i, r)
    finally:
        conn.close()


def kill_a_mid_warm_and_let_b_finish(stack, a, b, ns: str, total: int, page: int) -> str:
    """Starts a warm of `total` documents on A, kills A (SIGKILL) once it checkpointed a few
    pages, and waits until B took the job over from A's last checkpoint and completed it with
    every document counted once. Returns the job's id."""
    o = stack.origin
    seed_origin(o, ns, range(1, total + 1))
    slow_origin_queries(o, 300)  # A is still paging when it is killed

    r = start_warm(a, ns, page)
    assert r.status == 202, r
    jid = r.json()["id"]
    before, _ = wait_job(a, ns, jid, timeout=30, until=lambda j: j["documents_scanned"] >= 3 * page)
    assert before["status"] == "running", before

    # One running warm per namespace across the fleet: B answers with A's job, and sees it.
    r = start_warm(b, ns, 500)
    assert r.status == 202 and r.json()["id"] == jid, r
    assert r.json()["page_size"] == page, r
    assert [x["id"] for x in list_jobs(b, ns)] == [jid]

    last_seen = job(b, ns, jid)
    kill9_and_reap(a)
    assert 0 < last_seen["documents_scanned"] < total, last_seen

    # B takes the job over once A's lease has expired (its sweep logs it) ...
    wait_until(lambda: f"taking over warm job {jid}" in b.output(), timeout=TAKEOVER_BOUND_S,
               interval=0.2, what="B to take over the warm job")
    resumed = job(b, ns, jid)
    assert resumed["status"] == "running", resumed
    # ... from A's last checkpoint, not from the start.
    assert resumed["documents_scanned"] >= last_seen["documents_scanned"], (last_seen, resumed)
    clear_origin_faults(o)
    j, polls = wait_job(b, ns, jid, timeout=60)
    assert j["status"] == "completed", j
    assert j["documents_scanned"] == total, j  # neither double counted nor lost
    for x, y in zip(polls, polls[1:]):
        assert y["documents_scanned"] >= x["documents_scanned"], (x, y)
    return jid


def test_a_killed_replicas_warm_is_taken_over_and_completed_from_its_checkpoint(fleet):
    stack, a, b = fleet
    ns = "fleet_warm"
    total, page = 2000, 100
    jid = kill_a_mid_warm_and_let_b_finish(stack, a, b, ns, total, page)

    # B's cache has what B paged (after the checkpoint) and not what A paged before it: B did not
    # start over.
    r = fetch(b, ns, total)
    assert r.header("x-layer-cache") == "hit", r
    assert strip_reserved(doc(r)) == attrs_for(total), r
    r = fetch(b, ns, 1)
    assert r.header("x-layer-cache") == "miss", r
    assert strip_reserved(doc(r)) == attrs_for(1), r

    # The namespace has one job, and a new warm through B starts a second one.
    assert [x["id"] for x in list_jobs(b, ns)] == [jid]
    r = start_warm(b, ns, page)
    assert r.status == 202 and r.json()["id"] != jid, r


def test_a_killed_replicas_warm_on_a_shared_redis_cache_caches_every_document_once(redis_fleet,
                                                                                    redis):
    """As above, with A and B sharing one Redis cache: what A cached before it was killed is the
    fleet's (§5.3.1), so after B completed the job every document is served from the cache,
    through B and through A restarted, and the namespace has one document key per document."""
    stack, a, b = redis_fleet
    ns = "fleet_warm_shared"
    total, page = 2000, 100
    kill_a_mid_warm_and_let_b_finish(stack, a, b, ns, total, page)
    assert count_doc_keys(redis.port, ns) == total
    assert count_doc_keys(redis.port, ns, kind="d") == total  # rows, no tombstone
    a2 = stack.start_gateway()  # A again, on its data dir
    for gw in (b, a2):
        assert_every_document_is_a_hit(gw, ns, total)
    # The fetches were hits: nothing was backfilled again.
    assert count_doc_keys(redis.port, ns) == total


def test_a_warm_running_on_one_replica_is_cancelled_through_the_other(fleet):
    stack, a, b = fleet
    o = stack.origin
    ns = "fleet_cancel"
    seed_origin(o, ns, range(1, 501))
    slow_origin_queries(o, 150)
    r = start_warm(a, ns, 10)
    assert r.status == 202, r
    jid = r.json()["id"]
    wait_job(a, ns, jid, timeout=30, until=lambda j: j["documents_scanned"] > 0)
    r = cancel_job(b, ns, jid)
    assert r.status == 200 and r.json()["status"] == "cancelled", r
    cancelled = r.json()
    # A's runner notices at its next checkpoint and stops: the record stays cancelled, unchanged.
    j = job(a, ns, jid)
    assert j["status"] == "cancelled", j
    assert job(b, ns, jid) == cancelled
    # A new warm of the namespace, through either replica, is a new job.
    clear_origin_faults(o)
    r = start_warm(a, ns, 10)
    assert r.status == 202 and r.json()["id"] != jid, r
    done, _ = wait_job(b, ns, r.json()["id"], timeout=60)
    assert done["status"] == "completed" and done["documents_scanned"] == 500, done
    assert job(a, ns, jid) == cancelled


def test_a_warm_goes_on_across_a_restart_of_the_job_store(fleet, postgres):
    """PostgreSQL restarted (pg_ctl stop -m fast, then start) while a warm pages through A: the
    checkpoint that meets the stopped server is tried again until the server answers (§5.5), and
    the job completes with every document counted once and cached; the fleet's records survive."""
    stack, a, b = fleet
    o = stack.origin
    ns = "fleet_warm_pg_restart"
    total, page = 2000, 100
    seed_origin(o, ns, range(1, total + 1))
    slow_origin_queries(o, 300)  # still paging when the server stops
    r = start_warm(a, ns, page)
    assert r.status == 202, r
    jid = r.json()["id"]
    before, _ = wait_job(a, ns, jid, timeout=30, until=lambda j: j["documents_scanned"] >= 3 * page)
    assert before["status"] == "running", before

    postgres.stop()
    wait_until(lambda: f"warm job {jid}: checkpointing after" in a.output(), timeout=60,
               interval=0.1, what="A's checkpoint to meet the stopped job store")
    r = get_job(b, ns, jid)
    assert r.status == 503, r  # a job-store failure on a route (§5.3)
    postgres.start()
    clear_origin_faults(o)

    j, polls = wait_job(a, ns, jid, timeout=TAKEOVER_BOUND_S)
    assert j["status"] == "completed", j
    assert j["documents_scanned"] == total and j["cache_errors"] == 0, j
    for x, y in zip(polls, polls[1:]):
        assert y["documents_scanned"] >= x["documents_scanned"], (x, y)
    # A went on itself once the server answered (or, had A's retries outlasted its lease, B's
    # sweep took the job over from its last checkpoint).
    assert ("checkpointed again" in a.output()
            or f"taking over warm job {jid}" in b.output()), a.output()[-3000:]
    assert job(b, ns, jid) == j
    assert [x["id"] for x in list_jobs(b, ns)] == [jid]
    # Nothing lost: every document is in A's cache, as the origin has it.
    assert_every_document_is_a_hit(a, ns, total)
