#!/usr/bin/env python3
"""Abuse figures (docs/benchmarks.md): a gateway in front of the strict origin, a well-behaved
client fetching one cached document throughout, and in turn: a baseline, thousands of idle
connections (as many as the open-file limit allows under the cap), connections past
--max-connections, and slowloris heads and bodies. Prints one JSON line per phase: connections
held, the gateway's VmRSS, and the well-behaved client's latency during the phase.

    LAYER_BIN=build/layer /usr/bin/python3 bench/abuse_bench.py [--idle N] [--slow N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from abuse_support import (DOC_ID, NS, GoodClient, Trickler, close_all,  # noqa: E402
                           connection_cap, count_closed, open_idle, raise_fd_limit, vm_rss)
from layer_testlib import metric_sum, parse_prometheus, http_request, wait_until  # noqa: E402
from test_cache_support import Stack, TOKEN, fetch, write  # noqa: E402

PHASE_REQUESTS = 200  # the well-behaved client's answers measured per phase


def metric(gw, name, **labels):
    r = http_request(gw, "GET", "/metrics")
    return metric_sum(parse_prometheus(r.body.decode()), name, **labels)


def phase(name, gw, client, **extra):
    since = client.served()
    client.wait_more(PHASE_REQUESTS, timeout=300)
    line = {"phase": name, "connections": int(metric(gw, "layer_http_connections")),
            "rss_mib": round(vm_rss(gw.proc.pid) / (1 << 20), 1), **extra,
            "good_client": client.stats(since)}
    print(json.dumps(line), flush=True)
    return line


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=int, default=0, help="idle connections (default: the most "
                    "the open-file limit and the gateway's cap allow)")
    ap.add_argument("--cap", type=int, default=2000, help="--max-connections of the cap phase")
    ap.add_argument("--slow", type=int, default=500, help="slowloris heads, and as many bodies")
    args = ap.parse_args()
    fd_limit = raise_fd_limit()
    tmp = tempfile.mkdtemp(prefix="layer-abuse-bench-")

    st = Stack(os.path.join(tmp, "a"), gw_args=("--header-timeout-ms", "5000",
                                                 "--body-timeout-ms", "5000"),
               origin_args=("--api-key", TOKEN))
    try:
        gw = st.gw
        assert write(gw, NS, {"upsert_rows": [{"id": DOC_ID, "v": "x" * 64}]}).status == 200
        assert fetch(gw, NS, DOC_ID).status == 200
        client = GoodClient(gw.port, TOKEN)
        client.start()
        base = phase("baseline", gw, client)

        n = args.idle or max(100, min(connection_cap(10000, fd_limit) - 100, fd_limit - 500))
        t0 = time.monotonic()
        socks = open_idle(gw.port, n)
        wait_until(lambda: metric(gw, "layer_http_connections") >= n, timeout=300, interval=0.2)
        held = phase("idle", gw, client, idle_opened=n,
                     open_seconds=round(time.monotonic() - t0, 2))
        per_conn = (held["rss_mib"] - base["rss_mib"]) * (1 << 20) / n
        print(json.dumps({"phase": "idle_cost", "bytes_per_idle_connection": round(per_conn)}),
              flush=True)
        close_all(socks)
        wait_until(lambda: metric(gw, "layer_http_connections") < 50, timeout=300, interval=0.2)

        heads = Trickler(gw.port, args.slow, b"GET /health HTTP/1.1\r\n", b"X-Slow: abc\r\n",
                         bound=300)
        bodies = Trickler(gw.port, args.slow,
                          (f"POST /v2/namespaces/{NS}/query HTTP/1.1\r\nHost: x\r\n"
                           f"Authorization: Bearer {TOKEN}\r\nContent-Length: 100000\r\n\r\n"
                           ).encode(), b" ", bound=300)
        heads.start()
        bodies.start()
        heads.started_sending.wait(300)
        bodies.started_sending.wait(300)
        phase("slowloris", gw, client, slow_heads=args.slow, slow_bodies=args.slow)
        heads.join(300)
        bodies.join(300)
        outcomes = {}
        for o in list(heads.outcomes.values()) + list(bodies.outcomes.values()):
            outcomes[str(o)] = outcomes.get(str(o), 0) + 1
        print(json.dumps({"phase": "slowloris_outcomes", **outcomes}), flush=True)
        client.stop()
        print(json.dumps({"phase": "done", "good_client_errors": len(client.errors)}), flush=True)
    finally:
        st.close()

    # Past the cap: a second gateway with --max-connections, twice as many idle connections.
    st = Stack(os.path.join(tmp, "b"), gw_args=("--max-connections", str(args.cap)),
               origin_args=("--api-key", TOKEN))
    try:
        gw = st.gw
        assert write(gw, NS, {"upsert_rows": [{"id": DOC_ID, "v": "x" * 64}]}).status == 200
        client = GoodClient(gw.port, TOKEN)
        client.start()
        client.wait_more(20)
        socks = open_idle(gw.port, 2 * args.cap)
        wait_until(lambda: metric(gw, "layer_http_connections_shed_total", reason="idle_closed")
                   >= args.cap - 10, timeout=300, interval=0.2)
        phase("over_cap", gw, client, cap=args.cap, opened=2 * args.cap,
              closed_by_gateway=count_closed(socks),
              shed=int(metric(gw, "layer_http_connections_shed_total")))
        close_all(socks)
        client.stop()
        print(json.dumps({"phase": "done", "good_client_errors": len(client.errors),
                          "first_errors": client.errors[:3]}), flush=True)
    finally:
        st.close()


if __name__ == "__main__":
    main()
