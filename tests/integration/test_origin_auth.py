"""`layer origin --api-key`: Turbopuffer's 401 for a missing or unknown bearer, nothing changed by a
refused request, the open default, run-time key replacement under --test-faults, and keys that
never reach the logs (docs/origin.md "API keys")."""

from __future__ import annotations

import http.client
import json

import pytest

from layer_testlib import clean_env, http_request, run_layer
from test_origin_durability import origin_factory, origin_process, start  # noqa: F401

KEY = "tpuf_StrictOriginKey0123456789"
KEY2 = "tpuf_SecondKey9876543210"
WRONG = "tpuf_NotAKeyOfThisOrigin42"
Q = {"rank_by": ["id", "asc"], "limit": 100, "include_attributes": True}


def req(origin, method, path, body=None, token=None, headers=None, conn=None):
    data = json.dumps(body).encode() if body is not None else None
    return http_request(origin, method, path, data, headers=headers, token=token, conn=conn)


def rows(origin, ns, token=KEY):
    r = req(origin, "POST", f"/v2/namespaces/{ns}/query", Q, token=token)
    assert r.status == 200, r
    return r.json()["rows"]


def assert_401(r):
    assert r.status == 401, r
    assert r.content_type.startswith("application/json"), r
    body = r.json()
    assert set(body) == {"status", "error"}, body
    assert body["status"] == "error" and isinstance(body["error"], str) and body["error"], body


# Every route family, in an order that leaves each request something to act on. HEAD answers have
# no body, so only their status is compared.
def every_route(ns):
    return [
        ("POST", f"/v2/namespaces/{ns}", {"upsert_rows": [{"id": 1, "t": "a b"}]}),
        ("POST", f"/v2/namespaces/{ns}/query", {"rank_by": ["id", "asc"], "limit": 10}),
        ("POST", f"/v1/namespaces/{ns}/query", {"rank_by": ["id", "asc"], "limit": 10}),
        ("POST", f"/v2/namespaces/{ns}/explain_query", {"rank_by": ["id", "asc"], "limit": 10}),
        ("GET", f"/v2/namespaces/{ns}/metadata", None),
        ("GET", f"/v1/namespaces/{ns}/metadata", None),
        ("PATCH", f"/v1/namespaces/{ns}/metadata", {}),
        ("GET", f"/v1/namespaces/{ns}/schema", None),
        ("POST", f"/v1/namespaces/{ns}/schema", {"t": {"type": "string", "filterable": True}}),
        ("GET", f"/v1/namespaces/{ns}/hint_cache_warm", None),
        ("POST", f"/v1/namespaces/{ns}/_debug/recall", {}),
        ("GET", "/v1/namespaces", None),
        ("GET", f"/v1/namespaces/{ns}", None),
        ("HEAD", f"/v1/namespaces/{ns}", None),
        ("POST", f"/v1/namespaces/{ns}", {"ids": [2], "attributes": {"t": ["x"]}}),
        ("GET", f"/v2/namespaces/{ns}/operations/op1", None),
        ("DELETE", f"/v1/namespaces/{ns}", None),
        ("POST", f"/v2/namespaces/{ns}", {"upsert_rows": [{"id": 3}]}),
        ("DELETE", f"/v2/namespaces/{ns}", None),
    ]


@pytest.fixture
def strict(origin_factory):
    return origin_factory("--api-key", KEY, "--api-key", KEY2, "--test-faults")


def test_missing_or_unknown_bearer_is_401_with_the_error_envelope(strict):
    assert req(strict, "POST", "/v2/namespaces/a", {"upsert_rows": [{"id": 1}]},
               token=KEY).status == 200
    for headers in ({}, {"Authorization": f"Bearer {WRONG}"}, {"Authorization": "Bearer"},
                    {"Authorization": f"Basic {KEY}"}, {"Authorization": KEY},
                    {"Authorization": f"Bearer {KEY}x"}, {"Authorization": f"Bearer {KEY[:-1]}"},
                    {"Authorization": f"Bearer {KEY.upper()}"}):
        assert_401(req(strict, "POST", "/v2/namespaces/a/query", Q, headers=headers))
        assert_401(req(strict, "GET", "/v1/namespaces", headers=headers))
    # The scheme is case-insensitive, as in the gateway.
    assert req(strict, "GET", "/v1/namespaces", headers={"Authorization": f"bearer {KEY2}"}
               ).status == 200


def test_refused_writes_change_nothing(strict):
    assert req(strict, "POST", "/v2/namespaces/w", {"upsert_rows": [{"id": 1, "v": "one"}]},
               token=KEY).status == 200
    schema = req(strict, "GET", "/v1/namespaces/w/schema", token=KEY).json()
    for token in (None, WRONG):
        assert_401(req(strict, "POST", "/v2/namespaces/w",
                       {"upsert_rows": [{"id": 2, "v": "two"}], "patch_rows": [{"id": 1, "v": "x"}],
                        "deletes": [1]}, token=token))
        assert_401(req(strict, "POST", "/v2/namespaces/w",
                       {"delete_by_filter": ["id", "Gte", 0]}, token=token))
        assert_401(req(strict, "POST", "/v1/namespaces/w/schema",
                       {"v": {"type": "string", "full_text_search": True}}, token=token))
        assert_401(req(strict, "DELETE", "/v2/namespaces/w", token=token))
        assert_401(req(strict, "DELETE", "/v1/namespaces/w", token=token))
        assert_401(req(strict, "POST", "/v2/namespaces/fresh", {"upsert_rows": [{"id": 1}]},
                       token=token))
        assert_401(req(strict, "POST", "/v2/namespaces/copy", {"copy_from_namespace": "w"},
                       token=token))
    # Read back with the right key: exactly as before.
    assert rows(strict, "w") == [{"id": 1, "v": "one"}]
    assert req(strict, "GET", "/v1/namespaces/w/schema", token=KEY).json() == schema
    listed = req(strict, "GET", "/v1/namespaces", token=KEY).json()["namespaces"]
    assert [n["id"] for n in listed] == ["w"]
    assert req(strict, "POST", "/v2/namespaces/fresh/query", Q, token=KEY).status == 404


def test_the_right_key_works_on_every_route_family(strict, origin_factory, tmp_path):
    open_origin = origin_factory(data_dir=str(tmp_path / "open-data"), name="open")
    for method, path, body in every_route("fam"):
        # Refused first (changing nothing), then answered as an open origin answers it.
        refused = req(strict, method, path, body, token=WRONG)
        if method == "HEAD":
            assert refused.status == 401, (path, refused)
        else:
            assert_401(refused)
        got = req(strict, method, path, body, token=KEY)
        want = req(open_origin, method, path, body)
        assert got.status != 401, (method, path, got)
        assert got.status == want.status, (method, path, got, want)
        if method == "HEAD":
            continue
        got_body, want_body = got.json(), want.json()
        for b in (got_body, want_body):
            if isinstance(b, dict):
                for k in [k for k in b if k == "performance" or k.endswith("_at")]:
                    b.pop(k)
        assert got_body == want_body, (method, path)


def test_open_default_accepts_any_key_or_none(origin_factory):
    o = origin_factory()
    for i, headers in enumerate(({}, {"Authorization": f"Bearer {WRONG}"},
                                 {"Authorization": "Basic dXNlcjpwdw=="},
                                 {"Authorization": "Bearer"})):
        assert req(o, "POST", "/v2/namespaces/o", {"upsert_rows": [{"id": i}]},
                   headers=headers).status == 200
        assert req(o, "POST", "/v2/namespaces/o/query", Q, headers=headers).status == 200
    assert [r["id"] for r in rows(o, "o", token=None)] == [0, 1, 2, 3]
    # Without --test-faults there is no admin route (and with an open origin, nothing to refuse).
    assert req(o, "GET", "/_test/keys").status == 404


def test_env_twin_lists_keys(tmp_path):
    p = origin_process(str(tmp_path), str(tmp_path / "d"), name="envkeys")
    p.env = clean_env({"LAYER_ORIGIN_API_KEYS": f"{KEY},{KEY2}"})
    try:
        start(p)
        assert_401(req(p, "GET", "/v1/namespaces", token=WRONG))
        assert req(p, "GET", "/v1/namespaces", token=KEY).status == 200
        assert req(p, "GET", "/v1/namespaces", token=KEY2).status == 200
    finally:
        p.stop()


def test_replacing_the_key_set_at_run_time_revokes(strict):
    conn = http.client.HTTPConnection("127.0.0.1", strict.port, timeout=15)
    try:
        assert req(strict, "POST", "/v2/namespaces/k", {"upsert_rows": [{"id": 1}]},
                   token=KEY, conn=conn).status == 200
        # The admin route needs no key and reports a count, never the keys.
        r = req(strict, "GET", "/_test/keys")
        assert r.status == 200 and r.json() == {"enforced": True, "count": 2}, r
        assert KEY.encode() not in r.body and KEY2.encode() not in r.body
        r = req(strict, "PUT", "/_test/keys", {"keys": [KEY2]})
        assert r.status == 200 and r.json() == {"enforced": True, "count": 1}, r
        # Revoked at once, also on a connection that was admitted before.
        assert_401(req(strict, "POST", "/v2/namespaces/k", {"upsert_rows": [{"id": 2}]},
                       token=KEY, conn=conn))
        assert [x["id"] for x in rows(strict, "k", token=KEY2)] == [1]
        # Invalid replacements change nothing.
        for bad in (b"{", b'{"keys":"x"}', b'{"keys":["has space"]}', b'{"keys":[""]}'):
            r = http_request(strict, "PUT", "/_test/keys", bad)
            assert r.status == 422, (bad, r)
        assert req(strict, "GET", "/_test/keys").json() == {"enforced": True, "count": 1}
        assert req(strict, "GET", "/v1/namespaces", token=KEY2, conn=conn).status == 200
        # An empty set refuses everyone; DELETE opens the origin as if started without --api-key.
        assert req(strict, "PUT", "/_test/keys", {"keys": []}).status == 200
        assert_401(req(strict, "GET", "/v1/namespaces", token=KEY2))
        r = req(strict, "DELETE", "/_test/keys")
        assert r.status == 200 and r.json() == {"enforced": False, "count": 0}, r
        assert req(strict, "GET", "/v1/namespaces").status == 200
        assert req(strict, "PUT", "/_test/keys", {"keys": [KEY]}).status == 200
        assert_401(req(strict, "GET", "/v1/namespaces"))
        assert req(strict, "GET", "/v1/namespaces", token=KEY).status == 200
    finally:
        conn.close()


def test_admin_routes_exist_only_under_test_faults(origin_factory):
    o = origin_factory("--api-key", KEY)
    assert_401(req(o, "GET", "/_test/keys"))  # an ordinary path: the key is checked first
    assert req(o, "GET", "/_test/keys", token=KEY).status == 404
    assert req(o, "PUT", "/_test/keys", {"keys": [WRONG]}, token=KEY).status == 404
    assert req(o, "GET", "/v1/namespaces", token=KEY).status == 200
    assert_401(req(o, "GET", "/v1/namespaces", token=WRONG))


def test_gateway_in_derive_mode_relays_the_origins_401(strict, start_gateway, tmp_path):
    g = start_gateway(strict.url, "--access-log", "false", "--data-dir", str(tmp_path / "gw"))
    assert req(g, "POST", "/v2/namespaces/g", {"upsert_rows": [{"id": 1}]}, token=KEY).status == 200
    assert [x["id"] for x in rows(g, "g", token=KEY2)] == [1]
    for method, path, body in (("POST", "/v2/namespaces/g", {"upsert_rows": [{"id": 2}]}),
                               ("POST", "/v2/namespaces/g/query", Q),
                               ("GET", "/v1/namespaces/g/schema", None)):
        direct = req(strict, method, path, body, token=WRONG)
        via = req(g, method, path, body, token=WRONG)
        assert_401(direct)
        assert (via.status, via.body) == (direct.status, direct.body), (path, via, direct)
    assert [x["id"] for x in rows(strict, "g")] == [1]


def test_keys_never_reach_the_log(origin_factory):
    o = origin_factory("--api-key", KEY, "--api-key", KEY2, "--test-faults",
                       "--access-log", "true", "--log-level", "debug")
    req(o, "GET", "/v1/namespaces", token=KEY)
    req(o, "GET", "/v1/namespaces", token=WRONG)
    req(o, "PUT", "/_test/keys", {"keys": [KEY, "tpuf_ReplacementKey777"]})
    req(o, "GET", "/v1/namespaces", token="tpuf_ReplacementKey777")
    o.stop()
    out = o.output()
    assert "api_keys=<redacted> x2" in out, out[-2000:]
    for secret in (KEY, KEY2, WRONG, "tpuf_ReplacementKey777", "ReplacementKey"):
        assert secret not in out, f"{secret} found in the origin's output"


@pytest.mark.parametrize("args,env", [
    (["--api-key", "has space"], {}),
    (["--api-key", ""], {}),
    ([], {"LAYER_ORIGIN_API_KEYS": "ok,has space"}),
], ids=["space", "empty", "env-space"])
def test_invalid_api_key_configuration_exits(tmp_path, args, env):
    rc, out, err = run_layer(["origin", "--listen", "127.0.0.1:0", "--data-dir",
                              str(tmp_path / "d"), *args], env=clean_env(env), timeout=10)
    assert rc == 2, (rc, out, err)
    assert "api-key" in err, err
    assert "has space" not in err, err  # the message names the flag, never the key
