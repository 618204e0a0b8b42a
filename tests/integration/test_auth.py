"""Inbound auth modes (derive / keys / open), scope classification, the upstream credential, and
the auth error bodies (which carry no `message` field)."""

import json

# A write without row operations: the gateway forwards it byte for byte.
SCHEMA_ONLY = b'{"schema":{"title":{"type":"string"}}}'

import pytest

from layer_testlib import build_request, http_request, raw_request

UPKEY = "tpuf_UpstreamKeyForTests0000000000001"
MISSING = {"error": "missing or malformed Authorization: Bearer header"}
INVALID = {"error": "invalid API key"}
QUERY_BODY = b'{"rank_by":["id","asc"],"top_k":1}'


def call(gw, method, path, authorization=None, body=None):
    hdrs = []
    if authorization is not None:
        hdrs.append(("Authorization", authorization))
    if body is not None:
        hdrs.append(("Content-Type", "application/json"))
    return raw_request(gw.port, build_request(method, path, hdrs, body), method)


def assert_auth_error(r, status, body):
    assert r.status == status, r
    assert r.content_type.startswith("application/json"), r
    assert json.loads(r.body) == body, r.body


MALFORMED = [None, "Basic eDp5", "Bearer", "Bearer ", "Bearer    ", "Token abc", ""]


# ---- derive mode with an upstream key -----------------------------------------------------------
@pytest.fixture
def derive_keyed(upstream, start_gateway):
    return start_gateway(upstream, "--auth-mode", "derive", "--upstream-api-key", UPKEY)


@pytest.mark.parametrize("authz", MALFORMED, ids=repr)
def test_derive_keyed_missing_or_malformed_401(derive_keyed, upstream, authz):
    r = call(derive_keyed, "POST", "/v2/namespaces/a/query", authz, QUERY_BODY)
    assert_auth_error(r, 401, MISSING)
    assert upstream.requests == []


@pytest.mark.parametrize("token", ["wrong", UPKEY + "x", UPKEY[:-1], "tpuf_other"])
def test_derive_keyed_other_token_403(derive_keyed, upstream, token):
    r = call(derive_keyed, "GET", "/v2/namespaces/a/metadata", f"Bearer {token}")
    assert_auth_error(r, 403, INVALID)
    assert upstream.requests == []


def test_derive_keyed_accepts_upstream_key(derive_keyed, upstream):
    for method, path, body in [("GET", "/v2/namespaces/a/metadata", None),
                               ("POST", "/v2/namespaces/a", b'{"upsert_rows":[{"id":1}]}'),
                               ("DELETE", "/v2/namespaces/a", None),
                               ("POST", "/v2/namespaces/a/query", QUERY_BODY)]:
        r = call(derive_keyed, method, path, f"Bearer {UPKEY}", body)
        assert r.status == 200, (method, path, r)
    for u in upstream.wait_for_requests(4):
        assert u.header("authorization") == f"Bearer {UPKEY}"


# ---- derive mode without an upstream key ---------------------------------------------------------
@pytest.fixture
def derive_open(upstream, start_gateway):
    return start_gateway(upstream)  # default mode is derive


@pytest.mark.parametrize("authz", MALFORMED, ids=repr)
def test_derive_unkeyed_missing_or_malformed_401(derive_open, upstream, authz):
    r = call(derive_open, "GET", "/v1/namespaces", authz)
    assert_auth_error(r, 401, MISSING)
    assert upstream.requests == []


def test_derive_unkeyed_forwards_caller_token(derive_open, upstream):
    for tok in ("tok-A", "tpuf_caller_B"):
        r = call(derive_open, "GET", "/v1/namespaces", f"Bearer {tok}")
        assert r.status == 200
    reqs = upstream.wait_for_requests(2)
    assert [u.header("authorization") for u in reqs] == ["Bearer tok-A", "Bearer tpuf_caller_B"]
    assert all(len(u.header_all("authorization")) == 1 for u in reqs)


def test_derive_unkeyed_upstream_401_relayed(derive_open, upstream):
    from recording_upstream import Response
    body = b'{"status":"error","error":"unauthorized: invalid api key"}'
    upstream.set_rule(Response(status=401, body=body))
    r = call(derive_open, "GET", "/v1/namespaces", "Bearer bogus")
    assert r.status == 401
    assert r.body == body


# ---- keys mode ---------------------------------------------------------------------------------
READ_OK = [
    ("GET", "/v2/namespaces/a/metadata", None),
    ("GET", "/v1/namespaces/a/metadata", None),
    ("GET", "/v1/namespaces/a/schema", None),
    ("GET", "/v1/namespaces", None),
    ("GET", "/v1/namespaces/a/hint_cache_warm", None),
    ("GET", "/v1/namespaces/a/operations/op1", None),
    ("POST", "/v2/namespaces/a/query", QUERY_BODY),
    ("POST", "/v2/namespaces/a/query?stainless_overload=multiQuery", b'{"queries":[]}'),
    ("POST", "/v1/namespaces/a/query", QUERY_BODY),
    ("POST", "/v2/namespaces/a/explain_query", QUERY_BODY),
    ("POST", "/v1/namespaces/a/_debug/recall", b'{"num":1}'),
]
WRITE_OK = [
    ("POST", "/v2/namespaces/a", b'{"upsert_rows":[{"id":1}]}'),
    ("POST", "/v2/namespaces/a?stainless_overload=copyFrom", b'{"copy_from_namespace":"b"}'),
    ("DELETE", "/v2/namespaces/a", None),
    ("PATCH", "/v1/namespaces/a/metadata", b'{"pinning":false}'),
    ("POST", "/v1/namespaces/a/schema", b'{"x":{"type":"string"}}'),
    ("POST", "/v1/namespaces/a", b'{"ids":[1]}'),
    ("DELETE", "/v1/namespaces/a", None),
]


def _ids(routes):
    return [f"{m} {p}" for m, p, _ in routes]


@pytest.fixture(params=["flags", "env"])
def keys_gw(request, upstream, start_gateway):
    if request.param == "flags":
        return start_gateway(upstream, "--auth-mode", "keys", "--upstream-api-key", UPKEY,
                             "--gateway-key", "r1:read", "--gateway-key", "w1:write",
                             "--gateway-key", "a1:admin")
    return start_gateway(upstream, env={"LAYER_AUTH_MODE": "keys",
                                        "LAYER_GATEWAY_KEYS": "r1:read,w1:write,a1:admin",
                                        "TURBOPUFFER_API_KEY": UPKEY})


@pytest.mark.parametrize("method,path,body", READ_OK, ids=_ids(READ_OK))
def test_keys_read_scope(keys_gw, upstream, method, path, body):
    assert call(keys_gw, method, path, "Bearer r1", body).status == 200
    assert call(keys_gw, method, path, "Bearer a1", body).status == 200
    r = call(keys_gw, method, path, "Bearer w1", body)
    assert_auth_error(r, 403, {"error": "insufficient API key scope", "required_scope": "read"})
    reqs = upstream.wait_for_requests(2)
    assert len(reqs) == 2
    assert all(u.header("authorization") == f"Bearer {UPKEY}" for u in reqs)


@pytest.mark.parametrize("method,path,body", WRITE_OK, ids=_ids(WRITE_OK))
def test_keys_write_scope(keys_gw, upstream, method, path, body):
    assert call(keys_gw, method, path, "Bearer w1", body).status == 200
    assert call(keys_gw, method, path, "Bearer a1", body).status == 200
    r = call(keys_gw, method, path, "Bearer r1", body)
    assert_auth_error(r, 403, {"error": "insufficient API key scope", "required_scope": "write"})
    reqs = upstream.wait_for_requests(2)
    assert len(reqs) == 2
    assert all(u.header("authorization") == f"Bearer {UPKEY}" for u in reqs)


@pytest.mark.parametrize("token", ["unknown", "r1x", "r", "R1", UPKEY])
def test_keys_unknown_key_403(keys_gw, upstream, token):
    r = call(keys_gw, "GET", "/v1/namespaces", f"Bearer {token}")
    assert_auth_error(r, 403, INVALID)
    assert upstream.requests == []


@pytest.mark.parametrize("authz", MALFORMED, ids=repr)
def test_keys_missing_or_malformed_401(keys_gw, upstream, authz):
    assert_auth_error(call(keys_gw, "GET", "/v1/namespaces", authz), 401, MISSING)
    assert upstream.requests == []


def test_keys_multi_scope_key(upstream, start_gateway):
    gw = start_gateway(upstream, "--auth-mode", "keys", "--gateway-key", "rw:read+write")
    assert call(gw, "GET", "/v1/namespaces", "Bearer rw").status == 200
    assert call(gw, "POST", "/v2/namespaces/a", "Bearer rw", SCHEMA_ONLY).status == 200


def test_keys_key_without_scopes_is_admin(upstream, start_gateway):
    gw = start_gateway(upstream, "--auth-mode", "keys", "--gateway-key", "plainkey")
    assert call(gw, "GET", "/v1/namespaces", "Bearer plainkey").status == 200
    assert call(gw, "DELETE", "/v2/namespaces/a", "Bearer plainkey").status == 200


# ---- open mode ---------------------------------------------------------------------------------
def test_open_mode_needs_no_auth_and_sends_upstream_key(upstream, start_gateway):
    gw = start_gateway(upstream, "--auth-mode", "open", "--upstream-api-key", UPKEY)
    assert call(gw, "GET", "/v1/namespaces").status == 200
    assert call(gw, "POST", "/v2/namespaces/a", None, SCHEMA_ONLY).status == 200
    assert call(gw, "GET", "/v1/namespaces", "Basic eDp5").status == 200
    assert call(gw, "GET", "/v1/namespaces", "Bearer whatever").status == 200
    for u in upstream.wait_for_requests(4):
        assert u.header("authorization") == f"Bearer {UPKEY}"


# ---- unauthenticated infrastructure routes -------------------------------------------------------
@pytest.mark.parametrize("mode", ["derive-keyed", "derive", "keys"])
@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics"])
def test_ops_routes_need_no_auth(upstream, start_gateway, mode, path):
    args = {"derive-keyed": ["--upstream-api-key", UPKEY],
            "derive": [],
            "keys": ["--auth-mode", "keys", "--gateway-key", "a1:admin"]}[mode]
    gw = start_gateway(upstream, *args)
    assert call(gw, "GET", path).status == 200
    assert call(gw, "GET", path, "Bearer definitely-wrong").status == 200
    assert upstream.requests == []


def test_case_insensitive_header_name(derive_keyed, upstream):
    r = raw_request(derive_keyed.port, build_request(
        "GET", "/v1/namespaces", [("authorization", f"Bearer {UPKEY}")]))
    assert r.status == 200
    r = raw_request(derive_keyed.port, build_request(
        "GET", "/v1/namespaces", [("AUTHORIZATION", f"Bearer {UPKEY}")]))
    assert r.status == 200


def test_http_client_request(derive_keyed, upstream):
    """Same thing through http.client to make sure nothing depends on the raw helper."""
    r = http_request(derive_keyed, "GET", "/v2/namespaces/a/metadata", token=UPKEY)
    assert r.status == 200
    r = http_request(derive_keyed, "GET", "/v2/namespaces/a/metadata", token="nope")
    assert r.status == 403


def test_keys_mode_never_forwards_gateway_key(upstream, start_gateway):
    """Gateway keys are Layer's own credentials: they must not leak to Turbopuffer. With no
    --upstream-api-key, keys mode must either refuse to start or send no gateway key upstream."""
    try:
        gw = start_gateway(upstream, "--auth-mode", "keys", "--gateway-key", "gwsecret-a1:admin")
    except AssertionError as e:
        assert "exited with code" in str(e), e
        return
    call(gw, "GET", "/v1/namespaces", "Bearer gwsecret-a1")
    for u in upstream.requests:
        assert "gwsecret-a1" not in (u.header("authorization") or ""), u.headers
