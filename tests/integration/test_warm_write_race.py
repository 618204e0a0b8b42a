"""A warm page read while writes of its ids are in flight (docs/design.md §5.4, §4.2.6).

Two writes of one id in flight at once may be applied upstream in either order, whatever their
stamps; the gateway then leaves the id a tombstone with one write's stamp. A warm page that read
the row of the write applied first, while the other was still in flight, must not be cached: its
stamp may tie or outrank the tombstone, and the cache would then serve a row the upstream no
longer holds (found by the fault soak, tests/soak/).
"""

from __future__ import annotations

import threading

from layer_testlib import wait_until
from test_cache_support import (doc, fetch, origin_faults, set_origin_faults, stack,  # noqa: F401
                                stack_factory, strip_reserved, upstream_row, write)
from test_warm_support import start_warm, wait_job


def test_a_warm_page_read_while_two_writes_of_an_id_race_is_not_cached(stack):
    ns = "wrace"
    gw, origin = stack.gw, stack.origin
    assert write(gw, ns, {"upsert_rows": [{"id": 1, "v": "seed"}]}).status == 200

    # Write A is held at the origin before it applies (the next write to arrive gets the latency)...
    set_origin_faults(origin, {"write": {"latency_ms": 3000, "times": 1}})
    answers = {}
    a = threading.Thread(target=lambda: answers.update(
        a=write(gw, ns, {"upsert_rows": [{"id": 1, "v": "a"}]})))
    a.start()
    try:
        wait_until(lambda: origin_faults(origin)["write"]["times"] == 0, timeout=30,
                   what="write A to reach the origin")
        # ...while write B, begun after it (a newer stamp), is applied and acknowledged first.
        assert write(gw, ns, {"upsert_rows": [{"id": 1, "v": "b"}]}).status == 200
        # A warm reads B's row while A is still in flight.
        r = start_warm(gw, ns)
        assert r.status == 202, r
        j, _ = wait_job(gw, ns, r.json()["id"], timeout=30)
        assert j["status"] == "completed", j
        assert j["documents_scanned"] == 1, j
    finally:
        a.join(60)
    assert not a.is_alive() and answers["a"].status == 200, answers

    # A was applied last: the upstream holds it, and so must every fetch through the gateway.
    assert strip_reserved(upstream_row(origin, ns, 1)) == {"id": 1, "v": "a"}
    for _ in range(2):  # a miss backfills: the second fetch may be a hit
        assert doc(fetch(gw, ns, 1)) == {"v": "a"}
