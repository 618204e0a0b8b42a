"""Write stamps across gateway restarts (docs/design.md §4.2.6).

Stamps are strictly increasing in a process, so while writes come faster than one per ms they
run ahead of the wall clock. They outlive the process: in the cache after a clean stop, and in the
upstream's rows, which fetch misses backfill with their stamps. A restarted gateway that stamped
from the wall clock again gave a delete a stamp below the row it deleted, whose cached version
then won over the delete's tombstone (found by the fault soak, tests/soak/). The gateway keeps a
ceiling above its stamps in <data-dir>/stamp-ceiling and starts above it.
"""

from __future__ import annotations

import http.client
import json
import threading

import pytest

from layer_testlib import wait_until
from test_cache_support import (TOKEN, fetch, stack, stack_factory, upstream_row,  # noqa: F401
                                write)


def burst(gw, ns: str, base: int, n: int) -> None:
    c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
    for i in range(n):
        c.request("POST", f"/v2/namespaces/{ns}",
                  json.dumps({"upsert_rows": [{"id": base + i, "g": 1}]}),
                  {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        assert r.status == 200, r.status
    c.close()


@pytest.mark.parametrize("restart", ["clean", "kill9"])
def test_a_delete_after_a_restart_wins_over_rows_stamped_before_it(stack, restart):
    ns = f"stamps-{restart}"
    # Many writes at once: the stamps run ahead of the wall clock (when the machine is fast
    # enough to write more than one per ms; otherwise the test only checks the plain case).
    threads = [threading.Thread(target=burst, args=(stack.gw, ns, 10_000 + k * 100_000, 1500))
               for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
        assert not t.is_alive()
    assert write(stack.gw, ns, {"upsert_rows": [{"id": 1, "g": 0}, {"id": 2, "g": 0}]}).status == 200
    if restart == "clean":
        stack.gw.sigterm()
        assert stack.gw.wait_exit(60) is not None
    stack.gw.stop()
    stack.start_gateway()
    for i in (1, 2):  # cached again (a miss backfills the upstream's row with its stamp)
        # The backfill lands after the miss's answer: wait for it.
        wait_until(lambda: fetch(stack.gw, ns, i).header("x-layer-cache") == "hit", timeout=60,
                   what=f"id {i} to be cached again")
    assert write(stack.gw, ns, {"deletes": [1]}).status == 200
    assert write(stack.gw, ns, {"delete_by_filter": ["g", "Eq", 0]}).status == 200
    for i in (1, 2):
        assert upstream_row(stack.origin, ns, i) is None
        r = fetch(stack.gw, ns, i)
        assert r.status == 404, (i, r.header("x-layer-cache"), r.body)
