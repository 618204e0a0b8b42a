"""Two gateways on one Redis Cluster (`--cache redis-cluster://H:P,H:P,H:P`, docs/design.md
§3.11) in front of the strict origin (`layer origin --api-key`): a write through replica A is seen,
never stale, by a fetch through B, and a namespace deleted through B is gone for A, with the
namespaces spread over the three masters.

The tests start their own cluster: three redis-server processes with --cluster-enabled yes on
free ports, each in its own directory, joined by `redis-cli --cluster create`, then waited for
until every node reports cluster_state:ok. A missing redis-server or redis-cli skips them, except
under CI (CI=true), where it fails them.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess

import pytest

from layer_testlib import run_layer, clean_env, wait_until
from test_cache_redis import REDIS_SERVER, Fleet, RedisServer, cache_header
from test_cache_support import delete_namespace, doc, fetch, health_cache, write

REDIS_CLI = os.environ.get("LAYER_REDIS_CLI") or shutil.which("redis-cli") or "/usr/bin/redis-cli"


def resp_command(*args: str) -> bytes:
    return (f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n"
                                            for a in args)).encode()


def resp_reply(f) -> str:
    line = f.readline().decode("utf-8", "replace").rstrip("\r\n")
    if line.startswith("$"):
        n = int(line[1:])
        return "" if n < 0 else f.read(n + 2)[:n].decode("utf-8", "replace")
    return line


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is a port too."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 <= 65535:
            return port


class RedisCluster:
    """Three masters, no replicas, on 127.0.0.1."""

    def __init__(self, workdir: str, password: str = ""):
        self.password = password
        self.procs = []
        self.ports = []
        try:
            self._start(workdir)
        except BaseException:
            self.stop()
            raise

    def _start(self, workdir: str) -> None:
        password = self.password
        for i in range(3):
            port = cluster_port()
            d = os.path.join(workdir, f"node{i}")
            os.makedirs(d, exist_ok=True)
            args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1",
                    "--cluster-enabled", "yes", "--cluster-config-file",
                    os.path.join(d, "nodes.conf"), "--save", "", "--appendonly", "no", "--dir", d,
                    "--maxmemory-policy", "volatile-lru", "--logfile",
                    os.path.join(d, "redis.log")]
            if password:
                args += ["--requirepass", password, "--masterauth", password]
            self.procs.append(subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                               stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL))
            self.ports.append(port)
        for port, proc in zip(self.ports, self.procs):
            def up(port=port, proc=proc):
                try:
                    return self.cmd(port, "PING") == "+PONG"
                except OSError:
                    assert proc.poll() is None, "redis-server exited"
                    return False
            wait_until(up, timeout=10, what="redis-server to answer PING")
        auth = ["-a", password, "--no-auth-warning"] if password else []
        r = subprocess.run([REDIS_CLI, *auth, "--cluster", "create",
                            *[f"127.0.0.1:{p}" for p in self.ports],
                            "--cluster-replicas", "0", "--cluster-yes"],
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stdout + r.stderr

        def converged():
            return all("cluster_state:ok" in self.info(p) and "cluster_known_nodes:3" in
                       self.info(p) for p in self.ports)
        wait_until(converged, timeout=60, interval=0.05, what="cluster_state:ok on every node")

    def cmd(self, port: int, *args: str) -> str:
        """One command (after AUTH when the cluster has a password) on a new connection. The
        reply as text: a bulk string's bytes, or the line of any other reply ("+OK", ":1",
        "-MOVED ...")."""
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            f = s.makefile("rb")
            commands = ([("AUTH", self.password)] if self.password else []) + [args]
            s.sendall(b"".join(resp_command(*c) for c in commands))
            replies = [resp_reply(f) for _ in commands]
            return replies[-1]

    def info(self, port: int) -> str:
        return self.cmd(port, "CLUSTER", "INFO")

    def owner(self, key: str) -> int:
        """The port of the master holding `key`'s slot."""
        for p in self.ports:
            if not self.cmd(p, "EXISTS", key).startswith("-MOVED"):
                return p
        raise AssertionError(f"no master holds {key}")

    @property
    def url(self) -> str:
        cred = f":{self.password}@" if self.password else ""
        return "redis-cluster://" + cred + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=5)


def require_redis():
    for binary in (REDIS_SERVER, REDIS_CLI):
        if not os.path.exists(binary):
            if os.environ.get("CI") == "true":
                pytest.fail(f"{binary} is not installed (scripts/setup.sh installs it)")
            pytest.skip(f"{binary} is not installed")


@pytest.fixture
def cluster(tmp_path):
    require_redis()
    c = RedisCluster(str(tmp_path / "cluster"))
    yield c
    c.stop()


@pytest.fixture
def fleet(tmp_path, cluster):
    f = Fleet(tmp_path, cluster.url)
    yield f
    f.close()


def ns_key(ns: str) -> str:
    return f"L{len(ns)}{{{ns}}}e"


def test_both_gateways_report_the_shared_cluster_cache(fleet):
    for gw in (fleet.a, fleet.b):
        c = health_cache(gw)
        assert c["backend"] == "redis" and c["connected"] is True, c
        assert "redis-cluster://127.0.0.1:" in gw.output(), gw.output()


def test_a_write_through_a_is_seen_fresh_through_b_on_every_master(fleet, cluster):
    namespaces = [f"cl-write-{i}" for i in range(9)]
    # Nine namespaces land on more than one master (slots are CRC16 of the name).
    assert len({cluster.owner(ns_key(ns)) for ns in namespaces}) > 1
    for ns in namespaces:
        r = write(fleet.a, ns, {"upsert_rows": [{"id": 1, "v": "one"}, {"id": 2, "v": "two"}]})
        assert r.status == 200, r
        r = fetch(fleet.b, ns, 1)
        assert doc(r)["v"] == "one" and cache_header(r) == "hit", (ns, r, r.headers)
        r = write(fleet.a, ns, {"upsert_rows": [{"id": 1, "v": "one-v2"}]})
        assert r.status == 200, r
        # B never serves the row A's write replaced.
        r = fetch(fleet.b, ns, 1)
        assert doc(r)["v"] == "one-v2" and cache_header(r) == "hit", (ns, r, r.headers)
        r = write(fleet.a, ns, {"deletes": [2]})
        assert r.status == 200, r
        assert fetch(fleet.b, ns, 2).status == 404
    # A wrote through the cluster: its keys are spread over the masters.
    assert len({cluster.owner(ns_key(ns)) for ns in namespaces}) > 1


def test_a_namespace_deleted_through_b_is_gone_for_a(fleet, cluster):
    ns = "cl-nsdelete"
    r = write(fleet.a, ns, {"upsert_rows": [{"id": 1, "v": "x"}, {"id": 2, "v": "y"}]})
    assert r.status == 200, r
    assert cache_header(fetch(fleet.a, ns, 1)) == "hit"
    assert cache_header(fetch(fleet.b, ns, 2)) == "hit"
    r = delete_namespace(fleet.b, ns)
    assert r.status in (200, 202, 204), r
    # B bumped the namespace's epoch on its master: A serves nothing of the namespace from it.
    assert cluster.cmd(cluster.owner(ns_key(ns)), "GET", ns_key(ns)) == "1"
    for i in (1, 2):
        assert fetch(fleet.a, ns, i).status == 404
    # A new write through A after the delete is seen through B.
    r = write(fleet.a, ns, {"upsert_rows": [{"id": 1, "v": "reborn"}]})
    assert r.status == 200, r
    assert doc(fetch(fleet.b, ns, 1))["v"] == "reborn"


def test_a_cluster_with_a_password(tmp_path):
    require_redis()
    c = RedisCluster(str(tmp_path / "cluster"), password="cl-s3cret")
    f = None
    try:
        f = Fleet(tmp_path, c.url)
        assert "cl-s3cret" not in f.a.output(), f.a.output()
        r = write(f.a, "cl-auth", {"upsert_rows": [{"id": 1, "v": "x"}]})
        assert r.status == 200, r
        r = fetch(f.b, "cl-auth", 1)
        assert doc(r)["v"] == "x" and cache_header(r) == "hit", r
        # Without the password the cluster is not reached: the gateway does not start.
        rc, out, err = run_layer(["serve", "--listen", "127.0.0.1:0", "--data-dir",
                                  str(tmp_path / "d"), "--upstream", "http://127.0.0.1:9",
                                  "--cache", c.url.replace(":cl-s3cret@", "")],
                                 env=clean_env(), timeout=20)
        assert rc not in (0, None), (rc, out, err)
    finally:
        if f:
            f.close()
        c.stop()


def test_a_server_not_in_cluster_mode_is_refused(tmp_path):
    require_redis()
    r = RedisServer(str(tmp_path / "redis"))
    try:
        rc, out, err = run_layer(["serve", "--listen", "127.0.0.1:0", "--data-dir",
                                  str(tmp_path / "d"), "--upstream", "http://127.0.0.1:9",
                                  "--cache", f"redis-cluster://127.0.0.1:{r.port}"],
                                 env=clean_env(), timeout=20)
        assert rc not in (0, None), (rc, out, err)
        assert "not in cluster mode" in out + err, out + err
    finally:
        r.stop()
