"""The server processes run with a deeper glibc malloc cache (src/common/malloc_cache.h): `layer
serve` starts itself again, once and under the same process id, with GLIBC_TUNABLES setting
glibc.malloc.tcache_count, unless LAYER_MALLOC_CACHE=0 or the caller's GLIBC_TUNABLES sets it."""

from __future__ import annotations

from layer_testlib import http_request


def environ(gw) -> dict:
    with open(f"/proc/{gw.proc.pid}/environ", "rb") as f:
        items = [kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv]
    return {k.decode(): v.decode() for k, v in items}


def tcache_count(env: dict):
    for item in env.get("GLIBC_TUNABLES", "").split(":"):
        name, _, value = item.partition("=")
        if name == "glibc.malloc.tcache_count":
            return int(value)
    return None


def test_the_gateway_restarts_itself_once_with_a_deeper_malloc_cache(start_gateway):
    gw = start_gateway(None)
    env = environ(gw)  # the process Popen started is the one that serves
    assert tcache_count(env) == 128, env.get("GLIBC_TUNABLES")
    assert env.get("LAYER_MALLOC_CACHE_SET") == "1"
    assert http_request(gw, "GET", "/health").status == 200


def start(start_gateway, tmp_path, name, env):
    return start_gateway(None, "--data-dir", str(tmp_path / name), env=env, name=name)


def test_the_depth_is_configurable_and_zero_keeps_the_default(start_gateway, tmp_path):
    deep = start(start_gateway, tmp_path, "deep", {"LAYER_MALLOC_CACHE": "512"})
    assert tcache_count(environ(deep)) == 512
    plain = start(start_gateway, tmp_path, "plain", {"LAYER_MALLOC_CACHE": "0"})
    env = environ(plain)
    assert tcache_count(env) is None and "LAYER_MALLOC_CACHE_SET" not in env
    assert http_request(plain, "GET", "/health").status == 200


def test_the_callers_own_setting_and_a_bad_value_are_respected(start_gateway, tmp_path):
    own = start(start_gateway, tmp_path, "own", {"GLIBC_TUNABLES": "glibc.malloc.tcache_count=16"})
    assert tcache_count(environ(own)) == 16
    bad = start(start_gateway, tmp_path, "bad", {"LAYER_MALLOC_CACHE": "lots"})
    assert tcache_count(environ(bad)) is None
    assert "LAYER_MALLOC_CACHE=lots is not a number" in open(bad.stderr_path).read()
    assert http_request(bad, "GET", "/health").status == 200
