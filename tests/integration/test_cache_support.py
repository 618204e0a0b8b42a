"""Shared helpers for the document-cache integration tests (test_cache_*.py), plus one smoke test.

An origin (`layer origin --test-faults`) plus a gateway (`layer serve --test-faults`) in front of
it, with small HTTP helpers for writes, fetches, fault injection, /health and /metrics.
"""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.parse
from typing import Iterable, List, Optional

import pytest

from layer_testlib import (Gateway, clean_env, http_request, layer_bin, metric_sum, parse_prometheus,
                           wait_until)
from test_origin_durability import origin_process, start, wait_for_binary  # noqa: F401

TOKEN = "x"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
STAMP = "_hevlayer_upserted_at"


# ---------------------------------------------------------------------------------------------
# HTTP helpers (target = a Gateway/origin process or a port)
# ---------------------------------------------------------------------------------------------
def req(target, method: str, path: str, body=None, headers=None, conn=None, timeout: float = 15.0):
    data = None
    if body is not None:
        data = body if isinstance(body, (bytes, bytearray)) else json.dumps(body).encode()
    return http_request(target, method, path, data, headers=headers, token=TOKEN, conn=conn,
                        timeout=timeout)


def write(target, ns: str, body, conn=None, headers=None):
    return req(target, "POST", f"/v2/namespaces/{ns}", body, headers=headers, conn=conn)


def query(target, ns: str, body, conn=None):
    return req(target, "POST", f"/v2/namespaces/{ns}/query", body, conn=conn)


def doc_path(ns: str, doc_id) -> str:
    return f"/v2/namespaces/{ns}/documents/{urllib.parse.quote(str(doc_id), safe='')}"


def fetch(target, ns: str, doc_id, include: Optional[Iterable[str]] = None, conn=None,
          timeout: float = 15.0):
    path = doc_path(ns, doc_id)
    if include is not None:
        path += "?include_attributes=" + urllib.parse.quote(",".join(include), safe=",")
    return req(target, "GET", path, conn=conn, timeout=timeout)


def fetch_batch(target, ns: str, ids, include=None, conn=None, timeout: float = 15.0):
    body = {"ids": list(ids)}
    if include is not None:
        body["include_attributes"] = list(include)
    return req(target, "POST", f"/v2/namespaces/{ns}/documents", body, conn=conn, timeout=timeout)


def delete_namespace(target, ns: str):
    return req(target, "DELETE", f"/v2/namespaces/{ns}")


def upstream_row(origin, ns: str, doc_id):
    """The row as the origin has it (reserved attributes included), or None."""
    r = query(origin, ns, {"rank_by": ["id", "asc"], "top_k": 1, "filters": ["id", "Eq", doc_id],
                           "include_attributes": True})
    if r.status == 404:
        return None
    assert r.status == 200, r
    rows = r.json()["rows"]
    return rows[0] if rows else None


def health_cache(gw) -> dict:
    r = http_request(gw, "GET", "/health")
    assert r.status == 200, r
    return r.json()["cache"]


def metrics(gw):
    r = http_request(gw, "GET", "/metrics")
    assert r.status == 200, r
    return parse_prometheus(r.body.decode())


def metric(gw, name: str, **labels) -> float:
    return metric_sum(metrics(gw), name, **labels)


def set_cache_faults(gw, **faults) -> None:
    r = http_request(gw, "PUT", "/_test/cache-faults", json.dumps(faults).encode(),
                     headers={"Content-Type": "application/json"})
    assert r.status == 200, r


def clear_cache_faults(gw) -> None:
    r = http_request(gw, "DELETE", "/_test/cache-faults")
    assert r.status == 200, r


def cache_calls(gw) -> dict:
    """Per cache op (src/cache/cache_op.h names), the calls that reached the gateway's fault
    decorator so far, counted on arrival (before an injected latency): an op has begun."""
    r = http_request(gw, "GET", "/_test/cache-faults")
    assert r.status == 200, r
    return r.json()["calls"]


def set_origin_faults(origin, faults: dict) -> None:
    r = http_request(origin, "PUT", "/_test/faults", json.dumps(faults).encode())
    assert r.status == 200, r


def clear_origin_faults(origin) -> None:
    r = http_request(origin, "DELETE", "/_test/faults")
    assert r.status in (200, 204), r


def origin_faults(origin) -> dict:
    """The origin's fault rules; a rule's `times` is the budget left (docs/origin.md)."""
    r = http_request(origin, "GET", "/_test/faults")
    assert r.status == 200, r
    return r.json()


QUERY_BUDGET = 1_000_000  # a `times` budget no test spends: what is left counts the queries


def origin_access_lines(origin, route: str) -> int:
    """How many requests of a route family the origin has answered (its --access-log lines)."""
    return sum(1 for line in origin.output().splitlines()
               if "access " in line and f" route={route} " in line)


def slow_counted_origin_queries(origin, latency_ms: int) -> int:
    """Delays every query by `latency_ms` under a rule whose budget counts them as they arrive;
    returns the queries answered so far. The origin must run with --access-log true."""
    answered0 = origin_access_lines(origin, "query")
    set_origin_faults(origin, {"query": {"latency_ms": latency_ms, "times": QUERY_BUDGET}})
    return answered0


def wait_origin_queries_answered(origin, answered0: int, timeout: float = 30.0) -> None:
    """Waits until the origin has answered every query that arrived since
    slow_counted_origin_queries (which returned `answered0`): none is in flight any more."""
    def settled():
        received = QUERY_BUDGET - origin_faults(origin)["query"]["times"]
        return received > 0 and origin_access_lines(origin, "query") - answered0 == received
    wait_until(settled, timeout=timeout, interval=0.05, what="the origin to answer every query")


def wait_cache_healthy(gw, timeout: float = 8.0) -> dict:
    """Waits until the breaker closed again and every pending invalidation was applied."""
    deadline = time.monotonic() + timeout
    while True:
        c = health_cache(gw)
        if c.get("connected") and c.get("breaker") == "closed" and c.get("pending_invalidations") == 0:
            return c
        if time.monotonic() > deadline:
            raise AssertionError(f"cache did not recover within {timeout}s: {c}")
        time.sleep(0.1)


def doc(resp) -> dict:
    """The attributes of a 200 single-fetch answer."""
    assert resp.status == 200, resp
    return resp.json()["attributes"]


def strip_reserved(attrs: dict) -> dict:
    return {k: v for k, v in attrs.items() if not k.startswith("_hevlayer_")}


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------
def gateway_process(workdir: str, upstream_url: str, data_dir: str, *extra: str,
                    name: str = "gw") -> Gateway:
    g = Gateway([], clean_env(), workdir, name)
    g.argv = [layer_bin(), "serve", "--listen", "127.0.0.1:0", "--port-file", g.port_file,
              "--upstream", upstream_url, "--data-dir", data_dir, "--test-faults",
              "--access-log", "false", *extra]
    return g


class Stack:
    """One origin and one gateway; the gateway can be restarted on the same data dir."""

    def __init__(self, tmp_path, gw_args=(), origin_args=()):
        self.tmp = str(tmp_path)
        os.makedirs(self.tmp, exist_ok=True)
        self.procs: List[Gateway] = []
        self.origin = start(self._track(origin_process(self.tmp, os.path.join(self.tmp, "origin-data"),
                                                       "--test-faults", *origin_args,
                                                       name="origin")))
        self.gw_data = os.path.join(self.tmp, "gw-data")
        self.gw_args = list(gw_args)
        self.gw: Gateway = None
        self.start_gateway()

    def _track(self, p: Gateway) -> Gateway:
        self.procs.append(p)
        return p

    def start_gateway(self, *extra: str) -> Gateway:
        n = sum(1 for p in self.procs if p is not self.origin)
        g = gateway_process(self.tmp, self.origin.url, self.gw_data, *self.gw_args, *extra,
                            name=f"gw{n}")
        self.gw = start(self._track(g))
        return self.gw

    def close(self) -> None:
        for p in reversed(self.procs):
            p.stop()


@pytest.fixture
def stack_factory(tmp_path):
    stacks = []

    def _make(gw_args=(), origin_args=()) -> Stack:
        s = Stack(tmp_path / f"s{len(stacks)}", gw_args, origin_args)
        stacks.append(s)
        return s

    yield _make
    for s in stacks:
        s.close()


@pytest.fixture
def stack(stack_factory) -> Stack:
    return stack_factory()


def kill9_and_reap(proc: Gateway) -> None:
    """SIGKILL (Gateway.stop sends SIGKILL) and reap."""
    proc.stop()
    assert proc.proc.returncode is not None


def keepalive(target, timeout: float = 15.0) -> http.client.HTTPConnection:
    port = target.port if isinstance(target, Gateway) else target
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)


# ---------------------------------------------------------------------------------------------
# (CTest runs every test_*.py file on its own, so this module carries one smoke test.)
# ---------------------------------------------------------------------------------------------
def test_stack_has_embedded_rocksdb_cache(stack):
    c = health_cache(stack.gw)
    assert c["backend"] == "rocksdb" and c["connected"] is True, c
    assert c["breaker"] == "closed" and c["pending_invalidations"] == 0, c
    assert isinstance(c["generation"], int) and c["generation"] >= 1, c
