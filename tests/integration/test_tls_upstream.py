"""HTTPS upstream: certificates made with the openssl CLI at test time, a TLS recording upstream,
verification against --upstream-ca-file, hostname checking, SNI and keep-alive over TLS."""

import os
import ssl
import subprocess

import pytest

from layer_testlib import http_request
from recording_upstream import Response

UPKEY = "tpuf_TlsUpstreamKey000000000000000001"
QUERY_BODY = b'{"rank_by":["id","asc"],"top_k":1}'


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _leaf(d, name, cn, san):
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write(f"basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                f"extendedKeyUsage=serverAuth\nsubjectAltName={san}\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-sha256",
             "-extfile", f"{name}.ext", cwd=d)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("certs"))
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-sha256",
             "-subj", "/CN=Layer Test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _leaf(d, "server", "localhost", "DNS:localhost,IP:127.0.0.1")
    _leaf(d, "wrong", "wrong.example", "DNS:wrong.example")
    # an unrelated CA, for "CA file given but it is not the issuer"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", "other-ca.key", "-out", "other-ca.pem", "-days", "2",
             "-subj", "/CN=Other CA", "-addext", "basicConstraints=critical,CA:TRUE", cwd=d)
    return d


def _server_ctx(certs, name):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(certs, f"{name}.pem"), os.path.join(certs, f"{name}.key"))
    return ctx


@pytest.fixture
def tls_upstream(make_upstream, certs):
    return make_upstream(ssl_context=_server_ctx(certs, "server"))


def test_https_passthrough(tls_upstream, start_gateway, certs):
    gw = start_gateway(tls_upstream.url_for("localhost"),
                       "--upstream-ca-file", os.path.join(certs, "ca.pem"),
                       "--upstream-api-key", UPKEY)
    r = http_request(gw, "POST", "/v2/namespaces/tlsns/query?x=1", body=QUERY_BODY, token=UPKEY)
    assert r.status == 200, r
    assert r.body == b'{"ok":true}'
    u = tls_upstream.wait_for_requests(1)[0]
    assert (u.method, u.target, u.body) == ("POST", "/v2/namespaces/tlsns/query?x=1", QUERY_BODY)
    assert u.header("authorization") == f"Bearer {UPKEY}"
    assert "localhost" in tls_upstream.sni_names, tls_upstream.sni_names
    host = u.header("host") or ""
    assert host in ("localhost", f"localhost:{tls_upstream.port}"), host


def test_https_keepalive_and_status_relay(tls_upstream, start_gateway, certs):
    gw = start_gateway(tls_upstream.url_for("localhost"),
                       "--upstream-ca-file", os.path.join(certs, "ca.pem"))
    tls_upstream.set_rule(lambda rq: Response(status=429, headers=[
        ("Content-Type", "application/json"), ("Retry-After", "2")],
        body=b'{"status":"error","error":"slow down"}') if "busy" in rq.path else Response())
    for i in range(30):
        assert http_request(gw, "GET", f"/v2/namespaces/n{i}/metadata", token="tok").status == 200
    r = http_request(gw, "POST", "/v2/namespaces/busy/query", body=QUERY_BODY, token="tok")
    assert r.status == 429
    assert r.header("retry-after") == "2"
    assert r.body == b'{"status":"error","error":"slow down"}'
    tls_upstream.wait_for_requests(31)
    assert len(tls_upstream.distinct_connections()) <= 4


def test_https_location_rewrite(tls_upstream, start_gateway, certs):
    gw = start_gateway(tls_upstream.url_for("localhost"),
                       "--upstream-ca-file", os.path.join(certs, "ca.pem"))
    tls_upstream.set_rule(Response(status=202, headers=[
        ("Content-Type", "application/json"), ("Preference-Applied", "respond-async"),
        ("Location", f"{tls_upstream.url_for('localhost')}/v1/namespaces/a/operations/o1")],
        body=b'{"status":"running"}'))
    r = http_request(gw, "POST", "/v2/namespaces/a", body=b'{"copy_from_namespace":"src"}', token="tok")
    assert r.status == 202
    assert r.header("location") == f"http://127.0.0.1:{gw.port}/v1/namespaces/a/operations/o1"


def test_https_ip_address_upstream(tls_upstream, start_gateway, certs):
    gw = start_gateway(tls_upstream.url_for("127.0.0.1"),
                       "--upstream-ca-file", os.path.join(certs, "ca.pem"))
    r = http_request(gw, "GET", "/v1/namespaces", token="tok")
    assert r.status == 200, r


def _assert_502(gw):
    r = http_request(gw, "GET", "/v1/namespaces", token="tok")
    assert r.status == 502, r
    assert r.content_type.startswith("application/json")
    assert r.json()["error"] == "upstream_error"


def test_https_without_ca_file_is_502(tls_upstream, start_gateway):
    gw = start_gateway(tls_upstream.url_for("localhost"), "--upstream-timeout-ms", "5000")
    _assert_502(gw)
    assert tls_upstream.requests == []


def test_https_with_unrelated_ca_is_502(tls_upstream, start_gateway, certs):
    gw = start_gateway(tls_upstream.url_for("localhost"),
                       "--upstream-ca-file", os.path.join(certs, "other-ca.pem"))
    _assert_502(gw)
    assert tls_upstream.requests == []


def test_https_wrong_host_certificate_is_502(make_upstream, start_gateway, certs):
    up = make_upstream(ssl_context=_server_ctx(certs, "wrong"))
    gw = start_gateway(up.url_for("localhost"), "--upstream-ca-file", os.path.join(certs, "ca.pem"))
    _assert_502(gw)
    assert up.requests == []


def test_https_gateway_to_plain_http_upstream_is_502(upstream, start_gateway, certs):
    gw = start_gateway(f"https://localhost:{upstream.port}",
                       "--upstream-ca-file", os.path.join(certs, "ca.pem"),
                       "--upstream-timeout-ms", "3000")
    _assert_502(gw)
