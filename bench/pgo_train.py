#!/usr/bin/env python3
"""The training run of a profile-guided build (scripts/release.sh): drives an instrumented `layer`
through the request paths that carry a gateway's traffic, so that the profile it writes on exit
says which branches, calls and loops are hot.

Starts, in a temp dir (and stops them at the end with SIGTERM, so that they write their profile):
  - `fixed_origin` and `layer serve` in front of it: queries and other passthrough requests;
  - `layer origin` and a second `layer serve` in front of that: writes (upserts, patches,
    deletes), fetches of single documents and batches (hits and misses), queries, namespace
    metadata, and a warm job polled to its end.

wrk (`--wrk`) drives each phase for `--seconds` s at 64 connections; a few setup and warm calls go
through urllib. Exits non-zero when a phase answers anything but 2xx (a fetch of an absent id:
404), so that a broken binary never yields a profile. Prints one line per phase on stderr.

  /usr/bin/python3 bench/pgo_train.py --layer-bin build-pgo/layer \\
      --origin-bin build-pgo/bench/fixed_origin
"""

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_proc import Servers, log, wait_http, wait_port_file  # noqa: E402

NS = "train"
TOKEN = "train"
DOCS = 2000
QUERY_BODY = '{"rank_by":["vector","ANN",[0.1,0.2,0.3]],"top_k":10,"include_attributes":["text"]}'

# wrk reports failures through its summary; this prints them as one JSON line.
WRK_REPORT = """
done = function(summary, latency, requests)
  io.write(string.format('{"requests": %d, "non2xx": %d, "errors": %d}\\n', summary.requests,
    summary.errors.status, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
"""

AUTH = f'wrk.headers["Authorization"] = "Bearer {TOKEN}"\n'
JSON = 'wrk.headers["Content-Type"] = "application/json"\n'

SCRIPTS = {
    "query": 'wrk.method = "POST"\n' + f"wrk.body = {json.dumps(QUERY_BODY)}\n" + JSON + AUTH,
    "fetch": AUTH + f"""
request = function()
  return wrk.format("GET", "/v2/namespaces/{NS}/documents/" .. math.random(1, {DOCS + 200}))
end
""",
    "batch": AUTH + JSON + f"""
request = function()
  local ids = {{}}
  for i = 1, 20 do ids[i] = math.random(1, {DOCS + 200}) end
  return wrk.format("POST", "/v2/namespaces/{NS}/documents", nil,
                    '{{"ids":[' .. table.concat(ids, ",") .. ']}}')
end
""",
    "write": AUTH + JSON + f"""
local n = 0
request = function()
  n = n + 1
  local id = math.random(1, {DOCS})
  local body
  if n % 5 == 0 then
    body = '{{"patch_rows":[{{"id":' .. id .. ',"score":' .. n .. '}}]}}'
  elseif n % 7 == 0 then
    body = '{{"deletes":[' .. math.random({DOCS + 1}, {DOCS + 200}) .. ']}}'
  else
    body = '{{"upsert_rows":[{{"id":' .. id .. ',"text":"row ' .. n .. '","score":' .. n .. '}}]}}'
  end
  return wrk.format("POST", "/v2/namespaces/{NS}", nil, body)
end
""",
    "query_origin": 'wrk.method = "POST"\n' + JSON + AUTH +
                    'wrk.body = \'{"rank_by":["id","asc"],"top_k":20,"include_attributes":true}\'\n',
    "metadata": AUTH,
}


def http(port, method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Authorization", f"Bearer {TOKEN}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return res.status, json.loads(res.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layer-bin", required=True)
    ap.add_argument("--origin-bin", required=True, help="bench/fixed_origin")
    ap.add_argument("--wrk", default="wrk")
    ap.add_argument("--seconds", type=int, default=3)
    args = ap.parse_args()

    servers = Servers("layer-pgo-train-", stop_timeout=30)
    start = servers.start
    try:
        opf = servers.path("fixed.port")
        fixed = start("fixed_origin", [args.origin_bin, "--port-file", opf], kill=True)
        fixed_port = wait_port_file(opf, fixed, "fixed_origin")
        tpf = servers.path("origin.port")
        origin = start("layer_origin", [args.layer_bin, "origin", "--listen", "127.0.0.1:0",
                                        "--port-file", tpf, "--data-dir",
                                        servers.path("origin-data"), "--log-level", "warn"])
        origin_port = wait_port_file(tpf, origin, "layer origin")

        def serve(name, upstream_port):
            pf = servers.path(name + ".port")
            p = start(name, [args.layer_bin, "serve", "--listen", "127.0.0.1:0", "--port-file",
                             pf, "--upstream", f"http://127.0.0.1:{upstream_port}", "--data-dir",
                             servers.path(name + "-data"), "--access-log", "false",
                             "--log-level", "warn"])
            port = wait_port_file(pf, p, name)
            wait_http(port, "/health", p, name)
            return port

        passthrough = serve("layer_passthrough", fixed_port)
        gateway = serve("layer", origin_port)

        for first in range(1, DOCS + 1, 500):
            rows = [{"id": i, "text": f"document {i}", "score": i}
                    for i in range(first, min(first + 500, DOCS + 1))]
            st, body = http(gateway, "POST", f"/v2/namespaces/{NS}", {"upsert_rows": rows})
            if st != 200:
                raise RuntimeError(f"seeding failed: {st} {body!r:.200}")

        # A fetch of an id past DOCS is a 404 (a miss the origin answers): the only non-2xx
        # answers a phase may have.
        def phase(name, port, path, misses=False):
            script = servers.path(name + ".lua")
            with open(script, "w") as f:
                f.write(SCRIPTS[name] + WRK_REPORT)
            out = subprocess.run([args.wrk, "-t", "2", "-c", "64", "-d", f"{args.seconds}s",
                                  "-s", script, f"http://127.0.0.1:{port}{path}"],
                                 capture_output=True, text=True, check=True).stdout
            r = json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])
            log(f"pgo training: {name}: {r['requests']} requests")
            if r["requests"] == 0 or r["errors"] or (r["non2xx"] and not misses):
                raise RuntimeError(f"phase {name} failed: {r}")

        phase("query", passthrough, f"/v2/namespaces/{NS}/query")
        phase("fetch", gateway, "/", misses=True)
        phase("batch", gateway, "/")
        phase("write", gateway, "/")
        phase("query_origin", gateway, f"/v2/namespaces/{NS}/query")
        phase("metadata", gateway, f"/v2/namespaces/{NS}/metadata")
        phase("fetch", gateway, "/", misses=True)  # hits again, after the writes' invalidations

        st, job = http(gateway, "POST", f"/v2/namespaces/{NS}/warm")
        if st not in (200, 201, 202) or not isinstance(job, dict):
            raise RuntimeError(f"warm failed to start: {st} {job!r:.200}")
        job_id = job.get("job_id") or job.get("id")
        deadline = time.time() + 120
        while True:
            st, state = http(gateway, "GET", f"/v2/namespaces/{NS}/warm-jobs/{job_id}")
            if st == 200 and state.get("status") in ("completed", "failed", "cancelled"):
                break
            if time.time() > deadline:
                raise RuntimeError(f"warm job {job_id} did not end: {state!r:.200}")
            time.sleep(0.1)
        if state.get("status") != "completed":
            raise RuntimeError(f"warm job {job_id} ended {state!r:.200}")
        log(f"pgo training: warm: {state.get('documents_scanned')} documents")
    finally:
        servers.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
