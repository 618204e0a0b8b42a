#!/usr/bin/env python3
"""A fleet of gateways on one Redis against the embedded RocksDB cache and nginx (issue 16).

Starts, each on a free loopback port in a temp dir (and stops them at the end):
  - `layer origin --api-key bench` (strict: it takes only that token);
  - redis-server (`--save '' --appendonly no --maxmemory 1gb --maxmemory-policy volatile-lru`);
  - two gateways on that Redis, A and B: `layer serve --upstream <origin> --upstream-api-key
    bench --cache redis://127.0.0.1:P`;
  - two gateways with the default embedded RocksDB cache, R and R2 (`--data-dir` each its own);
    R2 only serves the control of (b);
  - nginx (Debian's package) with one static server holding the documents' exact bytes at the
    same paths.
Clients send `Authorization: Bearer bench` (with `--upstream-api-key`, derive mode accepts only
that key and sends it upstream).

Documents of `--doc-bytes` serialised JSON (`{"id":I,"n":I,"tag":"tK","body":"…"}`) are written
straight to the origin (bypassing every cache), `--upsert-batch` rows per upsert. Then, with wrk
(`--wrk`, a Lua script that picks the ids round robin, each thread from its own offset, and
reports wrk's latency percentiles as JSON), `--reps` repetitions with the targets of each
comparison interleaved in alternating order (ABBA...):
  (a) fetch hits: GET /v2/namespaces/bench/documents/<id> over `--docs` ids, read once through A
      and R first (misses that fill the caches), then checked: every id answers
      `x-layer-cache: hit` through A, B and R, with the same bytes, which nginx then serves as
      files. Throughput (`--connections`, `--seconds`), p50, p99 through A (Redis), R (RocksDB)
      and nginx; ratios Redis/RocksDB and each/nginx; server CPU and context switches per
      request (Redis's own included for A), and the commands Redis ran per request
      (`INFO commandstats`, which also counts the calls made inside a script). Then the same
      at a moderate fixed rate, for latency: `--latency-connections` connections, each waiting
      `--latency-delay-ms` ms between its requests (wrk's delay()), `--latency-seconds` s.
  (b) two replicas against one. Hit throughput: the load of (a) on A alone against the same
      connections split over A and B (two wrk processes at once); aggregate req/s. Hit ratio:
      one fixed sequence of `--hr-requests` fetches of random ids of a namespace of `--hr-docs`
      documents that no cache holds yet (a fresh one per run), sent by `--hr-clients` client
      threads to A alone, spread over A and B, and spread over R and R2 (two replicas with
      caches of their own: the control); the ratio is hits / lookups from the deltas of the
      gateways' `layer_cache_lookups_total{result=...}` (`/metrics`), summed over the replicas.
      With a shared cache a document missed through A is a hit through B, so the spread load
      misses once per distinct document, as one replica does.
  (c) warm throughput: POST /v2/namespaces/<ns>/warm?page_size=`--page-size` of a namespace of
      `--warm-docs` documents (a fresh one per repetition), into Redis (through A) and into
      RocksDB (through R); GET /v2/namespaces/<ns>/warm-jobs/<id> every `--poll-ms` ms until the
      job is `completed`; docs/s = documents_scanned / (POST to the poll that saw it completed),
      and by the job's own created_at / completed_at; server CPU per document (the gateway's,
      with Redis's for A; the gateway's includes the poller's requests). Then `--warm-check`
      random ids of it must be hits through that gateway.

Prints one JSON line per measurement and a summary line (medians over repetitions, ratios) on
stdout; progress on stderr. Every line carries the 1-minute load average (which counts this
run's own processes too: `loadavg_start` in the summary is the machine before it). Installs nothing
(scripts/setup.sh installs nginx, redis-server and wrk).

  /usr/bin/python3 bench/fleet_bench.py --layer-bin build/layer      # defaults: ~95-125 s
  /usr/bin/python3 bench/fleet_bench.py --reps 1 --seconds 1         # smoke run, ~20 s
"""

import argparse
import datetime
import http.client
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_proc import (Servers, context_switches, cpu_seconds, loadavg, log,  # noqa: E402
                        nginx_pids, wait_http, wait_port_file)

HERE = os.path.dirname(os.path.abspath(__file__))
NS = "bench"
TOKEN = "bench"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON_AUTH = {**AUTH, "Content-Type": "application/json"}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Conn:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1:port (reopened after an error)."""

    def __init__(self, port):
        self.port = port
        self.c = None

    def request(self, method, path, body=None, headers=None):
        for attempt in range(2):
            if self.c is None:
                self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                self.c.request(method, path, body=body, headers=headers or {})
                res = self.c.getresponse()
                data = res.read()
                return res.status, {k.lower(): v for k, v in res.getheaders()}, data
            except (OSError, http.client.HTTPException):
                self.c.close()
                self.c = None
                if attempt == 1:
                    raise

    def close(self):
        if self.c is not None:
            self.c.close()


def http_once(port, method, path, body=None, headers=None):
    c = Conn(port)
    try:
        return c.request(method, path, body, headers)
    finally:
        c.close()


def redis_ping(port):
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(b"PING\r\n")
        return s.recv(64).startswith(b"+PONG")


def redis_info(port, section):
    """The text of `INFO <section>`."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"INFO {section}\r\n".encode())
        data = b""
        while b"\r\n" not in data:
            data += s.recv(65536)
        head, rest = data.split(b"\r\n", 1)
        size = int(head[1:])
        while len(rest) < size + 2:
            rest += s.recv(65536)
    return rest[:size].decode()


def redis_calls(port):
    """Commands the Redis server has run, by name (`INFO commandstats`)."""
    out = {}
    for line in redis_info(port, "commandstats").splitlines():
        if line.startswith("cmdstat_"):
            name, stats = line[len("cmdstat_"):].split(":", 1)
            out[name] = int(stats.split("calls=", 1)[1].split(",", 1)[0])
    return out


def lookups(port):
    """The gateway's `layer_cache_lookups_total` by result."""
    st, _, body = http_once(port, "GET", "/metrics")
    if st != 200:
        raise RuntimeError(f"/metrics answered {st}")
    out = {}
    for line in body.decode().splitlines():
        if line.startswith("layer_cache_lookups_total{"):
            labels, value = line.rsplit(" ", 1)
            result = labels.split('result="', 1)[1].split('"', 1)[0]
            out[result] = out.get(result, 0) + float(value)
    return out


def lookup_delta(before, after):
    """Summed over replicas: {result: count} and the hit ratio."""
    d = {}
    for b, a in zip(before, after):
        for k in set(a) | set(b):
            d[k] = d.get(k, 0) + a.get(k, 0) - b.get(k, 0)
    total = sum(d.values())
    return {k: int(v) for k, v in sorted(d.items())}, (d.get("hit", 0) / total if total else None)


def cache_generation(port):
    """The gateway's cache connection generation (/health): it grows at every reconnect, i.e.
    after the guard's breaker opened (a cache call failed or passed its deadline, §3.9)."""
    st, _, body = http_once(port, "GET", "/health")
    return json.loads(body)["cache"]["generation"]


class Watch:
    """What the caches of some gateways did during a measurement: lookups by result (summed),
    the hit ratio, and reconnects. A measurement is `disturbed` when a gateway's cache
    reconnected (the breaker opened: misses on error for 2 s, then reactive warms, §4.5) or a
    lookup failed; medians leave disturbed repetitions out when there are others."""

    def __init__(self, ports):
        self.ports = ports
        self.gen = [cache_generation(p) for p in ports]
        self.before = [lookups(p) for p in ports]

    def done(self, expect_hits=False):
        delta, ratio = lookup_delta(self.before, [lookups(p) for p in self.ports])
        reconnects = sum(cache_generation(p) - g for p, g in zip(self.ports, self.gen))
        bad = reconnects > 0 or delta.get("error", 0) > 0
        if expect_hits and ratio is not None and ratio < 1:
            bad = True
        return {"lookups": delta, "hit_ratio": round(ratio, 4) if ratio is not None else None,
                "cache_reconnects": reconnects, "disturbed": bad}


WRK_SCRIPT = r"""
wrk.headers["Authorization"] = "Bearer %(token)s"
local first, count, prefix = %(first)d, %(count)d, "%(prefix)s"
local threads = 0
setup = function(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local reqs, i
init = function(args)
  reqs = {}
  for k = 0, count - 1 do reqs[k + 1] = wrk.format("GET", prefix .. (first + k)) end
  i = ((tid or 0) * 7919 + (tonumber(args[1]) or 0)) %% count
end
request = function()
  i = i %% count + 1
  return reqs[i]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%%d,"duration_us":%%d,"errors":%%d,"non2xx":%%d,' ..
    '"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"mean_us":%%.1f}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
"""


def wrk_cmd(args, script, port, threads, connections, seconds, offset=0):
    return [args.wrk, "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "-s",
            script, f"http://127.0.0.1:{port}/", "--", str(offset)]


def wrk_result(out):
    line = [ln for ln in out.splitlines() if ln.startswith("{")][-1]
    r = json.loads(line)
    r["rps"] = round(r["requests"] / (r["duration_us"] / 1e6), 1)
    return r


def run_wrk(args, script, port, threads, connections, seconds, offset=0):
    out = subprocess.run(wrk_cmd(args, script, port, threads, connections, seconds, offset),
                         capture_output=True, text=True, check=True).stdout
    return wrk_result(out)


def run_wrk_parallel(args, script, ports, connections, seconds):
    """One wrk process (one thread) per port at once, the connections split between them."""
    per = max(1, connections // len(ports))
    procs = [subprocess.Popen(wrk_cmd(args, script, port, 1, per, seconds, offset=i * 4999),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, port in enumerate(ports)]
    outs = []
    for p in procs:
        out, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"wrk failed: {err}")
        outs.append(wrk_result(out))
    return outs


def nginx_conf(tmp, workers, static_port, www):
    return f"""
daemon off;
worker_processes {workers};
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    sendfile on;
    tcp_nodelay on;
    server {{
        listen 127.0.0.1:{static_port};
        root {www};
        default_type application/json;
        open_file_cache max=4096 inactive=60s;
        open_file_cache_valid 60s;
    }}
}}
"""


def make_doc(i, doc_bytes):
    """A row whose serialised JSON is doc_bytes long (at least its fixed part)."""
    base = {"id": i, "n": i, "tag": f"t{i % 10}", "body": ""}
    pad = max(0, doc_bytes - len(json.dumps(base, separators=(",", ":"))))
    base["body"] = "y" * pad
    return base


def seed(origin_port, ns, first, count, doc_bytes, batch):
    c = Conn(origin_port)
    try:
        for lo in range(first, first + count, batch):
            rows = [make_doc(i, doc_bytes) for i in range(lo, min(lo + batch, first + count))]
            body = json.dumps({"upsert_rows": rows}, separators=(",", ":"))
            st, _, out = c.request("POST", f"/v2/namespaces/{ns}", body, JSON_AUTH)
            if st != 200:
                raise RuntimeError(f"seeding {ns} failed: {st} {out[:200]!r}")
    finally:
        c.close()


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def main():
    build = os.path.join(HERE, "..", "build")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--layer-bin", default=os.path.join(build, "layer"))
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    ap.add_argument("--redis-server", default=shutil.which("redis-server") or
                    "/usr/bin/redis-server")
    ap.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5, help="per wrk measurement")
    ap.add_argument("--warmup", type=int, default=1, help="seconds per wrk target, discarded")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--latency-seconds", type=int, default=3,
                    help="per paced measurement of (a); 0 skips it")
    ap.add_argument("--latency-connections", type=int, default=4)
    ap.add_argument("--latency-delay-ms", type=int, default=1)
    ap.add_argument("--layer-threads", type=int, default=2)
    ap.add_argument("--nginx-workers", type=int, default=2)
    ap.add_argument("--docs", type=int, default=1000, help="ids of the fetch-hit set (a)")
    ap.add_argument("--doc-bytes", type=int, default=1024)
    ap.add_argument("--upsert-batch", type=int, default=1000)
    ap.add_argument("--hr-docs", type=int, default=1000, help="documents per hit-ratio run (b)")
    ap.add_argument("--hr-requests", type=int, default=4000, help="fetches per hit-ratio run")
    ap.add_argument("--hr-clients", type=int, default=8, help="client threads of a hit-ratio run")
    ap.add_argument("--warm-docs", type=int, default=50000, help="documents per warm (c)")
    ap.add_argument("--page-size", type=int, default=1000)
    ap.add_argument("--poll-ms", type=int, default=10)
    ap.add_argument("--warm-check", type=int, default=20)
    ap.add_argument("--layer-arg", action="append", default=[],
                    help="extra `layer serve` argument (repeatable), e.g. --layer-arg=--threads=1")
    ap.add_argument("--only", default="a,b,c", help="comparisons to run (a,b,c)")
    ap.add_argument("--keep-tmp", action="store_true")
    args = ap.parse_args()
    only = set(args.only.split(","))

    for path in (args.layer_bin, args.nginx, args.redis_server, args.wrk):
        if not os.access(path, os.X_OK):
            sys.exit(f"error: {path} is missing (build layer_bin; scripts/setup.sh installs "
                     "nginx, redis-server and wrk)")
    servers = Servers("fleet-bench-", stop_timeout=40, keep=args.keep_tmp)
    tmp, start = servers.dir, servers.start

    try:
        started = time.time()
        load_start = loadavg()
        origin_pf = os.path.join(tmp, "origin.port")
        origin = start("origin", [args.layer_bin, "origin", "--listen", "127.0.0.1:0",
                                  "--port-file", origin_pf, "--data-dir",
                                  os.path.join(tmp, "origin-data"), "--api-key", TOKEN,
                                  "--threads", "2", "--log-level", "warn"])
        origin_port = wait_port_file(origin_pf, origin, "layer origin")

        redis_port = free_port()
        redis_dir = os.path.join(tmp, "redis")
        os.makedirs(redis_dir)
        redis = start("redis", [args.redis_server, "--port", str(redis_port), "--bind",
                                "127.0.0.1", "--save", "", "--appendonly", "no", "--dir",
                                redis_dir, "--maxmemory", "1gb", "--maxmemory-policy",
                                "volatile-lru"])
        deadline = time.time() + 10
        while True:
            if redis.poll() is not None:
                raise RuntimeError(f"redis-server exited with {redis.returncode}")
            try:
                if redis_ping(redis_port):
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("redis-server does not answer PING")
            time.sleep(0.02)
        if f"process_id:{redis.pid}\r" not in redis_info(redis_port, "server"):
            raise RuntimeError(f"another redis-server answers on port {redis_port}")

        def serve(name, *cache):
            pf = os.path.join(tmp, name + ".port")
            p = start(name, [args.layer_bin, "serve", "--listen", "127.0.0.1:0", "--port-file", pf,
                             "--upstream", f"http://127.0.0.1:{origin_port}",
                             "--upstream-api-key", TOKEN, "--data-dir",
                             os.path.join(tmp, name + "-data"), "--access-log", "false",
                             "--log-level", "warn", "--threads", str(args.layer_threads),
                             *cache] + args.layer_arg)
            port = wait_port_file(pf, p, name)
            wait_http(port, "/health", p, name)
            return p, port

        redis_url = f"redis://127.0.0.1:{redis_port}"
        gw_a, port_a = serve("gwA", "--cache", redis_url)
        gw_b, port_b = serve("gwB", "--cache", redis_url)
        gw_r, port_r = serve("gwR")
        gw_r2, port_r2 = serve("gwR2")
        for port, backend in ((port_a, "redis"), (port_b, "redis"), (port_r, "rocksdb")):
            st, _, body = http_once(port, "GET", "/health")
            got = json.loads(body)["cache"]["backend"]
            if backend not in got.lower():
                raise RuntimeError(f"gateway on :{port} has cache backend {got}, not {backend}")

        # The fetch-hit set: written to the origin, read once through A and R (misses that fill
        # Redis and R's RocksDB), then every id must be a hit through A, B and R, same bytes.
        seed(origin_port, NS, 1, args.docs, args.doc_bytes, args.upsert_batch)
        doc_path = lambda i: f"/v2/namespaces/{NS}/documents/{i}"
        conns = {p: Conn(p) for p in (port_a, port_b, port_r)}
        for port in (port_a, port_r):
            for i in range(1, args.docs + 1):
                st, _, body = conns[port].request("GET", doc_path(i), None, AUTH)
                if st != 200:
                    raise RuntimeError(f"priming fetch of {i} on :{port}: {st} {body[:200]!r}")
        www = os.path.join(tmp, "www")
        docs_dir = os.path.join(www, "v2", "namespaces", NS, "documents")
        os.makedirs(docs_dir)
        d = docs_dir
        while d.startswith(www):
            os.chmod(d, 0o755)
            d = os.path.dirname(d)
        doc_size = None
        for i in range(1, args.docs + 1):
            bodies = []
            for port in (port_a, port_b, port_r):
                for _ in range(50):  # a backfill may land just after its miss answered
                    st, h, body = conns[port].request("GET", doc_path(i), None, AUTH)
                    if st == 200 and h.get("x-layer-cache") == "hit":
                        break
                    time.sleep(0.01)
                else:
                    raise RuntimeError(f"document {i} is not a hit on :{port}: {st} "
                                       f"{h.get('x-layer-cache')}")
                bodies.append(body)
            if not bodies[0] == bodies[1] == bodies[2]:
                raise RuntimeError(f"document {i} differs between Redis and RocksDB: "
                                   f"{bodies[0][:120]!r} vs {bodies[2][:120]!r}")
            doc_size = len(bodies[0])
            with open(os.path.join(docs_dir, str(i)), "wb") as f:
                f.write(bodies[0])
            os.chmod(os.path.join(docs_dir, str(i)), 0o644)
        for c in conns.values():
            c.close()

        static_port = free_port()
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(nginx_conf(tmp, args.nginx_workers, static_port, www))
        nginx = start("nginx", [args.nginx, "-c", conf, "-p", tmp])
        wait_http(static_port, "/", nginx, "nginx")
        c = Conn(static_port)
        for i in range(1, args.docs + 1):
            st, _, body = c.request("GET", doc_path(i))
            with open(os.path.join(docs_dir, str(i)), "rb") as f:
                if st != 200 or body != f.read():
                    raise RuntimeError(f"nginx's document {i} differs from Layer's")
        c.close()
        log(f"setup in {time.time() - started:.1f} s: origin :{origin_port}, redis :{redis_port}, "
            f"A :{port_a}, B :{port_b}, R :{port_r}, R2 :{port_r2}, nginx :{static_port}; "
            f"{args.docs} documents of {doc_size} B, hits with equal bytes on A, B, R and nginx")

        script = os.path.join(tmp, "fetch.lua")
        with open(script, "w") as f:
            f.write(WRK_SCRIPT % {"token": TOKEN, "first": 1, "count": args.docs,
                                  "prefix": f"/v2/namespaces/{NS}/documents/"})
        paced = os.path.join(tmp, "fetch_paced.lua")
        with open(paced, "w") as f:
            f.write(open(script).read())
            f.write(f"delay = function() return {args.latency_delay_ms} end\n")
        results = {}  # (measurement, target) -> list of lines

        def emit(r):
            print(json.dumps(r), flush=True)
            results.setdefault((r["measurement"], r["target"]), []).append(r)

        threads = min(args.threads, args.connections)
        if "a" in only:
            targets = [("redis", port_a, lambda: [gw_a.pid], lambda: [redis.pid], [port_a]),
                       ("rocksdb", port_r, lambda: [gw_r.pid], lambda: [], [port_r]),
                       ("nginx_static", static_port, lambda: nginx_pids(nginx.pid), lambda: [],
                        [])]
            for _, port, _, _, _ in targets:
                if args.warmup > 0:
                    run_wrk(args, script, port, threads, args.connections, args.warmup)
            kinds = [("fetch_hit", script, args.connections, args.seconds)]
            if args.latency_seconds > 0:
                kinds.append(("fetch_hit_paced", paced, args.latency_connections,
                              args.latency_seconds))
            for name, lua, conns, secs in kinds:
                for rep in range(args.reps):
                    order = targets if rep % 2 == 0 else list(reversed(targets))
                    for target, port, server, cache, gws in order:
                        la = loadavg()
                        s, k = server(), cache()
                        watch = Watch(gws)
                        c0, k0, w0 = cpu_seconds(s), cpu_seconds(k), context_switches(s + k)
                        calls0 = redis_calls(redis_port)
                        r = run_wrk(args, lua, port, min(threads, conns), conns, secs)
                        n = max(r["requests"], 1)
                        calls = redis_calls(redis_port)
                        calls = {c: round((v - calls0.get(c, 0)) / n, 3)
                                 for c, v in calls.items() if v - calls0.get(c, 0) > 1}
                        cpu, kcpu = cpu_seconds(s) - c0, cpu_seconds(k) - k0
                        r.update(watch.done(expect_hits=True))
                        r.update({"measurement": name, "target": target, "rep": rep,
                                  "connections": conns, "wrk_threads": min(threads, conns),
                                  "seconds": secs, "docs": args.docs,
                                  "server_cpu_us_per_req": round((cpu + kcpu) / n * 1e6, 2),
                                  "redis_cpu_us_per_req": round(kcpu / n * 1e6, 2),
                                  "server_switches_per_req": round(
                                      (context_switches(s + k) - w0) / n, 3),
                                  "redis_commands_per_req": calls, "loadavg": la})
                        emit(r)
                        log(f"{name} rep {rep} {target}: {r['rps']:.0f} req/s, p50 "
                            f"{r['p50_us']} us, p99 {r['p99_us']} us, errors {r['errors']}, "
                            f"non-2xx {r['non2xx']}" +
                            (f", DISTURBED {r['lookups']}" if r["disturbed"] else ""))

        if "b" in only:
            # Hit throughput: A alone against A and B at once, the same connections.
            if args.warmup > 0:
                run_wrk(args, script, port_a, threads, args.connections, args.warmup)
                run_wrk_parallel(args, script, [port_a, port_b], args.connections, args.warmup)
            for rep in range(args.reps):
                order = ["one", "two"] if rep % 2 == 0 else ["two", "one"]
                for target in order:
                    la = loadavg()
                    ports = [port_a] if target == "one" else [port_a, port_b]
                    watch = Watch(ports)
                    if target == "one":
                        runs = [run_wrk(args, script, port_a, threads, args.connections,
                                        args.seconds)]
                    else:
                        runs = run_wrk_parallel(args, script, ports, args.connections,
                                                args.seconds)
                    r = {"measurement": "replicas_hit_throughput", "target": target, "rep": rep,
                         "connections": args.connections, "seconds": args.seconds,
                         "rps": round(sum(x["rps"] for x in runs), 1),
                         "rps_per_replica": [x["rps"] for x in runs],
                         "p50_us": max(x["p50_us"] for x in runs),
                         "p99_us": max(x["p99_us"] for x in runs),
                         "errors": sum(x["errors"] for x in runs),
                         "non2xx": sum(x["non2xx"] for x in runs),
                         **watch.done(expect_hits=True), "loadavg": la}
                    emit(r)
                    log(f"replicas_hit_throughput rep {rep} {target}: {r['rps']:.0f} req/s "
                        f"({r['rps_per_replica']}), hit ratio {r['hit_ratio']}" +
                        (f", DISTURBED {r['lookups']}" if r["disturbed"] else ""))

            # Hit ratio: one fixed sequence of fetches of a namespace no cache holds yet.
            configs = [("one", [port_a]), ("two_shared", [port_a, port_b]),
                       ("two_separate", [port_r, port_r2])]
            for rep in range(args.reps):
                order = configs if rep % 2 == 0 else list(reversed(configs))
                rng = random.Random(rep)
                seq = [rng.randint(1, args.hr_docs) for _ in range(args.hr_requests)]
                for target, ports in order:
                    ns = f"hr{rep}{target.replace('_', '')}"
                    seed(origin_port, ns, 1, args.hr_docs, args.doc_bytes, args.upsert_batch)
                    la = loadavg()
                    watch = Watch(ports)
                    seen = {}
                    failures = []
                    lock = threading.Lock()

                    def client(t):
                        cs = [Conn(p) for p in ports]
                        mine = {}
                        try:
                            for j in range(t, len(seq), args.hr_clients):
                                st, h, body = cs[j % len(cs)].request(
                                    "GET", f"/v2/namespaces/{ns}/documents/{seq[j]}", None, AUTH)
                                if st != 200:
                                    raise RuntimeError(f"fetch answered {st} {body[:200]!r}")
                                k = h.get("x-layer-cache")
                                mine[k] = mine.get(k, 0) + 1
                        except Exception as e:  # reported below, on the main thread
                            failures.append(e)
                        finally:
                            for c in cs:
                                c.close()
                            with lock:
                                for k, v in mine.items():
                                    seen[k] = seen.get(k, 0) + v

                    t0 = time.time()
                    ts = [threading.Thread(target=client, args=(t,))
                          for t in range(args.hr_clients)]
                    for t in ts:
                        t.start()
                    for t in ts:
                        t.join()
                    elapsed = time.time() - t0
                    if failures:
                        raise failures[0]
                    w = watch.done()
                    delta = w["lookups"]
                    # A gateway whose cache reconnected at any time before warms each namespace
                    # after its first clean miss (§4.5), which turns later misses into hits.
                    reactive = 0
                    for p in ports:
                        st, _, body = http_once(p, "GET", f"/v2/namespaces/{ns}/warm-jobs",
                                                None, AUTH)
                        reactive += len(json.loads(body)["warm_jobs"]) if st == 200 else 0
                    w["reactive_warms"] = reactive
                    w["disturbed"] = w["disturbed"] or reactive > 0
                    distinct = len(set(seq))
                    r = {"measurement": "replicas_hit_ratio", "target": target, "rep": rep,
                         "namespace": ns, "docs": args.hr_docs, "requests": len(seq),
                         "distinct_ids": distinct, "clients": args.hr_clients,
                         **w,
                         "misses_per_distinct_id": round(
                             (sum(delta.values()) - delta.get("hit", 0)) / distinct, 3),
                         "x_layer_cache": dict(sorted(seen.items())),
                         "client_rps": round(len(seq) / elapsed, 1), "loadavg": la}
                    emit(r)
                    log(f"replicas_hit_ratio rep {rep} {target}: hit ratio {r['hit_ratio']}, "
                        f"{r['misses_per_distinct_id']} misses per distinct id, {delta}" +
                        (f", DISTURBED: {reactive} reactive warms, {w['cache_reconnects']} "
                         "reconnects" if r["disturbed"] else ""))

        if "c" in only:
            warm_targets = [("redis", port_a, [gw_a.pid], [redis.pid]),
                            ("rocksdb", port_r, [gw_r.pid], [])]
            for rep in range(args.reps):
                ns = f"warm{rep}"
                t0 = time.time()
                seed(origin_port, ns, 1, args.warm_docs, args.doc_bytes, args.upsert_batch)
                log(f"seeded {ns}: {args.warm_docs} documents in {time.time() - t0:.1f} s")
                order = warm_targets if rep % 2 == 0 else list(reversed(warm_targets))
                for target, port, server, cache in order:
                    la = loadavg()
                    c = Conn(port)
                    watch = Watch([port])
                    c0, k0 = cpu_seconds(server), cpu_seconds(cache)
                    t0 = time.time()
                    st, _, body = c.request("POST", f"/v2/namespaces/{ns}/warm?page_size="
                                            f"{args.page_size}", b"", AUTH)
                    if st != 202:
                        raise RuntimeError(f"warm answered {st} {body[:200]!r}")
                    job = json.loads(body)
                    polls = 0
                    while job["status"] == "running":
                        time.sleep(args.poll_ms / 1000)
                        st, _, body = c.request("GET", f"/v2/namespaces/{ns}/warm-jobs/"
                                                f"{job['id']}", None, AUTH)
                        polls += 1
                        if st != 200:
                            raise RuntimeError(f"warm job poll answered {st} {body[:200]!r}")
                        job = json.loads(body)
                    elapsed = time.time() - t0
                    cpu, kcpu = cpu_seconds(server) - c0, cpu_seconds(cache) - k0
                    if job["status"] != "completed":
                        raise RuntimeError(f"warm job ended {job}")
                    rng = random.Random(rep)
                    for i in rng.sample(range(1, args.warm_docs + 1),
                                        min(args.warm_check, args.warm_docs)):
                        st, h, _ = c.request("GET", f"/v2/namespaces/{ns}/documents/{i}", None,
                                             AUTH)
                        if st != 200 or h.get("x-layer-cache") != "hit":
                            raise RuntimeError(f"{ns}/{i} after the warm through {target}: {st} "
                                               f"{h.get('x-layer-cache')}")
                    c.close()
                    w = watch.done()
                    server_s = parse_time(job["completed_at"]) - parse_time(job["created_at"])
                    n = job["documents_scanned"]
                    r = {"measurement": "warm", "target": target, "rep": rep, "namespace": ns,
                         "documents_scanned": n, "cache_errors": job["cache_errors"],
                         "page_size": args.page_size, "seconds": round(elapsed, 3),
                         "docs_per_s": round(n / elapsed, 1),
                         "job_seconds": round(server_s, 3),
                         "job_docs_per_s": round(n / server_s, 1) if server_s > 0 else None,
                         "server_cpu_us_per_doc": round((cpu + kcpu) / max(n, 1) * 1e6, 2),
                         "redis_cpu_us_per_doc": round(kcpu / max(n, 1) * 1e6, 2),
                         "polls": polls, "cache_reconnects": w["cache_reconnects"],
                         "disturbed": w["cache_reconnects"] > 0 or job["cache_errors"] > 0,
                         "loadavg": la}
                    emit(r)
                    log(f"warm rep {rep} {target}: {n} documents in {elapsed:.2f} s, "
                        f"{r['docs_per_s']:.0f} docs/s (job {r['job_docs_per_s']})" +
                        (", DISTURBED" if r["disturbed"] else ""))

        def kept(measurement, target):
            runs = results.get((measurement, target)) or []
            calm = [r for r in runs if not r.get("disturbed")]
            return calm or runs

        def med(measurement, target, field):
            runs = kept(measurement, target)
            return statistics.median(r[field] for r in runs) if runs else None

        def ratio(x, y):
            return round(x / y, 3) if x is not None and y else None

        def per_rep(measurement, num, den, field):
            return [round(a[field] / b[field], 3) if a[field] and b[field] else None
                    for a, b in zip(results[(measurement, num)], results[(measurement, den)])]

        summary = {"measurement": "summary", "reps": args.reps, "seconds": args.seconds,
                   "nproc": os.cpu_count(), "loadavg_start": load_start, "loadavg_end": loadavg(),
                   "loadavg_max": max(r["loadavg"] for runs in results.values() for r in runs)
                   if results else None,
                   "errors": sum(r.get("errors", 0) + r.get("non2xx", 0)
                                 for runs in results.values() for r in runs),
                   "doc_bytes": doc_size,
                   # Repetitions during which a cache reconnected or failed a lookup (or, for
                   # (b)'s hit ratio, a reactive warm ran); medians leave them out when the
                   # same measurement has undisturbed repetitions.
                   "disturbed": sorted(f"{r['measurement']}/{r['target']}/{r['rep']}"
                                       for runs in results.values() for r in runs
                                       if r.get("disturbed"))}
        if "a" in only:
            for t in ("redis", "rocksdb", "nginx_static"):
                for field in ("rps", "p50_us", "p99_us", "server_cpu_us_per_req",
                              "server_switches_per_req"):
                    summary[f"fetch_{t}_{field}"] = med("fetch_hit", t, field)
                if args.latency_seconds > 0:
                    for field in ("rps", "p50_us", "p99_us", "server_cpu_us_per_req"):
                        summary[f"paced_{t}_{field}"] = med("fetch_hit_paced", t, field)
            summary["fetch_redis_cpu_us_per_req_of_redis"] = med("fetch_hit", "redis",
                                                                 "redis_cpu_us_per_req")
            summary["fetch_redis_commands_per_req"] = results[("fetch_hit", "redis")][-1][
                "redis_commands_per_req"]
            rr, rk, ng = (med("fetch_hit", t, "rps") for t in ("redis", "rocksdb", "nginx_static"))
            summary.update({
                "fetch_ratio_redis_over_rocksdb": ratio(rr, rk),
                "fetch_ratio_redis_over_rocksdb_per_rep": per_rep("fetch_hit", "redis", "rocksdb",
                                                                  "rps"),
                "fetch_ratio_redis_over_nginx": ratio(rr, ng),
                "fetch_ratio_rocksdb_over_nginx": ratio(rk, ng),
                "fetch_ratio_rocksdb_over_nginx_per_rep": per_rep("fetch_hit", "rocksdb",
                                                                  "nginx_static", "rps")})
        if "b" in only:
            one, two = med("replicas_hit_throughput", "one", "rps"), med(
                "replicas_hit_throughput", "two", "rps")
            summary.update({
                "replicas_one_rps": one, "replicas_two_rps": two,
                "replicas_ratio_two_over_one": ratio(two, one),
                "replicas_one_p99_us": med("replicas_hit_throughput", "one", "p99_us"),
                "replicas_two_p99_us": med("replicas_hit_throughput", "two", "p99_us"),
                "replicas_throughput_hit_ratio_min": min(
                    r["hit_ratio"] or 0 for t in ("one", "two")
                    for r in results[("replicas_hit_throughput", t)])})
            for t in ("one", "two_shared", "two_separate"):
                summary[f"hit_ratio_{t}"] = med("replicas_hit_ratio", t, "hit_ratio")
                summary[f"misses_per_distinct_id_{t}"] = med("replicas_hit_ratio", t,
                                                             "misses_per_distinct_id")
        if "c" in only:
            wr, wk = med("warm", "redis", "docs_per_s"), med("warm", "rocksdb", "docs_per_s")
            summary.update({
                "warm_redis_docs_per_s": wr, "warm_rocksdb_docs_per_s": wk,
                "warm_ratio_redis_over_rocksdb": ratio(wr, wk),
                "warm_ratio_redis_over_rocksdb_per_rep": per_rep("warm", "redis", "rocksdb",
                                                                 "docs_per_s"),
                "warm_redis_server_cpu_us_per_doc": med("warm", "redis", "server_cpu_us_per_doc"),
                "warm_redis_cpu_us_per_doc_of_redis": med("warm", "redis", "redis_cpu_us_per_doc"),
                "warm_rocksdb_server_cpu_us_per_doc": med("warm", "rocksdb",
                                                          "server_cpu_us_per_doc"),
                "warm_redis_job_docs_per_s": med("warm", "redis", "job_docs_per_s"),
                "warm_rocksdb_job_docs_per_s": med("warm", "rocksdb", "job_docs_per_s")})
        summary["elapsed_s"] = round(time.time() - started, 1)
        print(json.dumps(summary), flush=True)
        log("summary: " + ", ".join(f"{k}={v}" for k, v in summary.items()
                                    if "ratio" in k and not k.endswith("per_rep")))
    finally:
        servers.close()


if __name__ == "__main__":
    main()
