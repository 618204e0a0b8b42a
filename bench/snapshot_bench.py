#!/usr/bin/python3
"""Snapshot benchmark: how fast the automatic writer builds a snapshot compared with paging the
same origin directly, and the object store's put/get/list latency against s3rver, in one run with
the real binaries (`layer origin`, `layer serve`, tests/s3/s3_front.py in front of s3rver).

  seed   --docs documents into namespace "snapbench" straight at the origin: three facet fields
         (color: 12 strings, size: integers 0..49, tags: 1-3 of 30 strings) and a filler text of
         --filler bytes that the projection leaves out.
  raw    pages "snapbench" straight from the origin, one keep-alive connection, the query the
         writer sends: {"rank_by":["id","asc"],"top_k":1000,"include_attributes":[the three
         fields],"consistency":{"level":"strong"},"filters":["id","Gt",last]}, reading only the
         last id of each page (so the raw rate is a ceiling for any client) -> rows/s. Run
         before the writer, beside every writer round and after it; the median.
  writer PUT /v2/namespaces/snapbench/snapshot-policy {"facetFields":[the three],"interval":"1s"}
         and, for --rounds rounds, one upserted document that changes a facet; each snapshot's
         time is the writer's own log line ("snapshot of … N rows, 3 fields read and counted in
         S s, stored in T s"): rows/s = N / S (T, the object-store list, put and the cache mirror,
         is reported beside it).
         ratio = median writer / median raw (target >= 0.8).
  store  a second gateway with --object-store s3://layer-bench/b and --s3-endpoint at the front:
         --store-ops times each of PUT snapshot-policy (one object PUT), GET snapshot-policy (one
         GET) and GET history (one LIST); the latency is the backend's own
         layer_object_store_request_seconds{op} (mean from _sum/_count, p50/p99 from the
         buckets), and the client's p50/p99 of the route for scale.

Output: one JSON line per measurement and a summary line on stdout; progress on stderr.
A benchmark, not a test: it asserts nothing.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FRONT = os.path.join(ROOT, "tests", "s3", "s3_front.py")
FIELDS = ["color", "size", "tags"]
NS = "snapbench"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def emit(obj):
    print(json.dumps(obj), flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


class Proc:
    def __init__(self, argv, workdir, name, env=None):
        self.port_file = os.path.join(workdir, f"{name}.port")
        self.err_path = os.path.join(workdir, f"{name}.stderr")
        self.out = open(os.path.join(workdir, f"{name}.stdout"), "wb")
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(argv + ["--port-file", self.port_file], cwd=workdir,
                                     stdout=self.out, stderr=self.err, stdin=subprocess.DEVNULL,
                                     env=env)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"{name} exited: {open(self.err_path).read()[-2000:]}")
            try:
                self.port = int(open(self.port_file).read().strip())
                break
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} did not start")
            time.sleep(0.05)

    def log_text(self):
        self.out.flush()
        with open(self.out.name, "rb") as f:
            a = f.read()
        with open(self.err_path, "rb") as f:
            b = f.read()
        return (a + b).decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def call(conn, method, path, body=None):
    data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
    headers = {"Authorization": "Bearer bench"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    r = conn.getresponse()
    return r.status, r.read()


def seed(port, docs, filler):
    rnd = random.Random(7)
    colors = [f"c{i:02d}" for i in range(12)]
    tags = [f"t{i:02d}" for i in range(30)]
    text = "x" * filler
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for start in range(1, docs + 1, 1000):
        rows = []
        for i in range(start, min(start + 1000, docs + 1)):
            rows.append({"id": i, "color": rnd.choice(colors), "size": rnd.randrange(50),
                         "tags": rnd.sample(tags, rnd.randint(1, 3)), "filler": text})
        st, body = call(conn, "POST", f"/v2/namespaces/{NS}", {"upsert_rows": rows})
        if st != 200:
            raise SystemExit(f"seed failed: {st} {body[:200]!r}")
    conn.close()


LAST_ID = re.compile(rb'"id":(\d+)')


def raw_pass(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    rows, last = 0, None
    t0 = time.perf_counter()
    while True:
        q = {"rank_by": ["id", "asc"], "top_k": 1000, "include_attributes": FIELDS,
             "consistency": {"level": "strong"}}
        if last is not None:
            q["filters"] = ["id", "Gt", last]
        st, body = call(conn, "POST", f"/v2/namespaces/{NS}/query", q)
        if st != 200:
            raise SystemExit(f"raw page failed: {st} {body[:200]!r}")
        ids = LAST_ID.findall(body[-400:]) if body.endswith(b"}") else []
        n = body.count(b'"id":')
        rows += n
        if n < 1000:
            break
        last = int(ids[-1])
    dt = time.perf_counter() - t0
    conn.close()
    return rows, dt


SNAP_LINE = re.compile(r"snapshot of 'snapbench' at watermark (\d+): (\d+) rows, 3 fields read "
                       r"and counted in ([0-9.]+) s, stored in ([0-9.]+) s \((stored|deduped)\)")


def parse_metrics(text):
    """{(name, frozenset(labels)): value} of a Prometheus text page."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([^ ]+)", line)
        if not m:
            continue
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def op_latency(metrics, op):
    name = "layer_object_store_request_seconds"
    count = metrics.get((name + "_count", frozenset({("op", op)})), 0)
    total = metrics.get((name + "_sum", frozenset({("op", op)})), 0)
    buckets = sorted((float(dict(k[1])["le"]), v) for k, v in metrics.items()
                     if k[0] == name + "_bucket" and dict(k[1]).get("op") == op
                     and dict(k[1])["le"] != "+Inf")

    def q(p):
        for le, v in buckets:
            if count and v >= p * count:
                return le
        return None
    return count, (total / count if count else None), q(0.5), q(0.99)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layer-bin", default=os.path.join(ROOT, "build", "layer"))
    ap.add_argument("--docs", type=int, default=100000)
    ap.add_argument("--filler", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--store-ops", type=int, default=200)
    ap.add_argument("--skip-store", action="store_true")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="snapbench-")
    procs = []
    try:
        origin = Proc([args.layer_bin, "origin", "--listen", "127.0.0.1:0", "--data-dir",
                       os.path.join(tmp, "origin")], tmp, "origin")
        procs.append(origin)
        log(f"seeding {args.docs} documents")
        t0 = time.perf_counter()
        seed(origin.port, args.docs, args.filler)
        log(f"seeded in {time.perf_counter() - t0:.1f} s")
        gw = Proc([args.layer_bin, "serve", "--listen", "127.0.0.1:0", "--upstream",
                   f"http://127.0.0.1:{origin.port}", "--data-dir", os.path.join(tmp, "gw"),
                   "--access-log", "false", "--log-level", "info",
                   "--watch-stable-interval", "200ms"], tmp, "gw")
        procs.append(gw)

        raws = []
        rows, dt = raw_pass(origin.port)
        raws.append(rows / dt)
        emit({"measure": "raw_paging", "pass": "before", "rows": rows, "seconds": round(dt, 3),
              "rows_per_s": round(rows / dt), "loadavg": loadavg()})

        conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=120)
        st, body = call(conn, "PUT", f"/v2/namespaces/{NS}/snapshot-policy",
                        {"facetFields": FIELDS, "interval": "1s"})
        if st != 200:
            raise SystemExit(f"policy PUT failed: {st} {body!r}")
        writer = []
        oconn = http.client.HTTPConnection("127.0.0.1", origin.port, timeout=120)
        for rnd in range(args.rounds):
            deadline = time.monotonic() + 600
            while len(SNAP_LINE.findall(gw.log_text())) <= rnd:
                if time.monotonic() > deadline:
                    raise SystemExit("no snapshot within 600 s")
                time.sleep(0.05)
            # A raw pass beside every writer round, so that drift on a shared machine hits both.
            rrows, rdt = raw_pass(origin.port)
            raws.append(rrows / rdt)
            emit({"measure": "raw_paging", "pass": f"round{rnd}", "rows": rrows,
                  "seconds": round(rdt, 3), "rows_per_s": round(rrows / rdt),
                  "loadavg": loadavg()})
            wm, n, secs, store_secs, how = SNAP_LINE.findall(gw.log_text())[rnd]
            n, secs = int(n), float(secs)
            writer.append(n / secs)
            emit({"measure": "writer", "round": rnd, "rows": n, "fields": 3,
                  "read_and_count_seconds": secs, "rows_per_s": round(n / secs),
                  "store_seconds": float(store_secs), "outcome": how, "loadavg": loadavg()})
            # A change to a facet: the next watermark makes a new snapshot (after the 1 s floor).
            time.sleep(1.0)
            call(oconn, "POST", f"/v2/namespaces/{NS}",
                 {"upsert_rows": [{"id": 1, "color": f"round{rnd}", "size": 1, "tags": ["t00"]}]})
        rows, dt = raw_pass(origin.port)
        raws.append(rows / dt)
        emit({"measure": "raw_paging", "pass": "after", "rows": rows, "seconds": round(dt, 3),
              "rows_per_s": round(rows / dt), "loadavg": loadavg()})
        raw = statistics.median(raws)
        wr = statistics.median(writer)
        summary = {"summary": "snapshot_writer", "docs": args.docs, "rounds": args.rounds,
                   "raw_rows_per_s_median": round(raw), "writer_rows_per_s_median": round(wr),
                   "ratio": round(wr / raw, 3), "ratio_target_met": wr / raw >= 0.8}

        if not args.skip_store:
            env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDBENCH", AWS_SECRET_ACCESS_KEY="bench")
            front = subprocess.Popen(["/usr/bin/python3", FRONT, "--dir", os.path.join(tmp, "s3"),
                                      "--bucket", "layer-bench", "--credentials",
                                      "AKIDBENCH:bench"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            info = json.loads(front.stdout.readline() or b'{"error":"front exited"}')
            if "error" in info:
                raise SystemExit(f"s3 front: {info['error']}")
            try:
                s3gw = Proc([args.layer_bin, "serve", "--listen", "127.0.0.1:0", "--upstream",
                             f"http://127.0.0.1:{origin.port}", "--data-dir",
                             os.path.join(tmp, "gw-s3"), "--access-log", "false",
                             "--object-store", "s3://layer-bench/b", "--s3-endpoint",
                             f"http://127.0.0.1:{info['port']}"], tmp, "gw-s3", env=env)
                procs.append(s3gw)
                c = http.client.HTTPConnection("127.0.0.1", s3gw.port, timeout=60)
                client = {"put": [], "get": [], "list": []}
                routes = {"put": ("PUT", f"/v2/namespaces/{NS}/snapshot-policy",
                                  {"facetFields": ["color"]}),
                          "get": ("GET", f"/v2/namespaces/{NS}/snapshot-policy", None),
                          "list": ("GET", f"/v2/namespaces/{NS}/history", None)}
                for _ in range(args.store_ops):
                    for op, (m, p, b) in routes.items():
                        t = time.perf_counter()
                        st, body = call(c, m, p, b)
                        client[op].append(time.perf_counter() - t)
                        if st != 200:
                            raise SystemExit(f"{op} failed: {st} {body[:200]!r}")
                _, mtext = call(c, "GET", "/metrics")
                metrics = parse_metrics(mtext.decode())
                for op in ("put", "get", "list"):
                    count, mean, p50, p99 = op_latency(metrics, op)
                    emit({"measure": "object_store", "op": op, "store": "s3rver behind s3_front",
                          "requests": int(count),
                          "mean_ms": round(mean * 1000, 2) if mean is not None else None,
                          "p50_ms_bucket_le": p50 * 1000 if p50 is not None else None,
                          "p99_ms_bucket_le": p99 * 1000 if p99 is not None else None,
                          "route_p50_ms": round(pct(client[op], 0.5) * 1000, 2),
                          "route_p99_ms": round(pct(client[op], 0.99) * 1000, 2),
                          "loadavg": loadavg()})
            finally:
                front.stdin.close()
                try:
                    front.wait(10)
                except subprocess.TimeoutExpired:
                    front.kill()
        emit(summary)
    finally:
        for p in reversed(procs):
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
