"""Invalid namespace names: the origin answers 400 plain text like Turbopuffer; so does the gateway."""

from __future__ import annotations

import pytest

from layer_testlib import http_request
from test_origin_durability import TOKEN, origin_factory  # noqa: F401

INVALID_CHARS = "Invalid URL: Namespace contains invalid characters, must be [A-Za-z0-9-_.]"
LONG = "a" * 129
Q = b'{"rank_by":["id","asc"],"limit":1}'

CASES = [
    ("bad%20namespace", INVALID_CHARS),
    ("bad%2Fslash", INVALID_CHARS),
    ("caf%C3%A9", INVALID_CHARS),
    ("a%2Bb", INVALID_CHARS),
    (LONG, f"Invalid URL: Namespace `{LONG}` is too long, limit is currently 128 characters"),
]
ENDPOINTS = [
    ("POST", "/v2/namespaces/{ns}/query", Q),
    ("POST", "/v2/namespaces/{ns}", b'{"upsert_rows":[{"id":1}]}'),
    ("DELETE", "/v2/namespaces/{ns}", None),
    ("GET", "/v2/namespaces/{ns}/metadata", None),
    ("GET", "/v1/namespaces/{ns}/schema", None),
    ("GET", "/v1/namespaces/{ns}/hint_cache_warm", None),
]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    from layer_testlib import Gateway, clean_env
    from test_origin_durability import origin_process, start
    tmp = tmp_path_factory.mktemp("invalid-ns")
    o = start(origin_process(str(tmp), str(tmp / "origin-data")))
    g = Gateway([], clean_env(), str(tmp), "gw")
    g.argv += ["--listen", "127.0.0.1:0", "--port-file", g.port_file, "--upstream", o.url,
               "--access-log", "false", "--data-dir", str(tmp / "gw-data")]
    start(g)
    yield o, g
    g.stop()
    o.stop()


@pytest.mark.parametrize("ns,message", CASES, ids=["space", "slash", "unicode", "plus", "too-long"])
def test_invalid_namespace_plain_text_400(pair, ns, message):
    o, g = pair
    for method, path, body in ENDPOINTS:
        p = path.format(ns=ns)
        d = http_request(o, method, p, body, token=TOKEN)
        assert d.status == 400, (method, p, d)
        assert not d.content_type.startswith("application/json"), (method, p, d)
        assert d.body.decode() == message, (method, p, d)
        v = http_request(g, method, p, body, token=TOKEN)
        assert (v.status, v.content_type, v.body) == (d.status, d.content_type, d.body), (method, p, d, v)


def test_valid_edge_names_are_accepted(pair):
    o, g = pair
    for ns in ("a" * 128, "A-z_0.9", "x"):
        for target in (o, g):
            r = http_request(target, "POST", f"/v2/namespaces/{ns}/query", Q, token=TOKEN)
            assert r.status == 404, (ns, r)  # well-formed, just missing
            assert r.json() == {"status": "error", "error": f"🤷 namespace '{ns}' was not found"}
