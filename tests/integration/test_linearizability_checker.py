"""Unit tests of the linearizability checker (linearizability.py), in pure Python: hand-made
histories it must accept and ones it must reject (stale, resurrected, partial), plus histories
generated from a simulated linearizable store, so the checker is shown able both to pass and to
fail. No process is started."""

from __future__ import annotations

import random

import pytest

from linearizability import (DELETE, DELETE_BY_FILTER, OTHER, PARTIAL, PATCH, READ, RESURRECTED,
                             STALE, UPSERT, Op, SearchBudgetExceeded, apply_write, check,
                             check_key, freeze, thaw)

K = 1


def up(tok, call, ret, key=K, g=0, who="w"):
    return Op(UPSERT, key, call, ret, {"u": tok, "g": g, "x": tok}, who=who, what=tok)


def patch(tok, call, ret, key=K, who="w"):
    return Op(PATCH, key, call, ret, {"p": tok, "x": tok}, who=who, what=tok)


def delete(call, ret, key=K, who="w"):
    return Op(DELETE, key, call, ret, who=who)


def dbf(g, call, ret, who="w"):
    return Op(DELETE_BY_FILTER, None, call, ret, lambda row, g=g: row.get("g") == g, who=who,
              what=f"g == {g}")


def read(value, call, ret, key=K, who="r"):
    return Op(READ, key, call, ret, value=value, who=who)


def row(tok, g=0):
    return {"u": tok, "g": g, "x": tok}


def patched(base, ptok, g=0):
    return {"u": base, "g": g, "x": ptok, "p": ptok}


def assert_ok(history, initial=None):
    r = check(history, initial)
    assert r.linearizable, r.details()
    return r


def assert_bad(history, kind, initial=None):
    r = check(history, initial)
    assert not r.linearizable, r.details()
    assert r.count(kind) >= 1, r.details()
    return r


# ---------------------------------------------------------------------------------------------
# Histories that must pass
# ---------------------------------------------------------------------------------------------
def test_sequential_history():
    assert_ok([
        read(None, 0, 1),
        up("a", 2, 3), read(row("a"), 4, 5),
        patch("p", 6, 7), read(patched("a", "p"), 8, 9),
        delete(10, 11), read(None, 12, 13),
        patch("q", 14, 15), read(None, 16, 17),  # a patch of an absent document does nothing
        up("b", 18, 19, g=1), read(row("b", 1), 20, 21),
    ])


def test_concurrent_writes_may_take_effect_in_either_order():
    # a [0,10] and b [5,15] overlap: a read during both may see either, and the later reads
    # must agree with one order.
    assert_ok([up("a", 0, 10), up("b", 5, 15), read(row("b"), 6, 7), read(row("a"), 11, 12),
               read(row("a"), 16, 17)])
    assert_ok([up("a", 0, 10), up("b", 5, 15), read(row("a"), 11, 12), read(row("b"), 16, 17)])


def test_read_overlapping_a_write_may_see_before_or_after():
    assert_ok([up("a", 0, 1), up("b", 2, 10), read(row("a"), 3, 4), read(row("b"), 5, 6)])
    assert_ok([up("a", 0, 1), delete(2, 10), read(row("a"), 3, 4), read(None, 5, 6),
               read(None, 11, 12)])


def test_unknown_outcome_may_apply_late_or_never():
    h = [up("a", 0, 1), up("u", 2, None), read(row("a"), 3, 4), read(row("a"), 50, 51)]
    assert_ok(h)  # never applied
    assert_ok(h + [read(row("u"), 60, 61), read(row("u"), 70, 71)])  # applied late
    # An unknown delete may have removed the row, at any time after its invocation.
    assert_ok([up("a", 0, 1), delete(2, None), read(row("a"), 3, 4), read(None, 100, 101)])


def test_delete_by_filter_deletes_only_matching_rows():
    assert_ok([up("a", 0, 1, g=1), up("b", 0, 1, key=2, g=0), dbf(1, 2, 3),
               read(None, 4, 5), read(row("b", 0), 4, 5, key=2)])


def test_concurrent_patch_may_apply_to_either_base():
    # p [2,10] overlaps b [3,9]: p on a then b (row b), or b then p (b + p).
    assert_ok([up("a", 0, 1), patch("p", 2, 10), up("b", 3, 9), read(patched("b", "p"), 11, 12)])
    assert_ok([up("a", 0, 1), patch("p", 2, 10), up("b", 3, 9), read(row("b"), 11, 12)])


def test_initial_rows():
    assert_ok([read(row("i"), 0, 1), up("a", 2, 3), read(row("a"), 4, 5)], initial={K: row("i")})


# ---------------------------------------------------------------------------------------------
# Histories that must fail
# ---------------------------------------------------------------------------------------------
def test_stale_value_after_an_acknowledged_overwrite():
    assert_bad([up("a", 0, 1), up("b", 2, 3), read(row("a"), 4, 5)], STALE)


def test_stale_value_missing_an_acknowledged_patch():
    assert_bad([up("a", 0, 1), patch("p", 2, 3), read(row("a"), 4, 5)], STALE)


def test_stale_absence_after_an_acknowledged_upsert():
    assert_bad([delete(0, 1), up("a", 2, 3), read(None, 4, 5)], STALE)


def test_stale_after_an_unknown_write_was_seen():
    # u (outcome unknown) was seen at [5,6]; a, which returned before u began, cannot come back.
    assert_bad([up("a", 0, 1), up("u", 2, None), read(row("u"), 5, 6), read(row("a"), 7, 8)],
               STALE)


def test_stale_after_a_write_in_flight_was_seen():
    # b is still in flight, but a read that returned at 4 saw it: a read begun after that may not
    # return a again (a cache serving its old version while the write is applied upstream).
    assert_bad([up("a", 0, 1), up("b", 2, 20), read(row("b"), 3, 4), read(row("a"), 5, 6)],
               STALE)
    # Concurrent reads may disagree while b is in flight.
    assert_ok([up("a", 0, 1), up("b", 2, 20), read(row("b"), 3, 6), read(row("a"), 5, 7)])


def test_resurrected_after_an_acknowledged_delete():
    assert_bad([up("a", 0, 1), delete(2, 3), read(row("a"), 4, 5)], RESURRECTED)


def test_resurrected_after_an_acknowledged_delete_by_filter():
    assert_bad([up("a", 0, 1, g=1), dbf(1, 2, 3), read(row("a", 1), 4, 5)], RESURRECTED)


def test_partial_row_of_two_upserts():
    assert_bad([up("a", 0, 1), up("b", 2, 3), read({"u": "a", "g": 0, "x": "b"}, 4, 5)],
               PARTIAL)


def test_partial_patch_merged_over_the_wrong_base():
    # p returned before b was invoked: p can never apply to b's row.
    assert_bad([up("a", 0, 1), patch("p", 2, 3), up("b", 4, 5),
                read(patched("b", "p"), 6, 7)], PARTIAL)


def test_partial_patch_half_applied():
    half = {"u": "a", "g": 0, "x": "a", "p": "p"}  # p's `p`, not its `x`
    assert_bad([up("a", 0, 1), patch("p", 2, 3), read(half, 4, 5)], PARTIAL)


def test_unknown_attribute_is_partial():
    assert_bad([up("a", 0, 1), read({"u": "a", "g": 0, "x": "a", "z": 1}, 2, 3)], PARTIAL)


def test_flip_flop_between_concurrent_writes_fails_the_search():
    # Either order of a and b is fine, but not both: no classification rule applies, the search
    # rejects it.
    r = assert_bad([up("a", 0, 10), up("b", 5, 15), read(row("a"), 16, 17),
                    read(row("b"), 18, 19)], OTHER)
    bad = [k for k in r.keys if not k.linearizable]
    assert bad and bad[0].stuck_at.kind == READ


def test_only_the_bad_id_fails():
    r = check([up("a", 0, 1, key=1), read(row("a"), 2, 3, key=1),
               up("b", 0, 1, key=2), delete(2, 3, key=2), read(row("b"), 4, 5, key=2)])
    assert [k.linearizable for k in r.keys] == [True, False], r.details()
    assert r.count(RESURRECTED) == 1, r.details()


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------
def test_model_patch_null_removes_and_absent_patch_is_a_no_op():
    s = freeze(row("a"))
    p = Op(PATCH, K, 0, 1, {"g": None, "x": "q"})
    assert thaw(apply_write(s, p)) == {"u": "a", "x": "q"}
    assert apply_write(None, p) is None
    assert apply_write(s, Op(DELETE, K, 0, 1)) is None


# ---------------------------------------------------------------------------------------------
# Generated histories: a simulated linearizable store must pass; corrupting it must fail
# ---------------------------------------------------------------------------------------------
def simulate(seed: int, n_ops: int = 400, keys=(1, 2), writers: int = 3, readers: int = 3,
             unknown_rate: float = 0.08):
    """Operations of several processes on a linearizable store: each takes effect at a random
    point of its interval. Unknown-outcome writes take effect (or not) and lose their answer."""
    rng = random.Random(seed)
    procs = [f"w{i}" for i in range(writers)] + [f"r{i}" for i in range(readers)]
    free_at = {p: 0.0 for p in procs}
    planned = []
    for i in range(n_ops):
        p = rng.choice(procs)
        call = free_at[p] + rng.uniform(0.0, 2.0)
        ret = call + rng.uniform(0.1, 6.0)
        free_at[p] = ret
        point = rng.uniform(call, ret)
        key = rng.choice(keys)
        tok = f"t{i}"
        if p.startswith("r"):
            op = read(None, call, ret, key=key, who=p)
        else:
            kind = rng.choices([UPSERT, PATCH, DELETE, DELETE_BY_FILTER], [5, 3, 2, 1])[0]
            g = rng.randint(0, 1)
            if kind == UPSERT:
                op = up(tok, call, ret, key=key, g=g, who=p)
            elif kind == PATCH:
                op = patch(tok, call, ret, key=key, who=p)
            elif kind == DELETE:
                op = delete(call, ret, key=key, who=p)
            else:
                op = dbf(g, call, ret, who=p)
            if rng.random() < unknown_rate:
                op.ret = None
                if rng.random() < 0.5:
                    point = None  # never applied
                else:
                    point = call + rng.uniform(0.0, 30.0)  # applied, possibly long after
        planned.append((point, op))
    state = {k: None for k in keys}
    for point, op in sorted((x for x in planned if x[0] is not None), key=lambda x: x[0]):
        if op.kind == READ:
            op.value = thaw(state[op.key])
        elif op.kind == DELETE_BY_FILTER:
            for k in keys:
                state[k] = apply_write(state[k], op)
        else:
            state[op.key] = apply_write(state[op.key], op)
    return [op for _, op in planned]


@pytest.mark.parametrize("seed", range(12))
def test_generated_linearizable_histories_pass(seed):
    h = simulate(seed)
    r = check(h)
    assert r.linearizable, r.details()
    assert r.unknown_writes > 0 and r.reads > 0


@pytest.mark.parametrize("seed", range(12))
def test_generated_histories_with_a_stale_read_fail(seed):
    h = simulate(seed)
    # An upsert b acknowledged after an acknowledged upsert a returned: a read begun after b
    # returned that answers a's row is stale.
    # (With no acknowledged delete between a and the read: that would make it resurrected.)
    rng = random.Random(seed)
    ups = [op for op in h if op.kind == UPSERT and not op.unknown]
    deleters = [op for op in h if op.kind in (DELETE, DELETE_BY_FILTER)]
    pairs = []
    for a in ups:
        b = next((op for op in ups if op.key == a.key and op.call > a.ret), None)
        if b and not any(d.key in (a.key, None) and not d.unknown and d.ret > a.ret
                         and d.call < b.ret + 0.02 for d in deleters):
            pairs.append((a, b))
    assert pairs
    a, b = rng.choice(pairs)
    bad = read(dict(a.arg), b.ret + 0.01, b.ret + 0.02, key=a.key, who="injected")
    r = check(h + [bad])
    assert not r.linearizable, r.details()
    assert r.count(STALE) >= 1 and bad in r.bad_reads[STALE], r.details()


@pytest.mark.parametrize("seed", range(12))
def test_generated_histories_with_a_resurrected_read_fail(seed):
    h = simulate(seed)
    rng = random.Random(seed)
    ups = [op for op in h if op.kind == UPSERT and not op.unknown]
    a = rng.choice(ups[: len(ups) // 2])
    d = delete(a.ret + 0.001, a.ret + 0.002, key=a.key, who="injected")
    bad = read(dict(a.arg), d.ret + 0.001, d.ret + 0.002, key=a.key, who="injected")
    r = check(h + [d, bad])
    assert not r.linearizable, r.details()
    assert bad in r.bad_reads[RESURRECTED], r.details()


@pytest.mark.parametrize("seed", range(12))
def test_generated_histories_with_a_partial_read_fail(seed):
    h = simulate(seed)
    rng = random.Random(seed)
    ups = [op for op in h if op.kind == UPSERT]
    a, b = rng.sample([u for u in ups if u.key == ups[0].key], 2)
    bad = read({**a.arg, "x": b.arg["x"]}, 1000.0, 1001.0, key=a.key, who="injected")
    r = check(h + [bad])
    assert not r.linearizable, r.details()
    assert bad in r.bad_reads[PARTIAL], r.details()


def test_search_is_bounded_on_a_long_concurrent_history():
    # One id, 2,000 operations of 6 processes with unknown outcomes: the memoised search decides
    # well within its step budget.
    h = simulate(99, n_ops=2000, keys=(1,), unknown_rate=0.03)
    result = check_key(1, h, max_steps=2_000_000)
    assert result.linearizable


def test_budget_exhaustion_is_reported_not_passed():
    h = simulate(7, n_ops=300, keys=(1,))
    with pytest.raises(SearchBudgetExceeded):
        check_key(1, h, max_steps=10)
