"""Passthrough of the Turbopuffer routes: method/path/query/body/headers forwarded unchanged,
status/headers/body relayed verbatim, Location rewriting, v1 query rewrite, namespace-name
validation, path traversal, unknown paths, upstream keep-alive."""

import gzip
import http.client
import json

import pytest

from layer_testlib import (RawConn, build_request, http_request, metric_sum, parse_prometheus,
                           raw_request)
from recording_upstream import Response

TOKEN = "caller-token-pass-1"  # derive mode without an upstream key: forwarded upstream
NS = "My_ns-1.2"


def req(gw, method, path, **kw):
    kw.setdefault("token", TOKEN)
    return http_request(gw, method, path, **kw)


@pytest.fixture
def gw(upstream, start_gateway):
    return start_gateway(upstream)


# Writes with row operations are stamped (tests/integration/test_write_path.py); a write without
# them (schema only) is forwarded byte for byte.
WRITE_BODY = b'{"schema":{"name":{"type":"string","full_text_search":true}},"distance_metric":"cosine_distance"}'
QUERY_BODY = b'{"rank_by":["vector","ANN",[0.1,0.2]],"top_k":10,"include_attributes":["name"]}'

# (method, client target, body, expected upstream target)
ROUTES = [
    ("POST", f"/v2/namespaces/{NS}", WRITE_BODY, None),
    ("POST", f"/v2/namespaces/{NS}?stainless_overload=branchFrom",
     b'{"branch_from_namespace":{"source_namespace":"src"}}', None),
    ("POST", f"/v2/namespaces/{NS}?stainless_overload=copyFrom",
     b'{"copy_from_namespace":{"source_namespace":"src"}}', None),
    ("POST", f"/v2/namespaces/{NS}/query", QUERY_BODY, None),
    ("POST", f"/v2/namespaces/{NS}/query?stainless_overload=multiQuery",
     b'{"queries":[{"rank_by":["id","asc"],"top_k":1}]}', None),
    ("POST", f"/v2/namespaces/{NS}/explain_query", QUERY_BODY, None),
    ("DELETE", f"/v2/namespaces/{NS}", None, None),
    ("GET", f"/v2/namespaces/{NS}/metadata", None, None),
    ("GET", f"/v1/namespaces/{NS}/metadata", None, None),
    ("PATCH", f"/v1/namespaces/{NS}/metadata", b'{"pinning":{"replicas":2}}', None),
    ("GET", f"/v1/namespaces/{NS}/schema", None, None),
    ("POST", f"/v1/namespaces/{NS}/schema", b'{"name":{"type":"string","filterable":true}}', None),
    ("GET", "/v1/namespaces", None, None),
    ("GET", "/v1/namespaces?cursor=abc%3D%3D&prefix=pre%2Ffix&page_size=10", None, None),
    ("GET", f"/v1/namespaces/{NS}/hint_cache_warm", None, None),
    ("GET", f"/v1/namespaces/{NS}/hint_cache_warm?foo=bar&x=%20y+z", None, None),
    ("POST", f"/v1/namespaces/{NS}/_debug/recall", b'{"num":5,"top_k":10}', None),
    ("GET", f"/v1/namespaces/{NS}", None, None),
    ("GET", f"/v1/namespaces/{NS}?cursor=next-1", None, None),
    ("HEAD", f"/v1/namespaces/{NS}", None, None),
    ("DELETE", f"/v1/namespaces/{NS}", None, None),
    ("POST", f"/v1/namespaces/{NS}", b'{"ids":[1],"vectors":[[0.1,0.2]]}', None),
    ("POST", f"/v1/namespaces/{NS}/query", QUERY_BODY, f"/v2/namespaces/{NS}/query"),
    ("POST", f"/v1/namespaces/{NS}/query?a=1&b=%2F", QUERY_BODY,
     f"/v2/namespaces/{NS}/query?a=1&b=%2F"),
    ("GET", f"/v1/namespaces/{NS}/operations/op-123", None, None),
    ("GET", f"/v2/namespaces/{NS}/operations/op-123", None, None),
    ("POST", "/v2/namespaces/" + "n" * 128 + "/query", QUERY_BODY, None),  # longest legal name
    ("GET", "/v2/namespaces/a/metadata", None, None),  # shortest legal name
    ("GET", "/v2/namespaces/.a./metadata", None, None),  # dots are legal inside a name
]


@pytest.mark.parametrize("method,target,body,expected", ROUTES,
                         ids=[f"{m} {t[:70]}" for m, t, _, _ in ROUTES])
def test_route_forwarded_unchanged(gw, upstream, method, target, body, expected):
    r = req(gw, method, target, body=body)
    assert r.status == 200, r
    if method != "HEAD":
        if method == "GET" and target.startswith("/v2/") and target.endswith("/metadata"):
            # v2 metadata gains Layer's own `layer` object; every upstream field is kept.
            got = json.loads(r.body)
            assert got["ok"] is True and set(got["layer"]) == {
                "stable_as_of", "is_stable", "cache_state", "cache_warmed_through"}
        else:
            assert r.body == b'{"ok":true}'
        assert r.content_type.startswith("application/json")
    reqs = upstream.wait_for_requests(1)
    assert len(reqs) == 1, [(x.method, x.target) for x in reqs]
    u = reqs[0]
    assert u.method == method
    assert u.target == (expected or target)
    assert u.body == (body or b"")
    assert u.header("authorization") == f"Bearer {TOKEN}"


def test_v1_query_goes_to_v2_with_same_body_and_query(gw, upstream):
    body = b'{"vector":[1,2],"top_k":3,"distance_metric":"euclidean_squared"}'
    r = req(gw, "POST", "/v1/namespaces/legacy/query?stainless_overload=multiQuery&z=1", body=body)
    assert r.status == 200
    u = upstream.wait_for_requests(1)[0]
    assert (u.method, u.target) == ("POST", "/v2/namespaces/legacy/query?stainless_overload=multiQuery&z=1")
    assert u.body == body


def test_request_headers_forwarded_and_filtered(gw, upstream):
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Accept-Encoding": "gzip",
        "Prefer": "respond-async",
        "User-Agent": "Turbopuffer/JS 2.8.0",
        "X-Stainless-Lang": "js",
        "X-Stainless-Retry-Count": "0",
        "X-Stainless-Timeout": "60",
        "x-stainless-package-version": "2.8.0",
        "Cookie": "session=secret",
        "X-Random": "nope",
        "X-Forwarded-Host": "evil.example",
    }
    r = req(gw, "POST", "/v2/namespaces/hdrs/query", body=QUERY_BODY, headers=headers)
    assert r.status == 200
    u = upstream.wait_for_requests(1)[0]
    for k in ("Content-Type", "Accept", "Accept-Encoding", "Prefer", "User-Agent",
              "X-Stainless-Lang", "X-Stainless-Retry-Count", "X-Stainless-Timeout",
              "x-stainless-package-version"):
        assert u.header(k) == headers[k], (k, u.headers)
    names = u.header_names()
    assert "cookie" not in names, u.headers
    assert "x-random" not in names, u.headers
    assert u.header("authorization") == f"Bearer {TOKEN}"


def test_gzip_request_body_stays_gzip(gw, upstream):
    raw = json.dumps({"rank_by": ["id", "asc"], "top_k": 10,
                      "filters": ["Or", [["id", "Eq", i] for i in range(200)]]}).encode()
    gz = gzip.compress(raw, compresslevel=1)
    r = req(gw, "POST", "/v2/namespaces/gz/query", body=gz,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status == 200
    u = upstream.wait_for_requests(1)[0]
    assert u.header("content-encoding") == "gzip"
    assert u.body == gz


def test_response_headers_and_gzip_body_relayed_verbatim(gw, upstream):
    payload = gzip.compress(b'{"rows":[{"id":1}]}' * 100)
    upstream.set_rule(Response(status=200, body=payload, headers=[
        ("Content-Type", "application/json"),
        ("Content-Encoding", "gzip"),
        ("Retry-After", "3"),
        ("retry-after-ms", "2500"),
        ("x-should-retry", "false"),
        ("Preference-Applied", "respond-async"),
    ]))
    r = req(gw, "POST", "/v2/namespaces/gzr/query", body=QUERY_BODY,
            headers={"Accept-Encoding": "gzip"})
    assert r.status == 200
    assert r.body == payload
    assert r.header("content-encoding") == "gzip"
    assert r.content_type.startswith("application/json")
    assert r.header("retry-after") == "3"
    assert r.header("retry-after-ms") == "2500"
    assert r.header("x-should-retry") == "false"
    assert r.header("preference-applied") == "respond-async"


def test_legacy_head_metadata_headers_relayed(gw, upstream):
    """Pre-2025 clients read namespace metadata from the x-turbopuffer-* headers of a HEAD."""
    upstream.set_rule(Response(status=200, body=b"", headers=[
        ("x-turbopuffer-approx-num-vectors", "42"),
        ("x-turbopuffer-dimensions", "3"),
        ("x-turbopuffer-created-at", "2024-03-15T10:30:45Z"),
        ("x-unrelated", "no"),
    ]))
    r = req(gw, "HEAD", "/v1/namespaces/legacy")
    assert r.status == 200
    assert r.header("x-turbopuffer-approx-num-vectors") == "42"
    assert r.header("x-turbopuffer-dimensions") == "3"
    assert r.header("x-turbopuffer-created-at") == "2024-03-15T10:30:45Z"
    assert r.header("x-unrelated") is None


def test_non_json_content_type_relayed(gw, upstream):
    upstream.set_rule(Response(status=200, body=b"plain words",
                               headers=[("Content-Type", "text/plain; charset=utf-8")]))
    r = req(gw, "GET", "/v1/namespaces/t/schema")
    assert r.status == 200
    assert r.body == b"plain words"
    assert r.header("content-type") == "text/plain; charset=utf-8"


# ---- Location rewriting -----------------------------------------------------------------------
def _async_rule(location):
    return Response(status=202, body=b'{"status":"running"}', headers=[
        ("Content-Type", "application/json"), ("Preference-Applied", "respond-async"),
        ("Location", location)])


def test_location_on_upstream_origin_rewritten_to_host_header(gw, upstream):
    upstream.set_rule(_async_rule(f"{upstream.url}/v1/namespaces/cp/operations/op-9?x=1&y=%2F"))
    r = req(gw, "POST", "/v2/namespaces/cp?stainless_overload=copyFrom",
            body=b'{"copy_from_namespace":"src"}', headers={"Prefer": "respond-async"})
    assert r.status == 202
    assert r.header("preference-applied") == "respond-async"
    assert r.header("location") == f"http://127.0.0.1:{gw.port}/v1/namespaces/cp/operations/op-9?x=1&y=%2F"
    assert r.body == b'{"status":"running"}'


def test_location_uses_request_host_header(gw, upstream):
    upstream.set_rule(_async_rule(f"{upstream.url}/v1/namespaces/cp/operations/op-9"))
    r = req(gw, "POST", "/v2/namespaces/cp", body=b'{"copy_from_namespace":"src"}',
            headers={"Host": "layer.internal:8443"})
    assert r.status == 202
    assert r.header("location") == "http://layer.internal:8443/v1/namespaces/cp/operations/op-9"


def test_location_uses_public_url(upstream, start_gateway):
    gw = start_gateway(upstream, "--public-url", "https://layer.example.com")
    upstream.set_rule(_async_rule(f"{upstream.url}/v2/namespaces/cp/operations/op-1?q=2"))
    r = req(gw, "POST", "/v2/namespaces/cp", body=b'{"copy_from_namespace":"src"}')
    assert r.status == 202
    assert r.header("location") == "https://layer.example.com/v2/namespaces/cp/operations/op-1?q=2"


@pytest.mark.parametrize("loc", [
    "http://other.example:9999/v1/namespaces/cp/operations/op-9",
    "/v1/namespaces/cp/operations/op-9",
    "operations/op-9",
])
def test_location_elsewhere_or_relative_untouched(gw, upstream, loc):
    upstream.set_rule(_async_rule(loc))
    r = req(gw, "POST", "/v2/namespaces/cp", body=b'{"copy_from_namespace":"src"}')
    assert r.status == 202
    assert r.header("location") == loc


def test_location_on_other_port_of_same_host_untouched(gw, upstream):
    loc = f"http://127.0.0.1:{upstream.port + 1 if upstream.port < 65535 else 1}/v1/x"
    upstream.set_rule(_async_rule(loc))
    r = req(gw, "POST", "/v2/namespaces/cp", body=b'{"copy_from_namespace":"src"}')
    assert r.header("location") == loc


def test_async_poll_through_gateway(gw, upstream):
    """The rewritten Location can be polled through the gateway and reaches the upstream path."""
    def rule(rq):
        if rq.path.endswith("/operations/op-7"):
            return Response(body=b'{"status":"finished","result":{"success":{"rows_affected":3}}}')
        return _async_rule(f"{upstream.url}/v1/namespaces/cp/operations/op-7")
    upstream.set_rule(rule)
    r = req(gw, "POST", "/v2/namespaces/cp", body=b'{"copy_from_namespace":"src"}')
    loc = r.header("location")
    assert loc == f"http://127.0.0.1:{gw.port}/v1/namespaces/cp/operations/op-7"
    r2 = req(gw, "GET", loc[len(f"http://127.0.0.1:{gw.port}"):])
    assert r2.status == 200
    assert r2.json()["status"] == "finished"
    assert upstream.wait_for_requests(2)[1].target == "/v1/namespaces/cp/operations/op-7"


# ---- namespace validation -----------------------------------------------------------------------
INVALID_CHARS = "Invalid URL: Namespace contains invalid characters, must be [A-Za-z0-9-_.]"

BAD_NAMES = ["..", ".", "%2E%2E", "%2e", "a%2Fb", "a%20b", "a%2F..%2Fb", "ns!", "n%C3%A9",
             "a%00b", "a%3Fb", "a:b", "a%25b", "%2F"]

ROUTE_TEMPLATES = [
    ("POST", "/v2/namespaces/{}", b"{}"),
    ("POST", "/v2/namespaces/{}/query", QUERY_BODY),
    ("POST", "/v2/namespaces/{}/explain_query", QUERY_BODY),
    ("DELETE", "/v2/namespaces/{}", None),
    ("GET", "/v2/namespaces/{}/metadata", None),
    ("GET", "/v1/namespaces/{}/metadata", None),
    ("PATCH", "/v1/namespaces/{}/metadata", b"{}"),
    ("GET", "/v1/namespaces/{}/schema", None),
    ("POST", "/v1/namespaces/{}/schema", b"{}"),
    ("GET", "/v1/namespaces/{}/hint_cache_warm", None),
    ("POST", "/v1/namespaces/{}/_debug/recall", b"{}"),
    ("GET", "/v1/namespaces/{}", None),
    ("DELETE", "/v1/namespaces/{}", None),
    ("POST", "/v1/namespaces/{}", b"{}"),
    ("POST", "/v1/namespaces/{}/query", QUERY_BODY),
    ("GET", "/v1/namespaces/{}/operations/op1", None),
    ("GET", "/v2/namespaces/{}/operations/op1", None),
]


def _raw(gw, method, target, body=None, headers=None):
    hdrs = [("Authorization", f"Bearer {TOKEN}")] + list(headers or [])
    if body is not None:
        hdrs.append(("Content-Type", "application/json"))
    return raw_request(gw.port, build_request(method, target, hdrs, body), method)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_invalid_namespace_chars_answered_like_turbopuffer(gw, upstream, name):
    r = _raw(gw, "POST", f"/v2/namespaces/{name}/query", QUERY_BODY)
    assert r.status == 400, r
    assert r.content_type.startswith("text/plain"), r
    assert r.body.decode() == INVALID_CHARS
    assert upstream.requests == []


@pytest.mark.parametrize("method,tmpl,body", ROUTE_TEMPLATES,
                         ids=[f"{m} {t}" for m, t, _ in ROUTE_TEMPLATES])
def test_invalid_namespace_on_every_route(gw, upstream, method, tmpl, body):
    for name in ("a%2Fb", ".."):
        r = _raw(gw, method, tmpl.format(name), body)
        assert r.status == 400, (name, r)
        assert r.content_type.startswith("text/plain"), r
        assert r.body.decode() == INVALID_CHARS, r
    long = "b" * 129
    r = _raw(gw, method, tmpl.format(long), body)
    assert r.status == 400, r
    assert r.body.decode() == f"Invalid URL: Namespace `{long}` is too long, limit is currently 128 characters"
    assert upstream.requests == []


def test_invalid_namespace_on_head(gw, upstream):
    r = _raw(gw, "HEAD", "/v1/namespaces/a%2Fb")
    assert r.status == 400
    assert upstream.requests == []


def test_namespace_too_long(gw, upstream):
    long = "x" * 129
    r = _raw(gw, "GET", f"/v2/namespaces/{long}/metadata")
    assert r.status == 400
    assert r.content_type.startswith("text/plain")
    assert r.body.decode() == f"Invalid URL: Namespace `{long}` is too long, limit is currently 128 characters"
    assert upstream.requests == []


def test_percent_encoded_too_long_name(gw, upstream):
    # 129 characters once decoded (%41 == "A"); the message names the decoded name.
    name_dec = "A" + "y" * 128
    r = _raw(gw, "GET", "/v2/namespaces/%41" + "y" * 128 + "/metadata")
    assert r.status == 400
    assert r.body.decode() == f"Invalid URL: Namespace `{name_dec}` is too long, limit is currently 128 characters"
    assert upstream.requests == []


TRAVERSAL = [
    ("POST", "/v2/namespaces/a/../b/query"),
    ("POST", "/v2/namespaces/a/./query"),
    ("POST", "/v2/namespaces/a%2F..%2Fb/query"),
    ("POST", "/v2/namespaces/a/query/../../b/query"),
    ("POST", "/v2/namespaces//query"),
    ("POST", "//v2/namespaces/a/query"),
    ("POST", "/v2//namespaces/a/query"),
    ("POST", "/v2/namespaces/a//query"),
    ("POST", "/v2/namespaces/a/query/"),
    ("POST", "/v2/namespaces/a/"),
    ("GET", "/v1/namespaces/"),
    ("GET", "/v1/namespaces/a/metadata/"),
    ("POST", "/v2/namespaces/%2E%2E/query"),
    ("GET", "/v1/namespaces/../namespaces"),
    ("GET", "/v1/namespaces/a/%2E%2E/metadata"),
    ("POST", "/v2/namespaces/a%2Fquery"),
    ("GET", "/v2/namespaces/a/metadata%2F..%2F..%2Fx"),
]


@pytest.mark.parametrize("method,target", TRAVERSAL, ids=[f"{m} {t}" for m, t in TRAVERSAL])
def test_traversal_and_odd_paths_never_reach_other_upstream_paths(gw, upstream, method, target):
    body = QUERY_BODY if method == "POST" else None
    r = _raw(gw, method, target, body)
    assert r.status in (400, 404), r
    assert r.status != 200
    for u in upstream.requests:
        assert u.target == target, f"forwarded {target!r} as {u.method} {u.target!r}"


@pytest.mark.parametrize("method,target", [
    ("GET", "/"),
    ("GET", "/v3/namespaces/a"),
    ("GET", "/v2/namespaces/a/unknown"),
    ("POST", "/v2/namespaces/a/query/extra"),
    ("GET", "/v1/vectors/a"),
    ("GET", "/favicon.ico"),
    ("GET", "/v2/namespaces"),
])
def test_unknown_paths_404_json(gw, upstream, method, target):
    r = _raw(gw, method, target, QUERY_BODY if method == "POST" else None)
    assert r.status == 404, r
    assert r.content_type.startswith("application/json"), r
    j = r.json()
    assert j["error"] == "not_found"
    assert isinstance(j.get("message"), str) and j["message"]
    assert upstream.requests == []


@pytest.mark.parametrize("method,target", [
    ("PUT", "/v2/namespaces/a"),
    ("GET", "/v2/namespaces/a/query"),
    ("PATCH", "/v2/namespaces/a/metadata"),
    ("DELETE", "/v1/namespaces/a/schema"),
])
def test_wrong_method_not_forwarded(gw, upstream, method, target):
    r = _raw(gw, method, target, b"{}" if method in ("PUT", "PATCH") else None)
    assert r.status in (404, 405), r
    assert upstream.requests == []


# ---- upstream keep-alive ----------------------------------------------------------------------
def test_sequential_requests_reuse_upstream_connections(gw, upstream):
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=15)
    try:
        for i in range(150):
            r = req(gw, "POST", f"/v2/namespaces/ka{i % 3}/query", body=QUERY_BODY, conn=conn)
            assert r.status == 200
    finally:
        conn.close()
    # several client connections, used round-robin
    conns = [http.client.HTTPConnection("127.0.0.1", gw.port, timeout=15) for _ in range(5)]
    try:
        for i in range(50):
            r = req(gw, "GET", "/v2/namespaces/ka/metadata", conn=conns[i % 5])
            assert r.status == 200
    finally:
        for c in conns:
            c.close()
    reqs = upstream.wait_for_requests(200)
    assert len(reqs) == 200
    distinct = upstream.distinct_connections()
    assert len(distinct) <= 4, f"200 sequential requests used {len(distinct)} upstream connections"


def test_fresh_client_connections_still_reuse_upstream(gw, upstream):
    for i in range(40):
        assert req(gw, "GET", "/v1/namespaces").status == 200
    upstream.wait_for_requests(40)
    assert len(upstream.distinct_connections()) <= 4


def test_client_keepalive_connection_serves_many_requests(gw, upstream):
    with RawConn(gw.port) as c:
        for i in range(20):
            c.send(build_request("GET", f"/v2/namespaces/k{i}/metadata",
                                 [("Authorization", f"Bearer {TOKEN}")]))
            r = c.read_response()
            assert r.status == 200
            assert (r.header("connection") or "").lower() != "close"


def test_pipelined_requests_answered_in_order(gw, upstream):
    upstream.set_rule(lambda rq: Response(body=json.dumps({"path": rq.path}).encode()))
    with RawConn(gw.port) as c:
        data = b"".join(build_request("GET", f"/v2/namespaces/p{i}/metadata",
                                      [("Authorization", f"Bearer {TOKEN}")]) for i in range(5))
        c.send(data)
        for i in range(5):
            r = c.read_response()
            assert r.status == 200
            assert r.json()["path"] == f"/v2/namespaces/p{i}/metadata"


def test_upstream_host_header_names_upstream(gw, upstream):
    r = req(gw, "GET", "/v1/namespaces", headers={"Host": "client-facing.example"})
    assert r.status == 200
    u = upstream.wait_for_requests(1)[0]
    assert u.header("host") in ("127.0.0.1", f"127.0.0.1:{upstream.port}"), u.headers
    assert len(u.header_all("host")) == 1


def test_concurrent_requests_get_their_own_responses(gw, upstream):
    """Many parallel clients through the upstream pool: no crossed or lost responses."""
    import threading
    upstream.set_rule(lambda rq: Response(delay=0.01, body=json.dumps(
        {"target": rq.target, "body": rq.body.decode()}).encode()))
    errors = []

    def client(cid):
        conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
        try:
            for i in range(6):
                body = json.dumps({"c": cid, "i": i}).encode()
                target = f"/v2/namespaces/c{cid}/query?i={i}"
                r = req(gw, "POST", target, body=body, conn=conn)
                if r.status != 200 or r.json() != {"target": target, "body": body.decode()}:
                    errors.append((cid, i, r))
        except Exception as e:  # noqa: BLE001
            errors.append((cid, repr(e)))
        finally:
            conn.close()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:5]
    assert len(upstream.requests) == 24 * 6


def test_large_response_relayed_byte_for_byte(gw, upstream):
    import os
    payload = os.urandom(24 << 20)
    upstream.set_rule(Response(body=payload, headers=[("Content-Type", "application/octet-stream")]))
    r = req(gw, "POST", "/v2/namespaces/big/query", body=QUERY_BODY, timeout=60)
    assert r.status == 200
    assert r.header("content-type") == "application/octet-stream"
    assert len(r.body) == len(payload) and r.body == payload


def test_large_response_arriving_slowly_is_relayed_whole(gw, upstream):
    """A large answer that trickles in (the gateway reads bodies of announced length straight
    into place, waking per batch of bytes) still arrives whole and in order."""
    import os
    payload = os.urandom(1 << 20)
    upstream.set_rule(Response(body=payload, drip=0.002,
                               headers=[("Content-Type", "application/octet-stream")]))
    for _ in range(2):
        r = req(gw, "POST", "/v2/namespaces/big/query", body=QUERY_BODY, timeout=60)
        assert r.status == 200
        assert r.body == payload
    # The pooled connections that carried them answer small requests at once afterwards (the
    # read's receive low-water mark was put back).
    upstream.set_rule(Response())
    for _ in range(8):
        assert req(gw, "POST", "/v2/namespaces/big/query", body=QUERY_BODY, timeout=5).status == 200
    reused = metric_sum(parse_prometheus(req(gw, "GET", "/metrics").body.decode()),
                        "layer_upstream_connections_reused_total")
    assert reused >= 1
    assert len(upstream.distinct_connections()) < 10


def test_large_response_cut_short_is_a_502(gw, upstream):
    body = b"x" * (300 << 10)
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (len(body) + 4096))
    upstream.set_rule(Response(raw=head + body, close=True))
    r = req(gw, "POST", "/v2/namespaces/big/query", body=QUERY_BODY, timeout=30)
    assert r.status == 502
    assert r.json()["error"] == "upstream_error"
    upstream.set_rule(Response())
    assert req(gw, "POST", "/v2/namespaces/big/query", body=QUERY_BODY).status == 200


def test_upstream_connection_close_header_respected(gw, upstream):
    upstream.set_rule(Response(close=True))
    for _ in range(5):
        assert req(gw, "GET", "/v1/namespaces").status == 200
    assert len(upstream.distinct_connections()) == 5


def test_pooled_connection_closed_by_upstream_while_idle(gw, upstream):
    """Upstream (e.g. a load balancer) silently closes an idle keep-alive connection: the next
    request must not fail with 502."""
    upstream.set_rule(Response(raw=b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                   b"Content-Length: 11\r\n\r\n{\"ok\":true}", close=True))
    for _ in range(4):
        r = req(gw, "GET", "/v1/namespaces")
        assert r.status == 200, r
        upstream.wait_no_open_connections()  # it closed the pooled connection: its FIN is sent
    assert len(upstream.requests) == 4


def test_empty_post_body(gw, upstream):
    r = req(gw, "POST", "/v1/namespaces/e/_debug/recall", body=b"")
    assert r.status == 200
    u = upstream.wait_for_requests(1)[0]
    assert u.body == b""
    assert u.method == "POST"


def test_http10_client(gw, upstream):
    r = raw_request(gw.port, b"GET /v1/namespaces HTTP/1.0\r\nAuthorization: Bearer " +
                    TOKEN.encode() + b"\r\n\r\n")
    assert r.status == 200
    assert r.body == b'{"ok":true}'


def test_client_connection_close(gw, upstream):
    with RawConn(gw.port) as c:
        c.send(build_request("GET", "/v1/namespaces",
                             [("Authorization", f"Bearer {TOKEN}"), ("Connection", "close")]))
        r = c.read_response()
        assert r.status == 200
        assert c.closed_by_peer(5)


def test_no_accept_encoding_added_upstream(gw, upstream):
    """A client that did not ask for gzip must not get gzip: the gateway adds no Accept-Encoding."""
    r = raw_request(gw.port, build_request("GET", "/v1/namespaces",
                                           [("Authorization", f"Bearer {TOKEN}")]))
    assert r.status == 200
    u = upstream.wait_for_requests(1)[0]
    assert u.header("accept-encoding") in (None, "identity"), u.headers


def test_public_url_with_trailing_slash(upstream, start_gateway):
    gw = start_gateway(upstream, "--public-url", "https://layer.example.com/")
    upstream.set_rule(_async_rule(f"{upstream.url}/v2/namespaces/cp/operations/op-1"))
    r = req(gw, "POST", "/v2/namespaces/cp", body=b'{"copy_from_namespace":"src"}')
    assert r.header("location") == "https://layer.example.com/v2/namespaces/cp/operations/op-1"


def test_upstream_url_with_trailing_slash(upstream, start_gateway):
    gw = start_gateway(upstream.url + "/")
    upstream.set_rule(lambda rq: _async_rule(f"{upstream.url}/v1/namespaces/cp/operations/o")
                      if rq.method == "POST" else Response())
    assert req(gw, "GET", "/v1/namespaces?prefix=a").status == 200
    r = req(gw, "POST", "/v2/namespaces/cp", body=b'{"copy_from_namespace":"src"}')
    assert r.header("location") == f"http://127.0.0.1:{gw.port}/v1/namespaces/cp/operations/o"
    assert [u.target for u in upstream.wait_for_requests(2)] == ["/v1/namespaces?prefix=a",
                                                                 "/v2/namespaces/cp"]


# ---- Status codes ------------------------------------------------------------------------------
@pytest.mark.parametrize("status,reason", [(418, "I'm a teapot"), (299, "Fine Anyway"),
                                           (451, "Unavailable For Legal Reasons"),
                                           (599, "Network Connect Timeout")])
def test_every_upstream_status_relayed_verbatim(gw, upstream, status, reason):
    """A code without a standard name, and its reason phrase, reach the client as sent."""
    upstream.set_rule(Response(status=status, reason=reason, body=b'{"status":"error"}'))
    for method, target, body in [("GET", "/v1/namespaces/t/schema", None),
                                 ("POST", "/v2/namespaces/t/query", b'{"top_k":1}'),
                                 ("POST", "/v2/namespaces/t", b'{"upsert_rows":[{"id":1}]}')]:
        r = req(gw, method, target, body=body)
        assert (r.status, r.reason) == (status, reason), target
        assert r.body == b'{"status":"error"}', target
