"""Configuration: invalid settings fail fast with a clear message, env vars work, flags beat env,
secrets are redacted in the startup log and never appear in any log output."""

import os

import pytest

from layer_testlib import clean_env, http_request, layer_bin, run_layer


def serve_args(tmp_path, *extra):
    return ["serve", "--port-file", str(tmp_path / "p.port"), *extra]


@pytest.mark.parametrize("args,env,words", [
    (["--listen", "nonsense", "--upstream", "http://127.0.0.1:1"], {}, ["listen"]),
    (["--listen", "127.0.0.1:99999", "--upstream", "http://127.0.0.1:1"], {}, ["listen"]),
    (["--listen", "127.0.0.1:0", "--upstream", "ftp://x"], {}, ["upstream"]),
    (["--listen", "127.0.0.1:0", "--upstream", "not a url"], {}, ["upstream"]),
    (["--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1", "--auth-mode", "keys"], {},
     ["key"]),
    (["--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1", "--auth-mode", "bogus"], {},
     ["auth"]),
    (["--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1", "--auth-mode", "keys",
      "--gateway-key", "k1:superuser"], {}, ["scope"]),
    (["--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1",
      "--max-body-bytes", "lots"], {}, ["max-body-bytes"]),
    (["--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1",
      "--upstream-ca-file", "/nonexistent/ca.pem"], {}, ["ca"]),
    (["--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1", "--no-such-flag"], {}, []),
    (["--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1"],
     {"LAYER_AUTH_MODE": "bogus"}, ["auth"]),
    (["--listen", "127.0.0.1:0"], {"TURBOPUFFER_BASE_URL": "ftp://x"}, ["upstream"]),
    (["--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1"],
     {"LAYER_AUTH_MODE": "keys"}, ["key"]),
], ids=["listen-nonsense", "listen-port-range", "upstream-ftp", "upstream-garbage",
        "keys-without-key", "auth-mode-bogus", "bad-scope", "max-body-not-number",
        "ca-file-missing", "unknown-flag", "env-auth-mode-bogus", "env-upstream-ftp",
        "env-keys-without-key"])
def test_invalid_configuration_exits_nonzero(tmp_path, args, env, words):
    rc, out, err = run_layer(serve_args(tmp_path, *args), env=clean_env(env), timeout=10)
    assert rc is not None, f"gateway kept running with invalid config {args} {env}\n{out}\n{err}"
    assert rc != 0
    assert err.strip(), "no message on stderr"
    for w in words:
        assert w.lower() in err.lower(), f"stderr does not mention {w!r}: {err}"
    assert not os.path.exists(tmp_path / "p.port") or not open(tmp_path / "p.port").read().strip()


def test_env_configuration(upstream, start_gateway):
    gw = start_gateway(None, listen=False, env={
        "LAYER_LISTEN": "127.0.0.1:0",
        "TURBOPUFFER_BASE_URL": upstream.url,
        "TURBOPUFFER_API_KEY": "tpuf_EnvKey",
        "LAYER_AUTH_MODE": "keys",
        "LAYER_GATEWAY_KEYS": "envr:read,envw:write",
        "LAYER_MAX_BODY_BYTES": "1000",
    })
    assert http_request(gw, "GET", "/v1/namespaces", token="envr").status == 200
    assert http_request(gw, "GET", "/v1/namespaces", token="envw").status == 403
    r = http_request(gw, "POST", "/v2/namespaces/a", body=b"x" * 2000, token="envw")
    assert r.status == 413
    u = upstream.wait_for_requests(1)[0]
    assert u.header("authorization") == "Bearer tpuf_EnvKey"


def test_flag_overrides_env(upstream, start_gateway):
    gw = start_gateway(upstream, "--auth-mode", "open", env={"LAYER_AUTH_MODE": "bogus"})
    assert http_request(gw, "GET", "/v1/namespaces").status == 200


def test_version_reported(upstream, start_gateway):
    gw = start_gateway(upstream)
    v = http_request(gw, "GET", "/health").json()["version"]
    assert v


SECRET_UP = "tpuf_SuperSecretUpstreamKey0123456789"
SECRET_GW = "gwkey-VerySecret-987654321"
SECRET_CALLER = "callertok-Hidden-55555"


@pytest.mark.parametrize("level", ["info", "debug"])
def test_secrets_never_logged_keys_mode(upstream, start_gateway, level):
    gw = start_gateway(upstream, "--auth-mode", "keys", "--upstream-api-key", SECRET_UP,
                       "--gateway-key", f"{SECRET_GW}:admin", "--log-level", level,
                       "--access-log", "true")
    assert http_request(gw, "GET", "/v1/namespaces", token=SECRET_GW).status == 200
    assert http_request(gw, "GET", "/v1/namespaces", token=SECRET_CALLER).status == 403
    assert http_request(gw, "POST", "/v2/namespaces/a?stainless_overload=copyFrom", token=SECRET_GW,
                        body=b'{"copy_from_namespace":{"source_namespace":"b","source_api_key":"x"}}'
                        ).status == 200
    http_request(gw, "GET", "/health")
    out = gw.output()
    assert "<redacted>" in out, "startup configuration log does not show <redacted> secrets"
    for s in (SECRET_UP, SECRET_GW, SECRET_CALLER):
        assert s not in out, f"secret {s} appears in the gateway output"
    gw.sigterm()
    gw.wait_exit(10)
    out = gw.output()
    for s in (SECRET_UP, SECRET_GW, SECRET_CALLER):
        assert s not in out


def test_secrets_never_logged_derive_mode(upstream, start_gateway):
    gw = start_gateway(upstream, "--log-level", "debug")
    assert http_request(gw, "GET", "/v1/namespaces", token=SECRET_CALLER).status == 200
    assert upstream.wait_for_requests(1)[0].header("authorization") == f"Bearer {SECRET_CALLER}"
    gw.sigterm()
    gw.wait_exit(10)
    assert SECRET_CALLER not in gw.output()


def test_secrets_from_env_redacted(upstream, start_gateway):
    gw = start_gateway(upstream, env={"TURBOPUFFER_API_KEY": SECRET_UP,
                                      "LAYER_AUTH_MODE": "keys",
                                      "LAYER_GATEWAY_KEYS": f"{SECRET_GW}:read"})
    assert http_request(gw, "GET", "/v1/namespaces", token=SECRET_GW).status == 200
    out = gw.output()
    assert "<redacted>" in out
    assert SECRET_UP not in out and SECRET_GW not in out


def test_startup_logs_effective_configuration(upstream, start_gateway):
    gw = start_gateway(upstream, "--upstream-timeout-ms", "4321", "--max-body-bytes", "7654321")
    out = gw.output()
    assert "4321" in out and "7654321" in out, out[-3000:]
    assert upstream.url in out or str(upstream.port) in out


def test_binary_exists():
    assert os.path.exists(layer_bin()), f"LAYER_BIN {layer_bin()} missing"
