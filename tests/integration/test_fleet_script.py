"""scripts/fleet.sh end to end: `up` starts a three-master Redis Cluster, PostgreSQL, the strict
origin and two gateway replicas on them; `check` writes through replica A and fetches through B,
runs a warm job through A and watches it through B, deletes the namespace through B and reads it
through A; `down` stops every part.

Needs redis-server, redis-cli, PostgreSQL's server binaries, and curl; without them it skips,
except under CI (CI=true), where it fails (scripts/setup.sh installs them)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile

import pytest

from layer_testlib import clean_env, layer_bin

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FLEET = os.path.join(ROOT, "scripts", "fleet.sh")


def fleet(state_dir: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = clean_env({"LAYER_FLEET_DIR": state_dir, "LAYER_BIN": layer_bin()})
    return subprocess.run(["bash", FLEET, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture
def state_dir():
    missing = [b for b in ("redis-server", "redis-cli", "curl") if not shutil.which(b)]
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        missing.append("PostgreSQL (initdb)")
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"not installed: {missing} (scripts/setup.sh installs them)")
        pytest.skip(f"not installed: {missing}")
    # Not under pytest's tmp_path: its parents are private, and PostgreSQL runs as `postgres`.
    d = tempfile.mkdtemp(prefix="layer_fleet_")
    os.chmod(d, 0o755)
    yield os.path.join(d, "fleet")
    fleet(os.path.join(d, "fleet"), "down")  # whatever the test left running
    shutil.rmtree(d, ignore_errors=True)


def test_fleet_up_check_status_down(state_dir):
    r = fleet(state_dir, "up")
    assert r.returncode == 0, r.stdout + r.stderr
    for part in ("redis-cluster://127.0.0.1:", "postgresql://postgres@127.0.0.1:", "origin ",
                 "replica-a http://127.0.0.1:", "replica-b http://127.0.0.1:"):
        assert part in r.stdout, r.stdout
    assert " down" not in r.stdout, r.stdout

    # A second `up` over a running fleet is refused, and leaves it running.
    again = fleet(state_dir, "up")
    assert again.returncode != 0 and "a fleet is running" in again.stderr, again

    r = fleet(state_dir, "check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok: a write through A is fetched through B" in r.stdout, r.stdout
    assert "ok: a warm job started through A is seen through B (completed)" in r.stdout, r.stdout
    assert "ok: a namespace deleted through B is gone for A" in r.stdout, r.stdout

    # Both replicas run on the cluster and the PostgreSQL job store.
    for replica in ("replica-a", "replica-b"):
        with open(os.path.join(state_dir, replica, "log")) as f:
            log = f.read()
        assert "document cache: redis at redis-cluster://" in log, log
        assert "job store: postgresql" in log, log

    r = fleet(state_dir, "status")
    assert r.returncode == 0, r.stdout + r.stderr

    r = fleet(state_dir, "down")
    assert r.returncode == 0, r.stdout + r.stderr
    r = fleet(state_dir, "status")
    assert r.returncode != 0, r.stdout
    assert " up" not in r.stdout, r.stdout
