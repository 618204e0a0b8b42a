"""Graceful drain on SIGTERM: /ready flips to 503, new API requests get 503 gateway_draining with
Connection: close, in-flight requests complete, the process exits 0 within the grace period."""

import threading
import time

from layer_testlib import RawConn, build_request, http_request, wait_until
from recording_upstream import Response

TOKEN = "caller-token-drain"
AUTH = [("Authorization", f"Bearer {TOKEN}")]
QUERY_BODY = b'{"rank_by":["id","asc"],"top_k":1}'


def held_rule(release: threading.Event):
    """Requests to a "slow" path are answered only once `release` is set: in flight until then."""
    def rule(rq):
        if "slow" in rq.path:
            release.wait(60)
            return Response(body=b'{"slow":true}')
        return Response()
    return rule


def start_slow_request(gw, results):
    def run():
        try:
            results["resp"] = http_request(gw, "POST", "/v2/namespaces/slow/query",
                                           body=QUERY_BODY, token=TOKEN, timeout=30)
        except Exception as e:  # noqa: BLE001
            results["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_drain_on_sigterm(upstream, start_gateway):
    release = threading.Event()
    upstream.set_rule(held_rule(release))
    gw = start_gateway(upstream, "--drain-delay-ms", "1000", "--drain-grace-ms", "30000")
    # an idle keep-alive connection opened before the signal
    idle = RawConn(gw.port)
    idle.send(build_request("GET", "/v1/namespaces", AUTH))
    assert idle.read_response().status == 200

    r = http_request(gw, "GET", "/ready")
    assert r.status == 200 and r.json()["status"] == "ok"

    results = {}
    t = start_slow_request(gw, results)
    upstream.wait_for_requests(2)
    gw.sigterm()

    def ready_503():
        r = http_request(gw, "GET", "/ready")
        return r if r.status == 503 else None
    r = wait_until(ready_503, timeout=10.0, interval=0.01, what="/ready 503")
    assert r.content_type.startswith("application/json")
    j = r.json()
    assert j["status"] == "draining"
    assert "version" in j

    n_before = len(upstream.requests)
    r = http_request(gw, "GET", "/v2/namespaces/other/metadata", token=TOKEN)
    assert r.status == 503, r
    assert r.content_type.startswith("application/json")
    j = r.json()
    assert j["error"] == "gateway_draining"
    assert isinstance(j.get("message"), str)
    assert (r.header("connection") or "").lower() == "close"

    # the pre-existing keep-alive connection is either closed by the gateway, or a request on it
    # is refused the same way and the connection is then closed
    try:
        idle.send(build_request("GET", "/v1/namespaces", AUTH))
        r2 = idle.read_response()
    except (ConnectionError, OSError):
        r2 = None
    if r2 is not None:
        assert r2.status == 503, r2
        assert r2.json()["error"] == "gateway_draining"
        assert (r2.header("connection") or "").lower() == "close"
        assert idle.closed_by_peer(3)
    idle.close()

    # health and metrics stay up while draining
    assert http_request(gw, "GET", "/health").status == 200
    assert http_request(gw, "GET", "/metrics").status == 200
    assert len(upstream.requests) == n_before, "a request was forwarded while draining"

    # The request that was in flight at the signal still is; once the upstream answers it, it
    # completes and the gateway exits.
    assert t.is_alive() and not results, results
    assert gw.alive()
    release.set()
    t.join(10)
    assert "error" not in results, results.get("error")
    slow = results["resp"]
    assert slow.status == 200
    assert slow.body == b'{"slow":true}'

    rc = gw.wait_exit(10.0)
    assert rc is not None, "gateway did not exit once its last request completed"
    assert rc == 0
    assert "drained; exiting" in gw.output()


def test_drain_exit_bounded_by_grace(upstream, start_gateway):
    # The upstream never answers the slow request: only the grace period can end the drain.
    upstream.set_rule(lambda rq: Response(silent=True) if "slow" in rq.path else Response())
    gw = start_gateway(upstream, "--drain-grace-ms", "1000", "--drain-delay-ms", "0")
    results = {}
    start_slow_request(gw, results)
    upstream.wait_for_requests(1)
    gw.sigterm()
    rc = gw.wait_exit(10 * 1.0)
    assert rc is not None, "gateway still running long after --drain-grace-ms with a stuck request"
    assert "drain grace period over with 1 requests in flight" in gw.output(), gw.output()[-2000:]


def test_drain_does_not_wait_for_idle_connections(upstream, start_gateway):
    gw = start_gateway(upstream, "--drain-grace-ms", "20000", "--drain-delay-ms", "200",
                       "--idle-timeout-ms", "60000")
    conns = []
    for _ in range(3):
        c = RawConn(gw.port)
        c.send(build_request("GET", "/v1/namespaces", AUTH))
        assert c.read_response().status == 200
        conns.append(c)
    half_open = RawConn(gw.port)  # connected, never sent anything
    try:
        t0 = time.monotonic()
        gw.sigterm()
        rc = gw.wait_exit(5.0)
        assert rc is not None, "drain waited for idle keep-alive connections"
        assert rc == 0
        assert time.monotonic() - t0 < 5.0
    finally:
        for c in conns + [half_open]:
            c.close()


def test_sigterm_without_traffic_exits_zero(upstream, start_gateway):
    gw = start_gateway(upstream, "--drain-delay-ms", "300")
    gw.sigterm()
    assert gw.wait_exit(5.0) == 0


def test_drain_delay_keeps_answering(upstream, start_gateway):
    gw = start_gateway(upstream, "--drain-delay-ms", "1000", "--drain-grace-ms", "5000")
    gw.sigterm()
    wait_until(lambda: http_request(gw, "GET", "/ready").status == 503, timeout=10.0, interval=0.01,
               what="/ready 503")
    # With nothing in flight it keeps listening and answering after the signal (without the delay
    # it would have exited at once)...
    for _ in range(5):
        assert http_request(gw, "GET", "/ready").status == 503
    # ...then ends the drain by itself and exits cleanly.
    rc = gw.wait_exit(10 * 1.0)
    assert rc == 0
    assert "drained; exiting" in gw.output()
