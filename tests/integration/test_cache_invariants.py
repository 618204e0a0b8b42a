"""Document-cache invariants under concurrency (docs/design.md §3.2–§3.4, §4.1, §4.2).

A model-based test: several threads write, patch, delete and fetch overlapping ids of the three
Turbopuffer id types through the gateway while "noise" threads fetch the same ids unchecked (so
backfills of older reads race with newer writes). Every op on an id and the check that follows
it are serialized per id by a lock; after each op the gateway must return exactly the model:
read-your-writes, never a partial document, no resurrection after a delete, and a write the
upstream rejects changes nothing.
"""

from __future__ import annotations

import random
import threading
import time
import uuid

import pytest

from layer_testlib import wait_until
from test_cache_support import (STAMP, Stack, cache_calls, clear_cache_faults,  # noqa: F401
                                clear_origin_faults, doc, fetch, fetch_batch, keepalive,
                                origin_faults, set_cache_faults, set_origin_faults, stack,
                                stack_factory, write)

DURATION_S = 8.0
CHECKED_THREADS = 4
NOISE_THREADS = 2
NOISE_SINGLE_FRACTION = 0.5  # share of single (vs batch) fetches among the noise fetches


class IdSpace:
    def __init__(self, kind: str, ns: str, ids, schema=None):
        self.kind, self.ns, self.ids, self.schema = kind, ns, list(ids), schema

    def wire(self, doc_id, rnd: random.Random):
        """The id as a client may send it in a write (UUIDs in any accepted spelling)."""
        if self.kind == "uuid":
            return rnd.choice([doc_id, doc_id.upper(), doc_id.replace("-", "")])
        return doc_id

    def same(self, returned, doc_id) -> bool:
        if self.kind == "uuid":
            return isinstance(returned, str) and returned.lower() == doc_id
        return returned == doc_id and type(returned) is type(doc_id)


def id_spaces():
    u = [str(uuid.UUID(int=(0x6BA7B810 << 96) + i)) for i in range(1, 7)]
    return [
        IdSpace("u64", "inv_u64", [0, 1, 2, 3, 7, 2**53 + 1, 2**63 + 5]),
        IdSpace("uuid", "inv_uuid", u, schema={"id": "uuid"}),
        IdSpace("string", "inv_str", ["1", "7", "k-a", "k-b", "x y", "ü-ß", "k-c"]),
    ]


class Failure(Exception):
    pass


def run_invariants(stack: Stack, duration: float = DURATION_S):
    gw = stack.gw
    spaces = id_spaces()
    # Seed each namespace so the attribute types are fixed (a later wrongly typed write fails).
    for sp in spaces:
        body = {"upsert_rows": [{"id": sp.ids[0], "ver": 0, "a": "seed", "n": 0, "flag": True,
                                 "tags": ["s"], "c": "seed"}]}
        if sp.schema:
            body["schema"] = sp.schema
        r = write(gw, sp.ns, body)
        assert r.status == 200, r
        r = write(gw, sp.ns, {"deletes": [sp.ids[0]]})
        assert r.status == 200, r

    model = {}  # (ns, id) -> attributes dict, or None when absent
    locks = {}
    for sp in spaces:
        for i in sp.ids:
            model[(sp.ns, i)] = None
            locks[(sp.ns, i)] = threading.Lock()
    ver_lock = threading.Lock()
    ver = [0]
    failures = []
    stats = {"ops": 0, "checks": 0, "rejected_writes": 0, "noise": 0}
    stop = threading.Event()
    deadline = time.monotonic() + duration

    def next_ver() -> int:
        with ver_lock:
            ver[0] += 1
            return ver[0]

    def fail(msg: str):
        failures.append(msg)
        stop.set()
        raise Failure(msg)

    def check(conn, sp: IdSpace, doc_id, expected, rnd: random.Random, after: str):
        stats["checks"] += 1
        mode = rnd.choice(["single", "single", "batch", "projected"])
        if mode in ("single", "projected"):
            include = ["a", "ver", "c"] if mode == "projected" else None
            r = fetch(gw, sp.ns, doc_id, include=include, conn=conn)
            if expected is None:
                if r.status != 404:
                    fail(f"{sp.kind} id {doc_id!r}: after {after} expected 404 (absent), got {r}")
                return
            if r.status != 200:
                fail(f"{sp.kind} id {doc_id!r}: after {after} expected 200 {expected}, got {r}")
            body = r.json()
            want = expected if include is None else {k: v for k, v in expected.items() if k in include}
            if not sp.same(body.get("id"), doc_id) or body.get("attributes") != want:
                fail(f"{sp.kind} id {doc_id!r}: after {after} ({mode}) expected {want}, got {body} "
                     f"[x-layer-cache: {r.header('x-layer-cache')}]")
            return
        others = [rnd.choice(sp.ids) for _ in range(2)]
        ids = [doc_id, others[0], doc_id, others[1]]
        r = fetch_batch(gw, sp.ns, ids, conn=conn)
        if r.status != 200:
            fail(f"{sp.kind} batch {ids!r}: after {after} expected 200, got {r}")
        body = r.json()
        mine = [d for d in body["documents"] if sp.same(d["id"], doc_id)]
        in_missing = [m for m in body["missing"] if sp.same(m, doc_id)]
        if expected is None:
            if mine or len(in_missing) < 2:
                fail(f"{sp.kind} batch {ids!r}: after {after} expected {doc_id!r} missing (twice), "
                     f"got {body} [x-layer-cache: {r.header('x-layer-cache')}]")
            return
        if in_missing or len(mine) < 2 or any(d["attributes"] != expected for d in mine):
            fail(f"{sp.kind} batch {ids!r}: after {after} expected {doc_id!r} = {expected} (twice), "
                 f"got {body} [x-layer-cache: {r.header('x-layer-cache')}]")
        # Request order: our id comes first.
        if not sp.same(body["documents"][0]["id"], doc_id):
            fail(f"{sp.kind} batch {ids!r}: documents not in request order: {body}")

    def one_op(conn, sp: IdSpace, doc_id, rnd: random.Random) -> str:
        key = (sp.ns, doc_id)
        cur = model[key]
        op = rnd.choices(["upsert", "upsert_columns", "patch", "delete", "bad_write", "fetch"],
                         weights=[5, 2, 4, 3, 1, 3])[0]
        wid = sp.wire(doc_id, rnd)
        if op in ("upsert", "upsert_columns"):
            v = next_ver()
            attrs = {"ver": v, "a": f"a{v}", "n": v * 3, "flag": v % 2 == 0, "tags": [f"t{v}", "x"]}
            if rnd.random() < 0.5:
                attrs["c"] = f"c{v}"
            if op == "upsert":
                body = {"upsert_rows": [dict(id=wid, **attrs)]}
            else:
                body = {"upsert_columns": dict({"id": [wid]}, **{k: [x] for k, x in attrs.items()})}
            r = write(gw, sp.ns, body, conn=conn)
            if r.status != 200:
                fail(f"{sp.kind} id {doc_id!r}: {op} {body} answered {r}")
            model[key] = attrs
        elif op == "patch":
            v = next_ver()
            field = rnd.choice(["a", "c"])
            body = {"patch_rows": [{"id": wid, field: f"p{v}"}]}
            r = write(gw, sp.ns, body, conn=conn)
            if r.status != 200:
                fail(f"{sp.kind} id {doc_id!r}: patch {body} answered {r}")
            if cur is not None:  # a patch of an absent document is a no-op in Turbopuffer
                model[key] = dict(cur, **{field: f"p{v}"})
        elif op == "delete":
            r = write(gw, sp.ns, {"deletes": [wid]}, conn=conn)
            if r.status != 200:
                fail(f"{sp.kind} id {doc_id!r}: delete answered {r}")
            model[key] = None
        elif op == "bad_write":
            # "a" is a string attribute: Turbopuffer rejects the whole write; nothing may change.
            v = next_ver()
            body = {"upsert_rows": [{"id": wid, "ver": v, "a": v, "n": 1}]}
            r = write(gw, sp.ns, body, conn=conn)
            if not 400 <= r.status < 500:
                fail(f"{sp.kind} id {doc_id!r}: wrongly typed write {body} expected 4xx, got {r}")
            stats["rejected_writes"] += 1
        stats["ops"] += 1
        return f"{op} of {wid!r}"

    def checked_worker(seed: int):
        rnd = random.Random(seed)
        conn = keepalive(gw)
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                sp = rnd.choice(spaces)
                doc_id = rnd.choice(sp.ids)
                with locks[(sp.ns, doc_id)]:
                    what = one_op(conn, sp, doc_id, rnd)
                    check(conn, sp, doc_id, model[(sp.ns, doc_id)], rnd, what)
        except Failure:
            pass
        except Exception as e:  # noqa: BLE001
            failures.append(f"worker {seed}: {type(e).__name__}: {e}")
            stop.set()
        finally:
            conn.close()

    def noise_worker(seed: int):
        """Unchecked fetches of the same ids: their misses backfill concurrently with writes."""
        rnd = random.Random(seed)
        conn = keepalive(gw)
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                sp = rnd.choice(spaces)
                if rnd.random() < NOISE_SINGLE_FRACTION:
                    r = fetch(gw, sp.ns, rnd.choice(sp.ids), conn=conn)
                    ok = r.status in (200, 404)
                else:
                    r = fetch_batch(gw, sp.ns, rnd.sample(sp.ids, 3), conn=conn)
                    ok = r.status == 200
                if not ok:
                    fail(f"noise fetch in {sp.ns} answered {r}")
                stats["noise"] += 1
        except Failure:
            pass
        except Exception as e:  # noqa: BLE001
            failures.append(f"noise {seed}: {type(e).__name__}: {e}")
            stop.set()
        finally:
            conn.close()

    base = random.randrange(1 << 30)
    threads = [threading.Thread(target=checked_worker, args=(base + t,)) for t in range(CHECKED_THREADS)]
    threads += [threading.Thread(target=noise_worker, args=(base + 100 + t,))
                for t in range(NOISE_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=duration + 30)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    if not stack.gw.alive():
        tail = [l for l in stack.gw.output().splitlines() if l.strip()][-3:]
        raise AssertionError(f"seed {base}: the gateway died during the run (exit "
                             f"{stack.gw.proc.returncode}); last output: {tail}; stats {stats}")
    assert not failures, f"seed {base}: {failures[0]}  ({len(failures)} failure(s); stats {stats})"
    assert stats["ops"] > 100, f"too few operations ran: {stats}"

    # Final sweep: every id, single and batch, equals the model.
    rnd = random.Random(base)
    for sp in spaces:
        for i in sp.ids:
            check(None, sp, i, model[(sp.ns, i)], rnd, "the run (final sweep)")
    return stats


def test_concurrent_invariants_all_id_types(stack):
    run_invariants(stack)


@pytest.mark.parametrize("present", [False, True], ids=["absent", "present-uncached"])
def test_concurrent_misses_of_one_id(stack, present):
    """Coalesced concurrent misses of one id: every caller gets the upstream answer (404 when
    upstream lacks it, the row when it has it) and the gateway survives. Found crashing with heap
    corruption while writing the model test above. "present-uncached": the id carries a newer
    tombstone (deleted through the gateway) and was re-written directly upstream, so each fetch
    misses and reads upstream."""
    gw = stack.gw
    ns = "coalesce"
    assert write(gw, ns, {"upsert_rows": [{"id": 1, "v": "x"}, {"id": 5, "v": "old"}]}).status == 200
    assert write(gw, ns, {"deletes": [5]}).status == 200
    want = 404
    if present:
        assert write(stack.origin, ns, {"upsert_rows": [{"id": 5, "v": "direct"}]}).status == 200
        want = 200
    errors, answers = [], []
    deadline = time.monotonic() + 2.0

    def worker():
        conn = keepalive(gw)
        try:
            while time.monotonic() < deadline and not errors:
                r = fetch(gw, ns, 5, conn=conn)
                answers.append((r.status, r.body))
        except Exception as e:  # noqa: BLE001
            errors.append(f"{type(e).__name__}: {e}")
        finally:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    tail = [l for l in stack.gw.output().splitlines() if l.strip()][-2:]
    wrong = {(st, b) for st, b in answers if st != want}
    assert stack.gw.alive() and not errors, (f"gateway died after {len(answers)} concurrent fetches "
                                             f"of one id: {errors[:1]}; last output: {tail}; wrong "
                                             f"answers before that (expected {want}): {sorted(wrong)[:2]}")
    assert not wrong, f"expected only {want}, also got {sorted(wrong)[:3]} ({len(answers)} fetches)"
    if present:
        assert {b for _, b in answers} == {b'{"id":5,"attributes":{"v":"direct"}}'}, set(answers)
    r = fetch(gw, ns, 1)
    assert r.status == 200 and doc(r) == {"v": "x"}, r


# ---------------------------------------------------------------------------------------------
# Backfill of an older read racing with a newer write through the gateway
# ---------------------------------------------------------------------------------------------
# The cache ops a write's mirror begins with: an upsert's put, a patch's read of the cached row, a
# delete's tombstone (src/coherence/coherence.cc, Mirror).
MIRROR_OPS = ("put_if_newer_batch", "multi_get", "tombstone")


def test_backfill_never_replaces_newer_write(stack_factory):
    """A fetch miss reads v1 upstream (slowed by the origin's query latency); its backfill is held
    by cache latency while a newer write (upsert, patch or delete) goes through the gateway and
    mirrors; both cache puts are released together. Whatever the order, the newer state wins.
    Each step waits for the event that the next one needs: the origin received the read (its
    `times` budget is spent), the backfill put reached the cache, the write's mirror reached it."""
    s = stack_factory(gw_args=["--cache-op-timeout-ms", "3000"])
    gw, origin = s.gw, s.origin
    ns = "race"
    assert write(gw, ns, {"upsert_rows": [{"id": 0, "v": "seed", "w": "seed"}]}).status == 200
    results = []
    for rnd, kind in enumerate(["upsert", "patch", "delete", "upsert", "patch", "delete"]):
        doc_id = 100 + rnd
        old_stamp = int(time.time() * 1000) - 5000
        # v1 as a row written earlier through a gateway: stamped, upstream, not in this cache.
        r = write(origin, ns, {"upsert_rows": [{"id": doc_id, "v": "v1", "w": "w1", STAMP: old_stamp}]})
        assert r.status == 200, r
        calls0 = cache_calls(gw)
        # The fetch's upstream read is the only query the origin gets here (the watcher reads
        # metadata): the rule's budget is spent once the read arrived.
        set_origin_faults(origin, {"query": {"latency_ms": 300, "times": 1}})
        fetched = {}

        def do_fetch():
            fetched["r"] = fetch(gw, ns, doc_id, timeout=10)

        def do_write():
            if kind == "upsert":
                body = {"upsert_rows": [{"id": doc_id, "v": "v2", "w": "w2"}]}
            elif kind == "patch":
                body = {"patch_rows": [{"id": doc_id, "v": "v2"}]}
            else:
                body = {"deletes": [doc_id]}
            fetched["w"] = write(gw, ns, body)

        def cache_ops_begun(ops) -> int:
            calls = cache_calls(gw)
            return sum(calls[op] - calls0[op] for op in ops)

        tf = threading.Thread(target=do_fetch)
        tf.start()
        # The fetch's cache lookup is done and its upstream read is being delayed.
        wait_until(lambda: origin_faults(origin)["query"]["times"] == 0, timeout=10,
                   what="the origin to receive the fetch's read")
        set_cache_faults(gw, latency_ms=2000)  # holds the backfill put (and the write's mirror)
        # The upstream read (v1) has happened: its backfill put reached the cache and is held.
        wait_until(lambda: cache_ops_begun(["put_if_newer_batch"]) >= 1, timeout=10,
                   what="the fetch's backfill put")
        clear_origin_faults(origin)
        tw = threading.Thread(target=do_write)
        tw.start()
        # The write is applied upstream (its mirror only starts after the upstream's answer); its
        # mirror waits in the cache.
        wait_until(lambda: cache_ops_begun(MIRROR_OPS) >= 2, timeout=10,
                   what="the write's mirror to reach the cache")
        assert "w" not in fetched, fetched  # the write is answered once its mirror is done
        clear_cache_faults(gw)  # releases both cache puts at once
        tf.join(10)
        tw.join(10)
        assert fetched["w"].status == 200, fetched["w"]
        assert fetched["r"].status == 200, fetched["r"]
        expected = {"upsert": {"v": "v2", "w": "w2"}, "patch": {"v": "v2", "w": "w1"},
                    "delete": None}[kind]
        for attempt in range(3):
            r = fetch(gw, ns, doc_id)
            got = r.json()["attributes"] if r.status == 200 else r.status
            want = expected if expected is not None else 404
            assert got == want, (f"round {rnd} ({kind}): the racing fetch answered "
                                 f"{fetched['r'].json()}; fetch #{attempt + 1} afterwards answered "
                                 f"{got} [x-layer-cache: {r.header('x-layer-cache')}], expected {want}")
        results.append(fetched["r"].json()["attributes"])
    # The racing fetch read v1 every time: its read came before the write (the race was exercised).
    assert all(a.get("v") == "v1" for a in results), results
