"""The `layer` command line's client commands (src/cli/client_commands.h) against a real gateway:
`warm --follow` draws a progress bar on a terminal (a pty) and prints JSON lines when piped; jobs,
job (--cancel), fetch, hint (an explicit false honoured), snapshot and status; exit codes."""
from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess

import pytest

from layer_testlib import Gateway, clean_env, http_request, layer_bin
from test_origin_durability import start

KEY = "cli-key"


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    g = Gateway([], clean_env(), str(tmp), "gw")
    g.argv += ["--listen", "127.0.0.1:0", "--port-file", g.port_file, "--data-dir",
               str(tmp / "data")]
    start(g)
    rows = [{"id": i, "title": f"t{i}"} for i in range(1, 2001)]
    r = http_request(g, "POST", "/v2/namespaces/cli_ns", json.dumps({"upsert_rows": rows}).encode(),
                     token=KEY)
    assert r.status == 200, r
    yield g
    g.stop()


def env_for(gw):
    return clean_env({"LAYER_GATEWAY_URL": f"http://127.0.0.1:{gw.port}",
                      "LAYER_GATEWAY_API_KEY": KEY})


def layer(gw, *args, env=None):
    return subprocess.run([layer_bin(), *args], env=env or env_for(gw), capture_output=True,
                          text=True, timeout=120)


def in_pty(gw, *args):
    """Runs `layer args` with a terminal as stdout; returns (exit code, everything it drew)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(layer_bin(), [layer_bin(), *args], env_for(gw))
    out = b""
    while True:
        r, _, _ = select.select([fd], [], [], 120)
        if not r:
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def test_warm_follow_prints_json_lines_when_piped(gw):
    p = layer(gw, "warm", "cli_ns", "--page-size", "100", "--follow")
    assert p.returncode == 0, p.stderr
    lines = [json.loads(line) for line in p.stdout.splitlines()]
    assert lines and lines[-1]["status"] == "completed", lines[-1:]
    assert lines[-1]["documents_scanned"] == 2000 and lines[-1]["progress"] == 1
    ids = {line["id"] for line in lines}
    assert len(ids) == 1
    scanned = [line["documents_scanned"] for line in lines]
    assert scanned == sorted(scanned)


def test_warm_follow_draws_a_progress_bar_on_a_terminal(gw):
    code, out = in_pty(gw, "warm", "cli_ns", "--page-size", "100", "--follow")
    assert code == 0, out
    percents = [float(p) for p in re.findall(r"\]\s+(\d+\.\d)%", out)]
    assert percents and percents[-1] == 100.0, out
    assert percents == sorted(percents), percents
    assert "docs/s" in out and "elapsed" in out and "ETA" in out, out
    assert re.search(r"warm job [0-9a-f-]{36} completed: 2000 documents", out), out


def test_jobs_job_cancel_fetch_hint_snapshot_status(gw):
    p = layer(gw, "jobs", "cli_ns")
    assert p.returncode == 0, p.stderr
    jobs = [json.loads(line) for line in p.stdout.splitlines()]
    assert jobs and all(j["namespace"] == "cli_ns" for j in jobs)
    p = layer(gw, "job", "cli_ns", jobs[0]["id"])
    assert p.returncode == 0 and json.loads(p.stdout)["id"] == jobs[0]["id"]
    # A finished job cannot be cancelled again: it stays completed.
    p = layer(gw, "job", "cli_ns", jobs[0]["id"], "--cancel")
    assert p.returncode == 0 and json.loads(p.stdout)["status"] == "completed", p.stdout
    p = layer(gw, "fetch", "cli_ns", "7")
    assert p.returncode == 0 and json.loads(p.stdout) == {"id": 7, "attributes": {"title": "t7"}}
    p = layer(gw, "fetch", "cli_ns", "7", "8", "99999")
    body = json.loads(p.stdout)
    assert [d["id"] for d in body["documents"]] == [7, 8] and body["missing"] == [99999]
    p = layer(gw, "hint", "cli_ns", "--turbopuffer=false", "--documents=false",
              "--snapshots=false")
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    assert rep["turbopuffer"] == {"enabled": False, "status": "skipped"}, rep
    p = layer(gw, "snapshot", "cli_ns", "--set-policy", '{"facetFields":["title"]}')
    assert p.returncode == 0 and json.loads(p.stdout)["facetFields"] == ["title"], p.stderr
    p = layer(gw, "snapshot", "cli_ns", "--policy")
    assert json.loads(p.stdout)["facetFields"] == ["title"]
    p = layer(gw, "status")
    assert p.returncode == 0 and json.loads(p.stdout)["status"] == "ok"


def test_exit_codes_and_messages(gw, tmp_path):
    p = layer(gw, "fetch", "cli_ns", "424242")
    assert p.returncode == 1 and "404 not_found" in p.stderr and "424242" in p.stderr, p.stderr
    p = layer(gw, "warm", "cli_ns", "--page-size", "0")
    assert p.returncode == 1 and "validation_error" in p.stderr, p.stderr
    p = layer(gw, "warm")
    assert p.returncode == 2, p
    p = layer(gw, "status", "--url", "http://127.0.0.1:9")
    assert p.returncode == 3 and "could not be reached" in p.stderr, p.stderr
