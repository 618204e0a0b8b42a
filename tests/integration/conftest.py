"""Shared fixtures: recording upstreams and gateway processes, all torn down after each test."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from layer_testlib import Gateway, clean_env  # noqa: E402
from recording_upstream import RecordingUpstream  # noqa: E402


@pytest.fixture
def make_upstream():
    ups = []

    def _make(ssl_context=None, host="127.0.0.1") -> RecordingUpstream:
        u = RecordingUpstream(ssl_context=ssl_context, host=host)
        ups.append(u)
        return u

    yield _make
    for u in ups:
        u.stop()


@pytest.fixture
def upstream(make_upstream) -> RecordingUpstream:
    return make_upstream()


@pytest.fixture
def start_gateway(tmp_path):
    """start_gateway(upstream_or_url, *extra_args, env=None, listen=True) -> Gateway.

    Adds `--listen 127.0.0.1:0 --port-file <tmp>` and `--upstream <url>` (unless upstream is
    None), runs with an environment stripped of LAYER_*/TURBOPUFFER_* variables plus `env`, and
    waits until the port file names a port that accepts connections.
    """
    gws = []

    def _start(upstream=None, *args, env=None, listen=True, name=None) -> Gateway:
        argv = []
        if listen:
            argv += ["--listen", "127.0.0.1:0"]
        name = name or f"gw{len(gws)}"
        gw_args = list(args)
        if upstream is not None:
            url = upstream if isinstance(upstream, str) else upstream.url
            argv += ["--upstream", url]
        gw = Gateway([], clean_env(env), str(tmp_path), name)
        gw.argv += argv + ["--port-file", gw.port_file] + gw_args
        gws.append(gw)
        return gw.start()

    yield _start
    for gw in gws:
        gw.stop()
