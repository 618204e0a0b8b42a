#!/usr/bin/env python3
"""Layer against nginx's reverse proxy and static file server, side by side in one run.

Starts, each on a free loopback port in a temp dir (and stops them at the end):
  - `fixed_origin` (bench/fixed_origin.cc): one epoll thread that answers every request with the
    same ~1 KiB Turbopuffer-shaped query result;
  - `layer serve` in front of it (the query route: a passthrough with Layer's query handling);
  - `layer origin` and a second `layer serve` in front of that (fetch hits from Layer's cache);
  - with `--affinity`, both proxies one core per thread: `layer serve --pin-threads true` and
    nginx's `worker_cpu_affinity auto`;
  - nginx (Debian's package, `--nginx`) with `--nginx-workers` workers and two servers: a
    reverse proxy to the same fixed origin with a keep-alive upstream pool
    (`upstream { server 127.0.0.1:P; keepalive 64; }`, `proxy_http_version 1.1`,
    `proxy_set_header Connection ""`), and a static server holding the fetched document's exact
    bytes at the same path.

Then, with wrk (`--wrk`), `--reps` repetitions, the targets of each comparison interleaved in
alternating order (ABBA...) so that drift on a shared machine hits both alike:
  (a) throughput: POST /v2/namespaces/cmp/query (a small query body, a 1 KiB answer), wrk
      `--threads` threads and `--connections` connections for `--seconds` s, nginx vs Layer;
  (b) latency: the same request on `--latency-connections` connections, each waiting
      `--latency-delay-ms` ms between its requests (wrk's delay(): a fixed moderate rate),
      straight to the origin, through nginx and through Layer; added p50 = p50 - direct p50;
      at each `--latency-placement`: free, or with the origin and wrk pinned to one CPU (same)
      or to two (split), the proxies left to the scheduler;
  (c) fetch hits: GET /v2/namespaces/cmp/documents/1 from Layer's cache vs nginx serving the same
      bytes as a static file, as (a).

Prints one JSON line per measurement and a summary line (medians over repetitions, ratios) on
stdout; progress on stderr. Installs nothing (scripts/setup.sh installs nginx and wrk).

  ninja -C build -j1 layer_bin fixed_origin
  /usr/bin/python3 bench/nginx_compare.py                   # defaults: 5 reps of 5 s
  /usr/bin/python3 bench/nginx_compare.py --reps 1 --seconds 1    # smoke run
  /usr/bin/python3 bench/nginx_compare.py --only b --latency-placement free,same,split
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_proc import (Servers, context_switches, cpu_seconds, loadavg, log,  # noqa: E402
                        nginx_pids, wait_http, wait_port_file)

HERE = os.path.dirname(os.path.abspath(__file__))
NS = "cmp"
TOKEN = "bench"
QUERY_BODY = '{"rank_by":["vector","ANN",[0.1,0.2,0.3]],"top_k":10,"include_attributes":["text"]}'


def http(port, method, path, body=None, headers=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=body.encode() if body is not None else None)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, dict(res.headers), res.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


WRK_REPORT = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"errors":%d,"non2xx":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
"""


def write_wrk_scripts(tmp, delay_ms):
    post = os.path.join(tmp, "query.lua")
    with open(post, "w") as f:
        f.write('wrk.method = "POST"\n')
        f.write(f"wrk.body = {json.dumps(QUERY_BODY)}\n")
        f.write('wrk.headers["Content-Type"] = "application/json"\n')
        f.write(f'wrk.headers["Authorization"] = "Bearer {TOKEN}"\n')
        f.write(WRK_REPORT)
    paced = os.path.join(tmp, "query_paced.lua")
    with open(paced, "w") as f:
        f.write(open(post).read())
        f.write(f"delay = function() return {delay_ms} end\n")
    get = os.path.join(tmp, "get.lua")
    with open(get, "w") as f:
        f.write(f'wrk.headers["Authorization"] = "Bearer {TOKEN}"\n')
        f.write(WRK_REPORT)
    return post, paced, get


def run_wrk(args, script, port, path, threads, connections, seconds, cpu=None):
    cmd = [args.wrk, "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "-s", script,
           f"http://127.0.0.1:{port}{path}"]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu)] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = [ln for ln in out.splitlines() if ln.startswith("{")][-1]
    r = json.loads(line)
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    return r


def nginx_conf(tmp, workers, origin_port, proxy_port, static_port, www, affinity=False):
    return f"""
daemon off;
worker_processes {workers};
{"worker_cpu_affinity auto;" if affinity else ""}
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
    upstream origin {{
        server 127.0.0.1:{origin_port};
        keepalive 64;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{proxy_port};
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
    server {{
        listen 127.0.0.1:{static_port};
        root {www};
        default_type application/json;
        open_file_cache max=16 inactive=60s;
        open_file_cache_valid 60s;
    }}
}}
"""


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    build = os.path.join(HERE, "..", "build")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--layer-bin", default=os.path.join(build, "layer"))
    ap.add_argument("--origin-bin", default=os.path.join(build, "bench", "fixed_origin"))
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    ap.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=5, help="per throughput measurement")
    ap.add_argument("--latency-seconds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1, help="seconds per target, discarded")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--latency-connections", type=int, default=4)
    ap.add_argument("--latency-delay-ms", type=int, default=1)
    ap.add_argument("--latency-placement", default="free",
                    help="comma list for (b): free (the scheduler places everything), same (the "
                         "origin and wrk pinned to CPU 0), split (origin on CPU 0, wrk on CPU 1); "
                         "the proxies are never pinned")
    ap.add_argument("--affinity", action="store_true",
                    help="one core per proxy thread for both: `layer serve --pin-threads true` "
                         "and nginx's `worker_cpu_affinity auto`")
    ap.add_argument("--layer-threads", type=int, default=2)
    ap.add_argument("--nginx-workers", type=int, default=2)
    ap.add_argument("--body-bytes", type=int, default=1024, help="origin answer / document size")
    ap.add_argument("--layer-arg", action="append", default=[],
                    help="extra `layer serve` argument (repeatable), e.g. --layer-arg=--threads=1")
    ap.add_argument("--only", default="a,b,c", help="comparisons to run (a,b,c)")
    ap.add_argument("--keep-tmp", action="store_true")
    args = ap.parse_args()
    only = set(args.only.split(","))

    for path in (args.layer_bin, args.origin_bin, args.nginx, args.wrk):
        if not os.access(path, os.X_OK):
            sys.exit(f"error: {path} is missing (build layer_bin and fixed_origin; "
                     "scripts/setup.sh installs nginx and wrk)")
    servers = Servers("nginx-compare-", stop_timeout=10, keep=args.keep_tmp)
    tmp, start = servers.dir, servers.start

    try:
        started = time.time()
        origin_pf = os.path.join(tmp, "origin.port")
        origin = start("fixed_origin", [args.origin_bin, "--port-file", origin_pf,
                                        "--body-bytes", str(args.body_bytes)], kill=True)
        origin_port = wait_port_file(origin_pf, origin, "fixed_origin")

        def serve(name, upstream_port):
            pf = os.path.join(tmp, name + ".port")
            p = start(name, [args.layer_bin, "serve", "--listen", "127.0.0.1:0", "--port-file", pf,
                             "--upstream", f"http://127.0.0.1:{upstream_port}", "--data-dir",
                             os.path.join(tmp, name + "-data"), "--access-log", "false",
                             "--log-level", "warn", "--threads", str(args.layer_threads)] +
                      (["--pin-threads", "true"] if args.affinity else []) + args.layer_arg)
            port = wait_port_file(pf, p, name)
            wait_http(port, "/health", p, name)
            return p, port

        layer, layer_port = serve("layer", origin_port)

        tpuf_pf = os.path.join(tmp, "tpuf.port")
        tpuf = start("layer_origin", [args.layer_bin, "origin", "--listen", "127.0.0.1:0",
                                      "--port-file", tpuf_pf, "--data-dir",
                                      os.path.join(tmp, "tpuf-data"), "--threads", "1",
                                      "--log-level", "warn"])
        tpuf_port = wait_port_file(tpuf_pf, tpuf, "layer origin")
        layer_fetch, layer_fetch_port = serve("layer_fetch", tpuf_port)

        # The document: ~body_bytes of JSON, written through the fetch gateway (mirrored into its
        # cache), then read once to get its exact bytes and check they come from the cache.
        auth = {"Authorization": f"Bearer {TOKEN}"}
        pad = max(0, args.body_bytes - len('{"id":1,"attributes":{"text":""}}'))
        upsert = json.dumps({"upsert_rows": [{"id": 1, "text": "y" * pad}]})
        st, _, body = http(layer_fetch_port, "POST", f"/v2/namespaces/{NS}", upsert,
                           {**auth, "Content-Type": "application/json"})
        if st != 200:
            raise RuntimeError(f"seeding upsert failed: {st} {body[:200]!r}")
        doc_path = f"/v2/namespaces/{NS}/documents/1"
        for _ in range(3):
            st, headers, doc = http(layer_fetch_port, "GET", doc_path, None, auth)
            cache = {k.lower(): v for k, v in headers.items()}.get("x-layer-cache")
            if st == 200 and cache == "hit":
                break
        if st != 200 or cache != "hit":
            raise RuntimeError(f"document fetch is not a cache hit: {st} {cache} {doc[:200]!r}")
        www = os.path.join(tmp, "www")
        os.makedirs(os.path.join(www, "v2", "namespaces", NS, "documents"))
        with open(www + doc_path, "wb") as f:
            f.write(doc)
        os.chmod(www + doc_path, 0o644)
        for d in (www, os.path.join(www, "v2"), os.path.join(www, "v2", "namespaces"),
                  os.path.join(www, "v2", "namespaces", NS),
                  os.path.join(www, "v2", "namespaces", NS, "documents")):
            os.chmod(d, 0o755)

        proxy_port, static_port = free_port(), free_port()
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(nginx_conf(tmp, args.nginx_workers, origin_port, proxy_port, static_port, www,
                               args.affinity))
        nginx = start("nginx", [args.nginx, "-c", conf, "-p", tmp])
        wait_http(proxy_port, "/", nginx, "nginx")
        wait_http(static_port, "/", nginx, "nginx")

        # The three paths answer the same bytes.
        qpath = f"/v2/namespaces/{NS}/query"
        qh = {**auth, "Content-Type": "application/json"}
        direct = http(origin_port, "POST", qpath, QUERY_BODY, qh)
        via_nginx = http(proxy_port, "POST", qpath, QUERY_BODY, qh)
        via_layer = http(layer_port, "POST", qpath, QUERY_BODY, qh)
        static = http(static_port, "GET", doc_path, None, auth)
        if not (direct[0] == via_nginx[0] == via_layer[0] == 200 and
                direct[2] == via_nginx[2] == via_layer[2]):
            raise RuntimeError("the query answers differ between direct, nginx and Layer")
        if static[0] != 200 or static[2] != doc:
            raise RuntimeError("nginx's static document differs from Layer's")
        log(f"setup in {time.time() - started:.1f} s: origin :{origin_port}, layer :{layer_port}, "
            f"layer (fetch) :{layer_fetch_port}, nginx proxy :{proxy_port} static :{static_port}; "
            f"query answer {len(direct[2])} B, document {len(doc)} B")

        post, paced, get = write_wrk_scripts(tmp, args.latency_delay_ms)
        # nginx's workers are looked up at each measurement (the master may still be starting them).
        pids = {"layer": lambda: [layer.pid], "layer_fetch": lambda: [layer_fetch.pid],
                "nginx": lambda: nginx_pids(nginx.pid), "direct": lambda: [origin.pid]}
        comparisons = {
            "a": ("throughput", post, qpath, args.connections, args.seconds,
                  [("nginx", proxy_port, "nginx"), ("layer", layer_port, "layer")]),
            "b": ("latency", paced, qpath, args.latency_connections, args.latency_seconds,
                  [("direct", origin_port, "direct"), ("nginx", proxy_port, "nginx"),
                   ("layer", layer_port, "layer")]),
            "c": ("fetch_hit", get, doc_path, args.connections, args.seconds,
                  [("nginx_static", static_port, "nginx"),
                   ("layer_cache", layer_fetch_port, "layer_fetch")]),
        }
        # (b) at each placement: where the scheduler puts the origin and the load generator
        # decides whether every request crosses CPUs, and so the latency, more than either proxy
        # does (docs/benchmarks.md); pinning both makes the placement the same for each proxy.
        placements = [x for x in args.latency_placement.split(",") if x]
        plan = []  # (key, measurement name, origin CPUs, wrk CPU)
        for key in ("a", "b", "c"):
            if key not in only:
                continue
            if key != "b":
                plan.append((key, comparisons[key][0], None, None))
                continue
            for pl in placements:
                if pl not in ("free", "same", "split"):
                    sys.exit(f"error: unknown placement {pl}")
                name = "latency" if pl == "free" else f"latency_{pl}_cpu"
                plan.append((key, name, None if pl == "free" else {0},
                             None if pl == "free" else (0 if pl == "same" else 1)))
        all_cpus = os.sched_getaffinity(0)

        def pin_origin(cpus):
            for tid in os.listdir(f"/proc/{origin.pid}/task"):
                os.sched_setaffinity(int(tid), cpus or all_cpus)

        results = {}  # (comparison, target) -> list of runs
        for key, name, origin_cpus, wrk_cpu in plan:
            _, script, path, conns, secs, targets = comparisons[key]
            threads = min(args.threads, conns)
            pin_origin(origin_cpus)
            for target, port, _ in targets:
                if args.warmup > 0:
                    run_wrk(args, script, port, path, threads, conns, args.warmup, wrk_cpu)
            for rep in range(args.reps):
                order = targets if rep % 2 == 0 else list(reversed(targets))
                for target, port, who in order:
                    la = loadavg()
                    procs_of = pids[who]()
                    c0, s0 = cpu_seconds(procs_of), context_switches(procs_of)
                    r = run_wrk(args, script, port, path, threads, conns, secs, wrk_cpu)
                    cpu = cpu_seconds(procs_of) - c0
                    switches = context_switches(procs_of) - s0
                    r.update({"measurement": name, "target": target, "rep": rep,
                              "connections": conns, "wrk_threads": threads, "seconds": secs,
                              "server_cpu_us_per_req": round(cpu / max(r["requests"], 1) * 1e6, 2),
                              "server_switches_per_req": round(switches / max(r["requests"], 1),
                                                               3),
                              "loadavg": la, "rps": round(r["rps"], 1)})
                    print(json.dumps(r), flush=True)
                    results.setdefault((name, target), []).append(r)
                    log(f"{name} rep {rep} {target}: {r['rps']:.0f} req/s, p50 {r['p50_us']} us, "
                        f"errors {r['errors']}, non-2xx {r['non2xx']}")
            pin_origin(None)

        def med(name, target, field):
            runs = results.get((name, target))
            return statistics.median(r[field] for r in runs) if runs else None

        summary = {"measurement": "summary", "reps": args.reps, "loadavg_end": loadavg(),
                   "nproc": os.cpu_count(), "errors": sum(r["errors"] + r["non2xx"]
                                                          for runs in results.values()
                                                          for r in runs)}
        if "a" in only:
            n, l = med("throughput", "nginx", "rps"), med("throughput", "layer", "rps")
            summary.update({
                "throughput_nginx_rps": n, "throughput_layer_rps": l,
                "throughput_ratio_layer_over_nginx": round(l / n, 3),
                "throughput_ratio_per_rep": [round(b["rps"] / a["rps"], 3) for a, b in zip(
                    results[("throughput", "nginx")], results[("throughput", "layer")])],
                "cpu_us_per_req_nginx": med("throughput", "nginx", "server_cpu_us_per_req"),
                "cpu_us_per_req_layer": med("throughput", "layer", "server_cpu_us_per_req")})
        for key, name, _, _ in plan:
            if key != "b":
                continue
            # "latency" keys its fields as before; a pinned placement prefixes them.
            tag = "" if name == "latency" else name[len("latency_"):] + "_"
            d = med(name, "direct", "p50_us")
            n, l = med(name, "nginx", "p50_us"), med(name, "layer", "p50_us")
            added = lambda t, name=name: [b["p50_us"] - a["p50_us"] for a, b in zip(
                results[(name, "direct")], results[(name, t)])]
            summary.update({
                f"{tag}latency_p50_direct_us": d, f"{tag}latency_p50_nginx_us": n,
                f"{tag}latency_p50_layer_us": l,
                f"{tag}added_p50_nginx_us_per_rep": added("nginx"),
                f"{tag}added_p50_layer_us_per_rep": added("layer"),
                f"{tag}added_p50_nginx_us": statistics.median(added("nginx")),
                f"{tag}added_p50_layer_us": statistics.median(added("layer")),
                f"{tag}latency_rps_layer": med(name, "layer", "rps")})
        if "c" in only:
            n, l = med("fetch_hit", "nginx_static", "rps"), med("fetch_hit", "layer_cache", "rps")
            summary.update({
                "fetch_nginx_static_rps": n, "fetch_layer_hit_rps": l,
                "fetch_ratio_layer_over_nginx": round(l / n, 3),
                "fetch_ratio_per_rep": [round(b["rps"] / a["rps"], 3) for a, b in zip(
                    results[("fetch_hit", "nginx_static")], results[("fetch_hit", "layer_cache")])],
                "cpu_us_per_req_nginx_static": med("fetch_hit", "nginx_static",
                                                   "server_cpu_us_per_req"),
                "cpu_us_per_req_layer_hit": med("fetch_hit", "layer_cache",
                                                "server_cpu_us_per_req")})
        print(json.dumps(summary), flush=True)
        log("ratios (medians): " + ", ".join(
            f"{k}={v}" for k, v in summary.items()
            if k.endswith("ratio_layer_over_nginx") or "added_p50_" in k and
            not k.endswith("per_rep")))
    finally:
        servers.close()


if __name__ == "__main__":
    main()
