"""Per-id linearizability checking of document histories (standard library only).

Each document id is a register whose value is a row (an attribute map) or absent. A history is a
list of `Op`s, each with its invocation and response times (any monotonic clock) and its result:

- writes: `upsert` (sets the whole row), `patch` (merges attributes into a present row, `None`
  removes one; a patch of an absent row does nothing, as in Turbopuffer), `delete`, and
  `delete_by_filter` (deletes the row when its predicate holds; it concerns every id);
- `read`: the row read, or `None` when the document was absent (404, `missing`).

A write's outcome is either acknowledged (`ret` is its response time) or unknown (`ret=None`: its
answer was lost or is a 5xx, so it may or may not have taken effect, at any point after its
invocation, as Knossos models an `:info` operation). Writes that certainly did not take effect
(refused with a 4xx, never sent) must be left out of the history.

`check(history)` decides, per id, whether the id's sub-history is linearizable: whether there is a
total order of its operations, consistent with real time (an operation that returned before
another was invoked comes first), in which every read returns the register's value at its place.
The search is Wing & Gong's, with Lowe's memoisation of (linearised set, state) pairs, as
Porcupine implements it; nondeterminism (an unknown outcome: applied or not) is handled with sets
of possible states. Per id only: operations naming several ids (a multi-row upsert, a
delete_by_filter) are checked as one operation per id, which is a necessary condition for the
whole history's linearizability, not a sufficient one.

Independently of the search, every read whose value is certainly wrong is classified (sufficient
conditions, each a proof on its own):

- **partial**: a row that no sequence of the writes can produce: attributes of two upserts, an
  attribute no write wrote, an attribute a later patch of the same chain should have replaced, or
  a patch merged over a base that was written only after the patch had returned;
- **resurrected**: a row derived from an upsert that returned before an acknowledged delete (or
  delete_by_filter whose predicate matches the row) was invoked, which returned before the read was
  invoked;
- **stale**: a row (or an absence) superseded by a write that was invoked after every write the
  row derives from had returned and that certainly took effect before the read was invoked (it
  was acknowledged before, or another read that returned before saw a row derived from it), with
  no delete that could come between for an absence.

A read the search rejects but no rule classifies is counted as `other`. The rules assume that
attribute values identify their writes (version tokens) and that patches do not write the
attributes delete_by_filter predicates read. An id with a classified read is not linearizable; its
search then only runs with a small budget, to confirm the rules (a search that must fail may take
exponential time). A search that exceeds its budget without a verdict counts as a failure
(`inconclusive`), never as a pass.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Dict, Hashable, Iterable, List, Optional, Sequence, Tuple

UPSERT = "upsert"
PATCH = "patch"
DELETE = "delete"
DELETE_BY_FILTER = "delete_by_filter"
READ = "read"
WRITE_KINDS = (UPSERT, PATCH, DELETE, DELETE_BY_FILTER)

INF = float("inf")


@dataclass
class Op:
    """One operation of a history.

    kind: one of UPSERT, PATCH, DELETE, DELETE_BY_FILTER, READ.
    key: the document id (None for DELETE_BY_FILTER: it concerns every id).
    call, ret: invocation and response times; ret=None for a write whose outcome is unknown.
    arg: UPSERT the row (dict), PATCH the attributes (dict; a None value removes the attribute),
         DELETE_BY_FILTER a predicate over a row (dict -> bool).
    value: READ the row read (dict, without the id), or None when absent.
    who, what: free text for reports (the thread, the request or version token).
    """

    kind: str
    key: Hashable
    call: float
    ret: Optional[float]
    arg: Any = None
    value: Any = None
    who: str = ""
    what: str = ""

    @property
    def unknown(self) -> bool:
        return self.ret is None

    @property
    def end(self) -> float:
        return INF if self.ret is None else self.ret

    def describe(self) -> str:
        ret = "unknown" if self.ret is None else f"{self.ret:.6f}"
        body = self.value if self.kind == READ else (self.what or self.arg)
        return f"{self.kind}({self.key!r}) by {self.who or '?'} [{self.call:.6f}, {ret}] {body}"


def precedes(a: Op, b: Op) -> bool:
    """Whether `a` certainly took effect before `b`: it returned before `b` was invoked."""
    return a.ret is not None and a.ret < b.call


# ---------------------------------------------------------------------------------------------
# The register model. A state is None (absent) or the row as canonical JSON text (hashable).
# ---------------------------------------------------------------------------------------------
def freeze(row: Optional[dict]) -> Optional[str]:
    if row is None:
        return None
    return json.dumps({k: v for k, v in row.items() if v is not None}, sort_keys=True,
                      separators=(",", ":"))


def thaw(state: Optional[str]) -> Optional[dict]:
    return None if state is None else json.loads(state)


def apply_write(state: Optional[str], op: Op) -> Optional[str]:
    """The state after `op` takes effect on `state`."""
    if op.kind == UPSERT:
        return freeze(op.arg)
    if op.kind == DELETE:
        return None
    if op.kind == PATCH:
        if state is None:
            return None  # a patch of an absent document does nothing
        row = thaw(state)
        for k, v in op.arg.items():
            if v is None:
                row.pop(k, None)
            else:
                row[k] = v
        return freeze(row)
    if op.kind == DELETE_BY_FILTER:
        if state is not None and op.arg(thaw(state)):
            return None
        return state
    raise ValueError(f"not a write: {op.kind}")


# ---------------------------------------------------------------------------------------------
# The search (one id)
# ---------------------------------------------------------------------------------------------
class SearchBudgetExceeded(Exception):
    pass


# The step budget of a search that only confirms a violation the rules already proved.
CONFIRM_STEPS = 200_000


@dataclass
class KeyResult:
    key: Hashable
    ops: int
    linearizable: bool
    # When not linearizable: the operation whose response the deepest search could not pass
    # (every order of the operations before it left no state it accepts), usually the bad read.
    stuck_at: Optional[Op] = None
    steps: int = 0
    # The search ran out of steps before a verdict (counted as not linearizable).
    inconclusive: bool = False


class _Entry:
    __slots__ = ("op", "is_call", "match", "prev", "next")

    def __init__(self, op: int, is_call: bool):
        self.op = op
        self.is_call = is_call
        self.match: Optional[_Entry] = None
        self.prev: Optional[_Entry] = None
        self.next: Optional[_Entry] = None


def _lift(e: _Entry) -> None:
    """Removes a call entry and its return entry from the list."""
    e.prev.next = e.next
    if e.next is not None:
        e.next.prev = e.prev
    r = e.match
    r.prev.next = r.next
    if r.next is not None:
        r.next.prev = r.prev


def _unlift(e: _Entry) -> None:
    r = e.match
    r.prev.next = r
    if r.next is not None:
        r.next.prev = r
    e.prev.next = e
    if e.next is not None:
        e.next.prev = e


def check_key(key: Hashable, ops: Sequence[Op], initial: Optional[dict] = None,
              max_steps: int = 5_000_000) -> KeyResult:
    """Whether the history of one id is linearizable (see the module docstring)."""
    n = len(ops)
    events: List[Tuple[float, int, int]] = []
    for i, op in enumerate(ops):
        events.append((op.call, 0, i))
        events.append((op.end, 1, i))
    # At equal times a call sorts before a return: the two operations count as concurrent.
    events.sort()
    head = _Entry(-1, True)
    calls: Dict[int, _Entry] = {}
    prev = head
    for _, kind, i in events:
        e = _Entry(i, kind == 0)
        if kind == 0:
            calls[i] = e
        else:
            calls[i].match = e
        e.prev = prev
        prev.next = e
        prev = e

    frozen_reads = {i: freeze(op.value) for i, op in enumerate(ops) if op.kind == READ}
    apply_memo: Dict[Tuple[Optional[str], int], Optional[str]] = {}

    def step(states: frozenset, i: int) -> frozenset:
        op = ops[i]
        if op.kind == READ:
            v = frozen_reads[i]
            return frozenset((v,)) if v in states else frozenset()
        out = set()
        for s in states:
            k = (s, i)
            if k not in apply_memo:
                apply_memo[k] = apply_write(s, op)
            out.add(apply_memo[k])
        if op.unknown:
            out |= states  # it may also never take effect
        return frozenset(out)

    state = frozenset((freeze(initial),))
    linearized = 0
    cache = set()
    stack: List[Tuple[_Entry, frozenset]] = []
    entry = head.next
    steps = 0
    deepest = -1
    stuck: Optional[int] = None
    while head.next is not None:
        steps += 1
        if steps > max_steps:
            raise SearchBudgetExceeded(f"id {key!r}: no verdict after {max_steps} steps ({n} ops)")
        if entry.is_call:
            nxt = step(state, entry.op)
            if nxt:
                bits = linearized | (1 << entry.op)
                memo = (bits, nxt)
                if memo not in cache:
                    cache.add(memo)
                    stack.append((entry, state))
                    state = nxt
                    linearized = bits
                    _lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            # The response of an operation not linearised yet: this order cannot go on.
            if len(stack) > deepest:
                deepest = len(stack)
                stuck = entry.op
            if not stack:
                return KeyResult(key, n, False, ops[stuck] if stuck is not None else None, steps)
            entry, state = stack.pop()
            linearized &= ~(1 << entry.op)
            _unlift(entry)
            entry = entry.next
    return KeyResult(key, n, True, None, steps)


# ---------------------------------------------------------------------------------------------
# Classification of wrong reads (sufficient conditions)
# ---------------------------------------------------------------------------------------------
STALE = "stale"
RESURRECTED = "resurrected"
PARTIAL = "partial"
OTHER = "other"


def explain(value: dict, writes: Sequence[Op]) -> Optional[Tuple[Op, List[Op]]]:
    """The upsert and the patches a present row can be the merge of, or None when there are
    none (a partial row). Attribute values are expected to identify their writes (version
    tokens); rows whose attributes several writes wrote are explained by any of them."""
    upserts = [w for w in writes if w.kind == UPSERT]
    patches = [w for w in writes if w.kind == PATCH]
    for base in upserts:
        row = {k: v for k, v in base.arg.items() if v is not None}
        used: List[Op] = []

        def chained(sets) -> bool:
            """A patch that may follow the base and `sets` (a predicate on its arg) joins the
            chain; False when there is none."""
            src = [p for p in patches if sets(p.arg) and not precedes(p, base)]
            if src and src[0] not in used:
                used.append(src[0])
            return bool(src)

        # Every attribute comes from the base or from a patch that may follow it, and an attribute
        # of the base missing from the row was removed by a patch of the chain.
        if not all(row.get(k) == v or chained(lambda a, k=k, v=v: a.get(k) == v)
                   for k, v in value.items()):
            continue
        if not all(k in value or chained(lambda a, k=k: k in a and a[k] is None) for k in row):
            continue
        # Every attribute a patch of the chain sets is in the row, unless another patch of the
        # chain (which may follow it) replaced or removed it.
        if all(value.get(k) == v or
               any(q is not p and k in q.arg and q.arg[k] == value.get(k) and not precedes(q, p)
                   for q in used)
               for p in used for k, v in p.arg.items()):
            return base, used
    return None


def may_delete(d: Op, rows: Sequence[dict]) -> bool:
    """Whether write `d` deletes the id when one of `rows` is there."""
    if d.kind == DELETE:
        return True
    if d.kind == DELETE_BY_FILTER:
        return any(d.arg(row) for row in rows)
    return False


def applied_by(history: Sequence[Op]) -> Dict[int, float]:
    """By id() of each write: the earliest time it is known to have taken effect: its response
    time if acknowledged, or the response time of the first read that returned a row derived
    from it."""
    writes = [w for w in history if w.kind in WRITE_KINDS]
    known = {id(w): w.ret for w in writes if w.ret is not None}
    for r in history:
        if r.kind != READ or r.value is None:
            continue
        why = explain(r.value, writes)
        if why is None:
            continue
        for w in (why[0], *why[1]):
            known[id(w)] = min(known.get(id(w), INF), r.ret)
    return known


def classify(read: Op, writes: Sequence[Op], known: Optional[Dict[int, float]] = None
             ) -> Optional[str]:
    """STALE, RESURRECTED or PARTIAL when the read is certainly wrong by one of the rules of the
    module docstring, else None (which does not make it right: the search decides that).
    `known` is applied_by() of the history (default: acknowledged writes only). Assumes that
    patches do not write the attributes delete_by_filter predicates read."""
    if known is None:
        known = {id(w): w.ret for w in writes if w.ret is not None}

    def before_read(w: Op) -> bool:  # `w` certainly took effect before the read began
        return known.get(id(w), INF) < read.call

    if read.value is None:
        rows = [w.arg for w in writes if w.kind == UPSERT]
        for w in writes:
            if w.kind != UPSERT or not before_read(w):
                continue
            # Absent after an upsert that took effect: only a delete that may come after it (and
            # before the read) explains it.
            if not any(may_delete(d, rows) and not precedes(d, w) and not precedes(read, d)
                       for d in writes):
                return STALE
        return None
    why = explain(read.value, writes)
    if why is None:
        return PARTIAL
    base, chain = why
    sources = [base, *chain]
    for d in writes:
        # Every row derived from `base` matches what `d` deletes (patches keep the attributes
        # predicates read), and nothing re-creates a row derived from `base` after `d`.
        if (not d.unknown and may_delete(d, [base.arg]) and precedes(base, d)
                and precedes(d, read)):
            return RESURRECTED
    shown = freeze(read.value)
    for w in writes:
        if w in sources or w.kind not in (UPSERT, PATCH) or not before_read(w):
            continue
        # `w` came after everything the row derives from, took effect before the read began,
        # and would have changed the row.
        if all(precedes(s, w) for s in sources) and apply_write(shown, w) != shown:
            return STALE
    return None


# ---------------------------------------------------------------------------------------------
# The whole history
# ---------------------------------------------------------------------------------------------
@dataclass
class Report:
    keys: List[KeyResult] = field(default_factory=list)
    ops: int = 0
    writes: int = 0
    unknown_writes: int = 0
    reads: int = 0
    bad_reads: Dict[str, List[Op]] = field(default_factory=lambda: defaultdict(list))

    @property
    def linearizable(self) -> bool:
        return all(k.linearizable for k in self.keys) and not any(self.bad_reads.values())

    def count(self, kind: str) -> int:
        return len(self.bad_reads.get(kind, []))

    def summary(self) -> str:
        bad = [k for k in self.keys if not k.linearizable]
        return (f"ops={self.ops} writes={self.writes} unknown_outcome={self.unknown_writes} "
                f"reads={self.reads} stale={self.count(STALE)} "
                f"resurrected={self.count(RESURRECTED)} partial={self.count(PARTIAL)} "
                f"other={self.count(OTHER)} non_linearizable_ids={len(bad)}")

    def details(self, limit: int = 5) -> str:
        lines = [self.summary()]
        for kind, reads in self.bad_reads.items():
            for r in reads[:limit]:
                lines.append(f"  {kind}: {r.describe()}")
        for k in self.keys:
            if not k.linearizable:
                at = k.stuck_at.describe() if k.stuck_at else "?"
                how = "no verdict within the search budget" if k.inconclusive else f"stuck at {at}"
                lines.append(f"  id {k.key!r} not linearizable ({k.ops} ops): {how}")
        return "\n".join(lines)


def per_key(history: Iterable[Op]) -> Dict[Hashable, List[Op]]:
    """Each id's sub-history: its own operations plus every delete_by_filter."""
    by_key: Dict[Hashable, List[Op]] = defaultdict(list)
    filters = []
    for op in history:
        if op.kind == DELETE_BY_FILTER:
            filters.append(op)
        else:
            by_key[op.key].append(op)
    for ops in by_key.values():
        ops.extend(filters)
    return by_key


def check(history: Iterable[Op], initial: Optional[Dict[Hashable, dict]] = None,
          max_steps: int = 5_000_000) -> Report:
    """Checks every id of `history` (initial rows by id, absent by default)."""
    history = list(history)
    report = Report()
    report.ops = len(history)
    report.writes = sum(1 for op in history if op.kind in WRITE_KINDS)
    report.unknown_writes = sum(1 for op in history if op.kind in WRITE_KINDS and op.unknown)
    report.reads = sum(1 for op in history if op.kind == READ)
    # Initial rows are upserts that returned before anything else began.
    for key, row in (initial or {}).items():
        history.append(Op(UPSERT, key, -INF, -INF, row, who="initial"))
    for key, ops in sorted(per_key(history).items(), key=lambda kv: repr(kv[0])):
        writes = [op for op in ops if op.kind in WRITE_KINDS]
        known = applied_by(ops)
        classified = False
        for op in ops:
            if op.kind == READ:
                kind = classify(op, writes, known)
                if kind:
                    report.bad_reads[kind].append(op)
                    classified = True
        if not classified:
            try:
                result = check_key(key, ops, None, max_steps)
            except SearchBudgetExceeded:
                result = KeyResult(key, len(ops), False, None, max_steps, inconclusive=True)
        else:
            # Already proven wrong. A failing search may take exponential time (the reads before
            # the bad one allow many orders), so it runs with a small budget, only to confirm
            # that the rules never contradict it.
            try:
                result = check_key(key, ops, None, min(max_steps, CONFIRM_STEPS))
            except SearchBudgetExceeded:
                result = KeyResult(key, len(ops), False, None, CONFIRM_STEPS)
            if result.linearizable:
                raise AssertionError(f"checker inconsistency on id {key!r}: a read was "
                                     f"classified wrong in a history the search linearised")
        report.keys.append(result)
        if not result.linearizable and not classified:
            report.bad_reads[OTHER].append(result.stuck_at or Op(READ, key, INF, INF,
                                                                 what="search budget exceeded"))
    return report
