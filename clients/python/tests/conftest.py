"""Fixtures: a real `layer serve` on its embedded default and a `layer origin` (tests/integration
holds the process helpers; LAYER_BIN names the binary, default build/layer)."""
import os
import socket
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("LAYER_BIN", os.path.join(ROOT, "build", "layer"))

from layer_testlib import Gateway, clean_env  # noqa: E402
from test_origin_durability import origin_process, start  # noqa: E402

API_KEY = "client-test-key"


@pytest.fixture(scope="session")
def gateway(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gw")
    g = Gateway([], clean_env(), str(tmp), "gw")
    g.argv += ["--listen", "127.0.0.1:0", "--port-file", g.port_file, "--data-dir",
               str(tmp / "data"), "--watch-stable-interval", "100ms"]
    start(g)
    yield g
    g.stop()


@pytest.fixture
def env(gateway, monkeypatch):
    """The page's environment: LAYER_GATEWAY_URL and LAYER_GATEWAY_API_KEY."""
    monkeypatch.setenv("LAYER_GATEWAY_URL", f"http://127.0.0.1:{gateway.port}")
    monkeypatch.setenv("LAYER_GATEWAY_API_KEY", API_KEY)
    for name in ("TURBOPUFFER_API_KEY", "TURBOPUFFER_API_URL"):
        monkeypatch.delenv(name, raising=False)
    return gateway


@pytest.fixture(scope="session")
def origin(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("origin")
    o = origin_process(str(tmp), str(tmp / "data"), "--api-key", "direct-key")
    start(o)
    yield o
    o.stop()


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
