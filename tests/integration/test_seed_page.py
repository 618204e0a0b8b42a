"""The product page's "Warm cache" section (docs/design.md §6), run verbatim.

`layer serve` on its embedded default origin (no --upstream), LAYER_GATEWAY_URL and
LAYER_GATEWAY_API_KEY set as the page expects, a `products` namespace seeded through the gateway
and one valid snapshot body for `products` in <data-dir>/objects. Every curl command of the page is
then run unchanged with `bash -c`; the HTTP status and content type come from a private .curlrc
(CURL_HOME) so the command text stays exactly the page's.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

import pytest

from layer_testlib import Gateway, clean_env, http_request, wait_until
from test_hint_cache_warm import HEX64, ORIGIN_HINT_BODY
from test_origin_durability import start
from test_warm_support import RFC3339, UUID4, assert_job_shape

PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared",
                    "seeds", "warm-cache.txt")
API_KEY = "demo-key"

# The page's curl commands, verbatim (checked against the page below when it is present).
CURL_PASSTHROUGH = '''curl "$LAYER_GATEWAY_URL/v1/namespaces/products/hint_cache_warm" \\
  -H "Authorization: Bearer $LAYER_GATEWAY_API_KEY"'''
CURL_SNAPSHOTS = '''curl "$LAYER_GATEWAY_URL/v1/namespaces/products/hint_cache_warm?turbopuffer=false&documents=false&snapshots=true" \\
  -H "Authorization: Bearer $LAYER_GATEWAY_API_KEY"'''
CURL_WARM = '''curl -X POST "$LAYER_GATEWAY_URL/v2/namespaces/products/warm?page_size=1000" \\
  -H "Authorization: Bearer $LAYER_GATEWAY_API_KEY"'''
CURL_POLL = '''curl "$LAYER_GATEWAY_URL/v2/namespaces/products/warm-jobs/warm-job-uuid" \\
  -H "Authorization: Bearer $LAYER_GATEWAY_API_KEY"'''
PAGE_CURLS = [CURL_PASSTHROUGH, CURL_SNAPSHOTS, CURL_WARM, CURL_POLL]

ROWS = [{"id": 1, "title": "red shirt", "color": "red", "price": 19},
        {"id": 2, "title": "blue jeans", "color": "blue", "price": 49},
        {"id": 3, "title": "green hat", "color": "green", "price": 12},
        {"id": 4, "title": "white socks", "color": "white", "price": 5}]


def page_curl_commands(text: str):
    """Every `curl …` command of the page, with its backslash continuation lines."""
    out, cur = [], None
    for line in text.splitlines():
        if cur is not None:
            cur.append(line)
            if not line.rstrip().endswith("\\"):
                out.append("\n".join(cur))
                cur = None
        elif line.startswith("curl "):
            cur = [line]
            if not line.rstrip().endswith("\\"):
                out.append(line)
                cur = None
    return out


class Env:
    def __init__(self, gw: Gateway, data_dir: str, curl_home: str):
        self.gw = gw
        self.data_dir = data_dir
        self.env = clean_env({"LAYER_GATEWAY_URL": f"http://127.0.0.1:{gw.port}",
                              "LAYER_GATEWAY_API_KEY": API_KEY, "CURL_HOME": curl_home,
                              "HOME": curl_home})

    def run(self, cmd: str):
        """Runs `cmd` verbatim; returns (status, content_type, body bytes)."""
        p = subprocess.run(["bash", "-c", cmd], env=self.env, capture_output=True, timeout=20)
        assert p.returncode == 0, (cmd, p.returncode, p.stderr)
        out = p.stdout
        body, _, tail = out.rpartition(b"\n@@LAYER@@ ")
        status, ctype = tail.decode().strip().split(" ", 1) if b" " in tail.strip() else (tail.decode().strip(), "")
        return int(status), ctype.strip().lower(), body


@pytest.fixture(scope="module")
def page_env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seedpage")
    data_dir = str(tmp / "data")
    curl_home = str(tmp / "curlhome")
    os.makedirs(curl_home)
    with open(os.path.join(curl_home, ".curlrc"), "w") as f:
        f.write('silent\nshow-error\nwrite-out = "\\n@@LAYER@@ %{http_code} %{content_type}"\n')
    g = Gateway([], clean_env(), str(tmp), "seedgw")
    g.argv += ["--listen", "127.0.0.1:0", "--port-file", g.port_file, "--data-dir", data_dir,
               "--watch-stable-interval", "100ms"]
    start(g)
    try:
        # Seed `products` through the gateway.
        r = http_request(g, "POST", "/v2/namespaces/products", json.dumps({"upsert_rows": ROWS}).encode(),
                         token=API_KEY)
        assert r.status == 200, r
        assert r.json()["rows_upserted"] == len(ROWS), r
        # A snapshot policy: the gateway's own writer stores a snapshot of `products` in the
        # local object store once the watcher sees its watermark.
        r = http_request(g, "PUT", "/v2/namespaces/products/snapshot-policy",
                         json.dumps({"facetFields": ["color"], "interval": "1h"}).encode(),
                         token=API_KEY)
        assert r.status == 200, r

        def first_snapshot():
            h = http_request(g, "GET", "/v2/namespaces/products/history", token=API_KEY).json()
            return h[0] if h else None
        entry = wait_until(first_snapshot, timeout=20.0, what="the first snapshot")
        body = http_request(g, "GET", f"/v2/namespaces/products/snapshots/{entry['sha']}",
                            token=API_KEY).json()
        assert {v["v"] for v in body["fields"][0]["values"]} == {r["color"] for r in ROWS}, body
        sha = body["sha"]
        key = f"snapshots/products/{body['watermark_ms']:013d}-{sha[:7]}.json"
        assert os.path.exists(os.path.join(data_dir, "objects", key)), key
        e = Env(g, data_dir, curl_home)
        e.snapshot = (key, sha)
        yield e
    finally:
        g.stop()


def test_page_lists_exactly_these_curl_commands():
    if not os.path.exists(PAGE):
        pytest.skip(f"{PAGE} not present")
    with open(PAGE, encoding="utf-8") as f:
        got = page_curl_commands(f.read())
    assert got == PAGE_CURLS, got


def test_passthrough_curl(page_env):
    status, ctype, body = page_env.run(CURL_PASSTHROUGH)
    # The embedded origin's own answer, relayed verbatim.
    direct = http_request(page_env.gw, "GET", "/v1/namespaces/products/hint_cache_warm", token=API_KEY)
    assert status == 202, (status, body)
    assert ctype.startswith("application/json"), ctype
    assert json.loads(body) == ORIGIN_HINT_BODY, body
    assert direct.status == 202 and direct.body == body, (direct, body)


def test_orchestrated_snapshots_curl(page_env):
    status, ctype, body = page_env.run(CURL_SNAPSHOTS)
    assert status == 200, (status, body)
    assert ctype.startswith("application/json"), ctype
    rep = json.loads(body)
    key, sha = page_env.snapshot
    assert list(rep) == ["namespace", "turbopuffer", "documents", "snapshots"], rep
    assert rep["namespace"] == "products", rep
    assert rep["turbopuffer"] == {"enabled": False, "status": "skipped"}, rep
    assert rep["documents"] == {"enabled": False, "status": "skipped"}, rep
    s = rep["snapshots"]
    assert set(s) == {"enabled", "status", "key", "watermark_ms", "sha"}, s
    assert s["enabled"] is True and s["status"] == "completed", s
    assert s["key"].startswith("snapshots/products/") and s["key"] == key, s
    assert s["watermark_ms"] == int(key.rsplit("/", 1)[1][:13]) and type(s["watermark_ms"]) is int, s
    assert HEX64.match(s["sha"]) and s["sha"] == sha, s


def test_warm_curl_then_poll_curl(page_env):
    t0 = time.time()
    status, ctype, body = page_env.run(CURL_WARM)
    assert status == 202, (status, body)
    assert ctype.startswith("application/json"), ctype
    j = json.loads(body)
    # The page's shape: id, namespace, status "running", progress 0, documents_scanned 0, created_at.
    for k in ("id", "namespace", "status", "progress", "documents_scanned", "created_at"):
        assert k in j, (k, j)
    assert UUID4.match(j["id"]), j
    assert j["namespace"] == "products", j
    assert j["status"] == "running", j
    assert j["progress"] == 0 and j["documents_scanned"] == 0, j
    assert RFC3339.match(j["created_at"]), j
    created = time.mktime(time.strptime(j["created_at"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert t0 - 5 <= created <= time.time() + 5, j
    assert_job_shape(j, "products")
    assert j["page_size"] == 1000, j

    poll = CURL_POLL.replace("warm-job-uuid", j["id"])
    deadline = time.monotonic() + 15
    while True:
        status, ctype, body = page_env.run(poll)
        assert status == 200, (status, body)
        assert ctype.startswith("application/json"), ctype
        p = json.loads(body)
        assert_job_shape(p, "products")
        assert p["id"] == j["id"] and p["created_at"] == j["created_at"], (j, p)
        if p["status"] != "running":
            break
        assert time.monotonic() < deadline, p
        time.sleep(0.1)
    assert p["status"] == "completed", p
    assert p["progress"] == 1 and p["documents_scanned"] == len(ROWS), p
    assert p["page_size"] == 1000, p

    # An unknown id through the same command form is a 404, not a 200.
    status, _, body = page_env.run(CURL_POLL)
    assert status == 404, (status, body)
