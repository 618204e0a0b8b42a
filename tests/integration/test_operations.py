"""/health, /ready, /metrics, x-request-id, access log."""

import http.client
import re
import uuid

import pytest

from layer_testlib import http_request, metric_sum, parse_prometheus, wait_until
from recording_upstream import Response

TOKEN = "caller-token-ops"
QUERY_BODY = b'{"rank_by":["id","asc"],"top_k":1}'


def req(gw, method, path, **kw):
    kw.setdefault("token", TOKEN)
    return http_request(gw, method, path, **kw)


@pytest.fixture
def gw(upstream, start_gateway):
    return start_gateway(upstream)


@pytest.mark.parametrize("path", ["/health", "/ready"])
def test_health_and_ready(gw, path):
    r = http_request(gw, "GET", path)
    assert r.status == 200, r
    assert r.content_type.startswith("application/json")
    j = r.json()
    assert j["status"] == "ok"
    assert isinstance(j["version"], str) and j["version"]
    assert re.match(r"^\d+\.\d+\.\d+", j["version"]), j["version"]


def _metrics(gw):
    r = http_request(gw, "GET", "/metrics")
    assert r.status == 200, r
    assert r.content_type.startswith("text/plain"), r.content_type
    return r.body.decode()


def test_metrics_exposition(gw, upstream):
    for _ in range(3):
        assert req(gw, "POST", "/v2/namespaces/metricsns123/query", body=QUERY_BODY).status == 200
    upstream.set_rule(Response(status=404, body=b'{"status":"error","error":"nope"}'))
    assert req(gw, "GET", "/v2/namespaces/metricsns123/metadata").status == 404
    text = _metrics(gw)
    for name in ("layer_http_requests_total", "layer_http_request_duration_seconds",
                 "layer_upstream_request_duration_seconds", "layer_http_inflight_requests",
                 "layer_upstream_connections_opened_total",
                 "layer_upstream_connections_reused_total"):
        assert re.search(rf"^# TYPE {name} ", text, re.M), f"no TYPE line for {name}"
    assert re.search(r"^# TYPE layer_http_request_duration_seconds histogram", text, re.M)
    assert re.search(r"^# TYPE layer_http_requests_total counter", text, re.M)
    samples = parse_prometheus(text)
    names = {n for n, _, _ in samples}
    for suffix in ("_bucket", "_sum", "_count"):
        assert "layer_http_request_duration_seconds" + suffix in names
    assert any(n.startswith("layer_upstream_request_duration_seconds") for n in names)
    assert "layer_http_inflight_requests" in names
    req_samples = [(lab, v) for n, lab, v in samples if n == "layer_http_requests_total"]
    assert req_samples
    for lab, _ in req_samples:
        assert "route" in lab and "status" in lab, lab
    assert sum(v for lab, v in req_samples if lab["status"] == "200") >= 3
    assert sum(v for lab, v in req_samples if lab["status"] == "404") >= 1
    # route labels are templates, not raw paths (bounded cardinality)
    assert "metricsns123" not in text
    # buckets are cumulative and end with +Inf
    assert 'le="+Inf"' in text


def test_metrics_connection_counters_move(gw, upstream):
    before = parse_prometheus(_metrics(gw))
    b = (metric_sum(before, "layer_upstream_connections_opened_total")
         + metric_sum(before, "layer_upstream_connections_reused_total"))
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    try:
        for _ in range(10):
            assert req(gw, "GET", "/v1/namespaces", conn=conn).status == 200
    finally:
        conn.close()
    after = parse_prometheus(_metrics(gw))
    opened = metric_sum(after, "layer_upstream_connections_opened_total")
    reused = metric_sum(after, "layer_upstream_connections_reused_total")
    assert opened + reused - b >= 10, (opened, reused, b)
    assert opened >= 1
    assert reused >= 9 - 3  # at most a handful of fresh connections for 10 sequential requests
    assert opened <= len(upstream.distinct_connections()) + 1


def test_metrics_counts_requests(gw, upstream):
    def count200():
        s = parse_prometheus(_metrics(gw))
        return metric_sum(s, "layer_http_requests_total", status="200")
    c0 = count200()
    for _ in range(5):
        assert req(gw, "GET", "/v1/namespaces").status == 200
    c1 = wait_until(lambda: count200() >= c0 + 5 and count200(), timeout=3, what="counter")
    assert c1 >= c0 + 5


def test_inflight_gauge_sees_slow_request(gw, upstream):
    import threading
    base = metric_sum(parse_prometheus(_metrics(gw)), "layer_http_inflight_requests")
    release = threading.Event()

    def rule(rq):
        if "slow" in rq.path:
            release.wait(30)  # in flight until the test has looked
        return Response()
    upstream.set_rule(rule)
    t = threading.Thread(target=lambda: req(gw, "GET", "/v2/namespaces/slow/metadata"), daemon=True)
    t.start()
    upstream.wait_for_requests(1)
    during = metric_sum(parse_prometheus(_metrics(gw)), "layer_http_inflight_requests")
    release.set()
    assert during >= base + 1, (base, during)
    t.join(10)
    assert not t.is_alive()
    wait_until(lambda: metric_sum(parse_prometheus(_metrics(gw)),
                                  "layer_http_inflight_requests") == base,
               timeout=3, what="inflight gauge back to its idle value")


def test_request_id_echoed(gw, upstream):
    rid = "test-req-" + uuid.uuid4().hex
    r = req(gw, "GET", "/v1/namespaces", headers={"x-request-id": rid})
    assert r.status == 200
    assert r.header("x-request-id") == rid


def test_request_id_echoed_on_gateway_errors(gw, upstream):
    rid = "rid-" + uuid.uuid4().hex
    r = http_request(gw, "GET", "/v1/namespaces", headers={"X-Request-Id": rid})  # 401
    assert r.status == 401
    assert r.header("x-request-id") == rid
    r = req(gw, "GET", "/nope", headers={"X-Request-Id": rid})
    assert r.status == 404
    assert r.header("x-request-id") == rid


def test_request_id_minted(gw, upstream):
    ids = set()
    for _ in range(3):
        r = req(gw, "GET", "/v1/namespaces")
        rid = r.header("x-request-id")
        assert rid and rid.strip(), r.headers
        ids.add(rid)
    assert len(ids) == 3, "minted request ids should be unique"


def test_access_log_one_line_per_request(upstream, start_gateway):
    gw = start_gateway(upstream, "--access-log", "true")
    upstream.set_rule(lambda rq: Response(status=404 if rq.path.endswith("/query") else 200))
    for _ in range(3):
        assert req(gw, "GET", "/v2/namespaces/acclogns/metadata").status == 200
    assert req(gw, "POST", "/v2/namespaces/acclogns/query", body=QUERY_BODY).status == 404
    assert req(gw, "DELETE", "/v2/namespaces/acclogns").status == 200

    def lines(pred):
        return [ln for ln in gw.output().splitlines() if pred(ln)]

    def metadata_lines():
        return lines(lambda ln: "GET" in ln and "metadata" in ln and "200" in ln)
    wait_until(lambda: len(metadata_lines()) >= 3 and
               lines(lambda ln: "DELETE" in ln and "200" in ln), timeout=5, what="access log lines")
    out = gw.output()
    assert len(metadata_lines()) == 3, out[-3000:]
    q = lines(lambda ln: "POST" in ln and "query" in ln and "404" in ln)
    assert len(q) == 1, out[-3000:]


def test_access_log_disabled(upstream, start_gateway):
    gw = start_gateway(upstream, "--access-log", "false")
    for _ in range(3):
        assert req(gw, "GET", "/v2/namespaces/quietns/metadata").status == 200
    # make sure anything that would be logged had time to be: poll /health a few times
    for _ in range(3):
        http_request(gw, "GET", "/health")
    assert not [ln for ln in gw.output().splitlines() if "metadata" in ln and "GET" in ln]
