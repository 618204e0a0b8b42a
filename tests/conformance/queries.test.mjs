// Fixture F, recorded from the live service: writes in four encodings, then ranking, ordering, every
// filter operator, projection, aggregations, multi-query and query validation errors.
import {
  useServers, conformanceCase, assert, expectError, roundDist, ids, approx,
} from './harness.mjs';
import { F_WRITE, F_WRITE_COLUMNS, F_ROW_OBJECTS, F_FILTERS } from './fixtures.mjs';

useServers();

const F = 'f';
const VARIANTS = [
  ['f', F_WRITE, false], ['f-gz', F_WRITE, true], ['f-col', F_WRITE_COLUMNS, false], ['f-col-gz', F_WRITE_COLUMNS, true],
];
const DESER = 'Failed to deserialize the JSON body into the target type: ';
const stripPos = (s) => s.replace(/ at line \d+ column \d+$/, '');
const noFrac = (v) => (typeof v === 'string' ? v.replace(/\.0+Z$/, 'Z') : v);

conformanceCase('write F as rows and columns, with and without compression', async (ctx) => {
  const out = {};
  for (const [name, body, gzip] of VARIANTS) {
    assert.ok(JSON.stringify(body).length > 1024, 'body is large enough for the SDK to gzip it');
    const res = await ctx.ns(name, { gzip }).write(body);
    assert.equal(res.rows_affected, 6);
    assert.equal(res.rows_upserted, 6);
    assert.ok(!('rows_patched' in res) && !('rows_deleted' in res), JSON.stringify(res));
    out[name] = res;
  }
  // All four namespaces hold the same documents; reading through a gzip client changes nothing.
  const reads = {};
  for (const [name, , gzip] of VARIANTS) {
    const q = await ctx.ns(name, { gzip }).query({ rank_by: ['id', 'asc'], limit: 10, include_attributes: true });
    reads[name] = q.rows.map((r) => ({ ...r, published_at: noFrac(r.published_at) }));
  }
  const expected = F_ROW_OBJECTS.map((r) => ({ ...r, sparse_vector: Object.fromEntries(Object.entries(r.sparse_vector).map(([k, v]) => [k, v])) }));
  for (const [name] of VARIANTS) {
    assert.equal(reads[name].length, 6, name);
    for (let i = 0; i < 6; i++) {
      const got = reads[name][i];
      const exp = expected[i];
      assert.deepStrictEqual(Object.keys(got).sort(), Object.keys(exp).sort(), `${name} row ${i} keys`);
      for (const k of Object.keys(exp)) {
        if (k === 'sparse_vector') {
          for (const [d, w] of Object.entries(exp[k])) approx(got[k][d], w, 1e-3, `${name} row ${exp.id} sparse ${d}`);
          assert.deepStrictEqual(Object.keys(got[k]).sort(), Object.keys(exp[k]).sort());
        } else {
          assert.deepStrictEqual(got[k], exp[k], `${name} row ${exp.id} ${k}`);
        }
      }
    }
    assert.deepStrictEqual(reads[name], reads.f, `${name} equals rows write`);
  }
  return { out, reads };
});

conformanceCase('ANN on F (Q-04)', async (ctx) => {
  const res = await ctx.ns(F).query({ rank_by: ['vector', 'ANN', [0.9, 0.1]], limit: 5 });
  assert.deepStrictEqual(ids(res), [1, 3, 5, 4, 6]);
  [0.0061, 0.0090, 0.1118, 0.5809, 0.7805].forEach((d, i) => approx(res.rows[i].$dist, d, 2e-4, `$dist of ${res.rows[i].id}`));
  for (const r of res.rows) assert.deepStrictEqual(Object.keys(r).sort(), ['$dist', 'id']);
  return res;
});

conformanceCase('kNN with filter', async (ctx) => {
  const res = await ctx.ns(F).query({ rank_by: ['vector', 'kNN', [0.9, 0.1]], limit: 5, filters: ['public', 'Eq', 1] });
  assert.deepStrictEqual(ids(res), [1, 3, 4, 6]);
  return res;
});

conformanceCase('BM25 on F (B-08, B-09)', async (ctx) => {
  const ns = ctx.ns(F);
  const a = await ns.query({ rank_by: ['text', 'BM25', 'quick walrus'], limit: 5 });
  assert.deepStrictEqual(roundDist(a.rows, 3), [{ id: 3, $dist: 2.023 }, { id: 1, $dist: 1.012 }, { id: 5, $dist: 1.012 }]);
  const b = await ns.query({ rank_by: ['text', 'BM25', 'fish'], limit: 5 });
  assert.deepStrictEqual(ids(b), [6]);
  const c = await ns.query({ rank_by: ['text', 'BM25', 'clown', { last_as_prefix: true }], limit: 5 });
  assert.deepStrictEqual(ids(c), [2, 6]);
  const d = await ns.query({ rank_by: ['tokens', 'BM25', ['walrus']], limit: 5 });
  assert.deepStrictEqual(ids(d), [1, 3]);
  return [a, b, c, d];
});

conformanceCase('BM25 rank expressions Sum/Max/Product (B-10)', async (ctx) => {
  const ns = ctx.ns(F);
  const sum = await ns.query({ rank_by: ['Sum', [['text', 'BM25', 'quick'], ['Product', 2, ['category', 'Eq', 'mammal']]]], limit: 10 });
  assert.deepStrictEqual(ids(sum), [3, 5, 1]); // 2, 4, 6 score 0: omitted; 3/5 tie → id order
  approx(sum.rows[2].$dist, 2, 1e-6, 'filter-only score');
  const max = await ns.query({ rank_by: ['Max', [['text', 'BM25', 'fish'], ['Product', 1.5, ['public', 'Eq', 1]]]], limit: 10 });
  assert.deepStrictEqual(ids(max), [6, 1, 3, 4]);
  approx(max.rows[0].$dist, 1.513, 2e-3, 'BM25 fish on id 6');
  const prodLeft = await ns.query({ rank_by: ['Product', 2, ['text', 'BM25', 'quick walrus']], limit: 10 });
  const prodRight = await ns.query({ rank_by: ['Product', ['text', 'BM25', 'quick walrus'], 2], limit: 10 });
  assert.deepStrictEqual(roundDist(prodLeft.rows, 3), [{ id: 3, $dist: 4.047 }, { id: 1, $dist: 2.023 }, { id: 5, $dist: 2.023 }]);
  assert.deepStrictEqual(prodRight.rows, prodLeft.rows);
  return [sum, max, prodLeft, prodRight];
});

conformanceCase('SparseKNN on F (SP-01)', async (ctx) => {
  const res = await ctx.ns(F).query({ rank_by: ['sparse_vector', 'SparseKNN', { 0: 1.0, 2: 0.1 }], limit: 10 });
  assert.deepStrictEqual(roundDist(res.rows, 2), [{ id: 1, $dist: 1.05 }, { id: 3, $dist: 0.82 }, { id: 5, $dist: 0.39 }]);
  return res;
});

conformanceCase('attribute ordering (O-01, O-03, O-05)', async (ctx) => {
  const ns = ctx.ns(F);
  const out = {};
  for (const [label, rank_by, expected] of [
    ['score desc', ['score', 'desc'], [4, 1, 6, 2, 3, 5]],
    ['score asc', ['score', 'asc'], [5, 3, 2, 6, 1, 4]],
    ['category asc', ['category', 'asc'], [4, 2, 6, 1, 3, 5]],
    ['category asc, score desc', [['category', 'asc'], ['score', 'desc']], [4, 6, 2, 1, 3, 5]],
    ['id asc', ['id', 'asc'], [1, 2, 3, 4, 5, 6]],
    ['id desc', ['id', 'desc'], [6, 5, 4, 3, 2, 1]],
    ['published_at asc', ['published_at', 'asc'], [6, 5, 4, 2, 1, 3]],
  ]) {
    const res = await ns.query({ rank_by, limit: 10, include_attributes: ['score'] });
    assert.deepStrictEqual(ids(res), expected, label);
    for (const r of res.rows) assert.ok(!('$dist' in r), `${label}: no $dist on attribute order`);
    out[label] = res;
  }
  const per = await ns.query({
    rank_by: ['category', 'asc'], limit: { total: 5, per: { attributes: ['category'], limit: 1 } }, include_attributes: ['category', 'score'],
  });
  assert.deepStrictEqual(per.rows, [{ id: 4, category: 'bird', score: 12 }, { id: 2, category: 'fish', score: 7 }, { id: 1, category: 'mammal', score: 10 }]);
  out.per = per;
  const top = await ns.query({ rank_by: ['score', 'desc'], top_k: 2 });
  assert.deepStrictEqual(ids(top), [4, 1], 'top_k is an alias of limit');
  out.top = top;
  return out;
});

conformanceCase('every filter operator (FL-05)', async (ctx) => {
  const ns = ctx.ns(F);
  const out = [];
  for (const [filters, expected] of F_FILTERS) {
    const res = await ns.query({ rank_by: ['id', 'asc'], limit: 10, filters });
    assert.deepStrictEqual(ids(res), expected, `filter ${JSON.stringify(filters)}`);
    out.push([filters, res]);
  }
  return out;
});

conformanceCase('more filter semantics: In on arrays, datetimes, ids, nested Not', async (ctx) => {
  const ns = ctx.ns(F);
  const cases = [
    [['scores', 'In', [1, 2]], [1, 3]], // In on an array attribute = contains any (FL-02)
    [['tags', 'In', 'fish'], [2, 6]], // scalar In operand accepted (FL-02)
    [['published_at', 'Gt', '2026-05-29T00:00:00Z'], [1, 3]],
    [['published_at', 'Lte', '2026-05-27T00:00:00.000Z'], [5, 6]],
    [['id', 'In', [2, 4, 9]], [2, 4]],
    [['id', 'Gt', 4], [5, 6]],
    [['id', 'NotIn', [1, 2, 3]], [4, 5, 6]],
    [['Not', ['Not', ['category', 'Eq', 'fish']]], [2, 6]],
    [['Or', [['And', [['score', 'Gte', 9], ['public', 'Eq', 1]]], ['score', 'Eq', 3]]], [1, 4, 5, 6]],
    [['category', 'Eq', null], []],
    [['category', 'NotEq', null], [1, 2, 3, 4, 5, 6]],
  ];
  const out = [];
  for (const [filters, expected] of cases) {
    const res = await ns.query({ rank_by: ['id', 'asc'], limit: 10, filters });
    assert.deepStrictEqual(ids(res), expected, `filter ${JSON.stringify(filters)}`);
    out.push(res);
  }
  return out;
});

conformanceCase('filter type errors (FL-04, FL-08)', async (ctx) => {
  const ns = ctx.ns(F);
  const q = (filters) => ns.query({ rank_by: ['id', 'asc'], limit: 10, filters });
  const out = [];
  for (const [filters, msg] of [
    [['tags', 'ContainsAny', 'python'], "filter error in key `tags`: type mismatch, ContainsAny expects []string, but got 'python'"],
    [['tags', 'NotContainsAny', 'python'], "filter error in key `tags`: type mismatch, NotContainsAny expects []string, but got 'python'"],
    [['tags', 'Contains', ['python', 'javascript']], "filter error in key `tags`: type mismatch, Contains expects string, but got '[python, javascript]'"],
    [['tags', 'NotContains', ['python', 'javascript']], "filter error in key `tags`: type mismatch, NotContains expects string, but got '[python, javascript]'"],
    [['text', 'ContainsAllTokens', ['rust', 'ranking']], "filter error in key `text`: type mismatch, ContainsAllTokens expects string, but got '[rust, ranking]'"],
    [['tokens', 'ContainsAllTokens', 'Foo'], "filter error in key `tokens`: type mismatch, ContainsAllTokens expects []string, but got 'Foo'"],
    [['id', 'Eq', 'abc'], "filter error in key `id`: type mismatch, Eq expects uint, but got 'abc'"],
  ]) {
    const e = await expectError(q(filters), 400, 'BadRequestError');
    assert.deepStrictEqual(e.body, { status: 'error', error: msg });
    out.push(e);
  }
  return out;
});

conformanceCase('projection: include/exclude and vector encodings (PR-04..PR-08)', async (ctx) => {
  const ns = ctx.ns(F);
  const inc = await ns.query({ rank_by: ['id', 'asc'], limit: 2, include_attributes: ['name', 'scores', 'id'] });
  assert.deepStrictEqual(inc.rows, [{ id: 1, name: 'alpha', scores: [1, 5] }, { id: 2, name: 'bravo', scores: [3, 7] }]);
  const exc = await ns.query({
    rank_by: ['id', 'asc'], limit: 1,
    exclude_attributes: ['vector', 'sparse_vector', 'text', 'tokens', 'tags', 'scores', 'published_at', 'no_such_attr'],
  });
  assert.deepStrictEqual(exc.rows, [{ id: 1, category: 'mammal', public: 1, name: 'alpha', score: 10 }]);
  const b64 = await ns.query({ rank_by: ['vector', 'ANN', [1, 0]], limit: 3, include_attributes: ['vector'], vector_encoding: 'base64' });
  assert.deepStrictEqual(ids(b64), [1, 3, 5]);
  assert.equal(b64.rows[0].vector, 'AACAPwAAAAA=');
  assert.equal(b64.rows[1].vector, 'zcxMP83MTD4=');
  const flt = await ns.query({ rank_by: ['vector', 'ANN', 'zcxMP83MTD4='], limit: 1, include_attributes: ['vector'], vector_encoding: 'float' });
  assert.deepStrictEqual(roundDist(flt.rows, 4), [{ id: 3, $dist: 0, vector: [0.8, 0.2] }]);
  const both = await expectError(ns.query({ rank_by: ['id', 'asc'], limit: 1, include_attributes: ['name'], exclude_attributes: ['text'] }), 400, 'BadRequestError');
  assert.equal(both.body.error, '💔 cannot specify both include_attributes and exclude_attributes');
  const unknown = await expectError(ns.query({ rank_by: ['id', 'asc'], limit: 1, include_attributes: ['missing_attr'] }), 400, 'BadRequestError');
  assert.equal(unknown.body.error, '💔 attribute "missing_attr" not found in schema, cannot be part of `include_attributes`. consider passing `include_attributes=True` to return all attribute data instead');
  const excTrue = await expectError(ns.query({ rank_by: ['id', 'asc'], limit: 1, exclude_attributes: true }), 422, 'UnprocessableEntityError');
  assert.match(excTrue.body.error, /^Failed to deserialize the JSON body into the target type: invalid type: boolean `true`, expected a sequence/);
  return [inc, exc, b64, flt, both, unknown, excTrue];
});

conformanceCase('aggregations on F (AG-02..AG-05)', async (ctx) => {
  const ns = ctx.ns(F);
  const byCat = await ns.query({ aggregate_by: { count: ['Count'] }, group_by: ['category'], top_k: 10 });
  assert.deepStrictEqual(byCat.aggregation_groups, [{ category: 'bird', count: 1 }, { category: 'fish', count: 2 }, { category: 'mammal', count: 3 }]);
  const sum = await ns.query({ aggregate_by: { score_sum: ['Sum', 'score'] }, filters: ['public', 'Eq', 1] });
  assert.deepStrictEqual(sum.aggregations, { score_sum: 36 });
  const count = await ns.query({ aggregate_by: { count: ['Count'] }, filters: ['public', 'Eq', 1] });
  assert.deepStrictEqual(count.aggregations, { count: 4 });
  const countId = await ns.query({ aggregate_by: { count: ['Count', 'id'] }, filters: ['public', 'Eq', 1] });
  assert.deepStrictEqual(countId.aggregations, { count: 4 });
  const fe = await ns.query({ aggregate_by: { count: ['Count'] }, group_by: [{ tag: ['ForEachUnique', 'tags'] }], top_k: 10 });
  assert.deepStrictEqual(fe.aggregation_groups, [
    { tag: 'arctic', count: 1 }, { tag: 'bird', count: 1 }, { tag: 'fish', count: 2 }, { tag: 'forest', count: 1 },
    { tag: 'mammal', count: 3 }, { tag: 'reef', count: 1 }, { tag: 'sea', count: 1 }, { tag: 'sky', count: 1 },
  ]);
  const two = await ns.query({ aggregate_by: { count: ['Count'] }, group_by: ['category', 'public'], top_k: 10 });
  assert.deepStrictEqual(two.aggregation_groups, [
    { category: 'bird', public: 1, count: 1 }, { category: 'fish', public: 0, count: 1 }, { category: 'fish', public: 1, count: 1 },
    { category: 'mammal', public: 0, count: 1 }, { category: 'mammal', public: 1, count: 2 },
  ]);
  const countScore = await expectError(ns.query({ aggregate_by: { c: ['Count', 'score'] } }), 400, 'BadRequestError');
  assert.equal(countScore.body.error, '💔 aggregate_by with attributes other than "id" not yet supported');
  return [byCat, sum, count, countId, fe, two, countScore];
});

conformanceCase('multi-query (MQ-02, MQ-03)', async (ctx) => {
  const ns = ctx.ns(F);
  const res = await ns.multiQuery({
    queries: [
      { rank_by: ['vector', 'ANN', [1, 0]], limit: 2, include_attributes: ['vector'] },
      { rank_by: ['tokens', 'BM25', ['fish']], limit: 2 },
      { aggregate_by: { count: ['Count'] }, filters: ['public', 'Eq', 0] },
    ],
    rank_by: ['id', 'desc'], filters: ['public', 'Eq', 0], vector_encoding: 'base64',
  });
  assert.equal(res.results.length, 3);
  assert.deepStrictEqual(roundDist(res.results[0].rows, 4), [{ id: 1, $dist: 0, vector: 'AACAPwAAAAA=' }, { id: 3, $dist: 0.0299, vector: 'zcxMP83MTD4=' }]);
  assert.deepStrictEqual(roundDist(res.results[1].rows, 4), [{ id: 6, $dist: 1.5404 }]);
  assert.deepStrictEqual(res.results[2].aggregations, { count: 2 });
  const empty = await expectError(ns.multiQuery({ queries: [] }), 400, 'BadRequestError');
  assert.equal(empty.body.error, '💔 must send at least one sub-query');
  const tooMany = await expectError(ns.multiQuery({ queries: Array.from({ length: 17 }, () => ({ rank_by: ['id', 'asc'], limit: 1 })) }), 400, 'BadRequestError');
  assert.equal(tooMany.body.error, '💔 multi-query exceeds per-namespace concurrency budget: requires 17 permits, max is 16 (see https://turbopuffer.com/docs/limits)');
  const bad = await expectError(ns.multiQuery({ queries: 'bad' }), 422, 'UnprocessableEntityError');
  assert.match(bad.body.error, /^Failed to deserialize the JSON body into the target type: /);
  return [res, empty, tooMany, bad];
});

// MQ-03 [E]: the live text has no `queries: ` path prefix (like PR-05's exclude_attributes error).
conformanceCase('multi-query malformed queries: exact 422 text (MQ-03)', async (ctx) => {
  const ns = ctx.ns(F);
  const bad = await expectError(ns.multiQuery({ queries: 'bad' }), 422, 'UnprocessableEntityError');
  assert.equal(stripPos(bad.body.error), `${DESER}invalid type: string "bad", expected a sequence`);
  const badItem = await expectError(ns.multiQuery({ queries: ['bad'] }), 422, 'UnprocessableEntityError');
  assert.equal(stripPos(badItem.body.error), `${DESER}invalid type: string "bad", expected struct QueryRankBy`);
  return [bad, badItem];
});


conformanceCase('query validation errors (Q-09..Q-13, B-06, O-06)', async (ctx) => {
  const ns = ctx.ns(F);
  const out = [];
  for (const [body, status, msg] of [
    [{ rank_by: ['id', 'asc'], limit: 0 }, 400, '💔 top_k must be between 1 and 10000'],
    [{ rank_by: ['id', 'asc'], top_k: 10001 }, 400, '💔 top_k must be between 1 and 10000'],
    [{ rank_by: ['id', 'asc'] }, 400, '💔 rank_by queries must specify top_k or limit'],
    [{ rank_by: [], limit: 1 }, 400, '💔 rank_by cannot be empty'],
    [{ rank_by: 'bad', limit: 1 }, 422, `${DESER}data did not match any variant of enum a valid variant of RankInput`],
    [{ rank_by: ['vector', 'BAD', [1.0, 0.0]], limit: 1 }, 422, `${DESER}data did not match any variant of enum a valid variant of RankInput`],
    [{ rank_by: ['id', 'asc'], limit: 'bad' }, 422, `${DESER}data did not match any variant of untagged enum LimitInput`],
    [{ rank_by: ['id', 'asc'], limit: 1, consistency: { level: 'bad' } }, 422, `${DESER}consistency.level: unknown variant \`bad\`, expected \`strong\` or \`eventual\``],
    [{ rank_by: ['id', 'asc'], limit: 1, consistency: 'eventual' }, 422, `${DESER}consistency: invalid type: string "eventual", expected struct Consistency`],
    [{ rank_by: ['id', 'asc'], limit: 1, consistency: {} }, 422, `${DESER}consistency: missing field \`level\``],
    [{ rank_by: ['id', 'asc'], limit: 1, consistency: { level: 1 } }, 400, 'Failed to parse the request body as JSON: consistency.level: expected value'],
    [{ rank_by: ['id', 'asc'], limit: 1, vector_encoding: 'bad' }, 422, `${DESER}vector_encoding: unknown variant \`bad\`, expected \`float\` or \`base64\``],
    [{ rank_by: ['text', 'BM25', ['quick', 'fish']], limit: 10 }, 400, "💔 invalid input '[quick, fish]' for rank_by field \"text\", expecting string"],
    [{ rank_by: ['tokens', 'BM25', 'walrus'], limit: 10 }, 400, "💔 invalid input 'walrus' for rank_by field \"tokens\", expecting []string"],
    [{ rank_by: ['text', 'BM25', 'walrus'], limit: { total: 3, per: { attributes: ['category'], limit: 1 } } }, 400, '💔 `limit.per` is only supported when ranking by an attribute'],
  ]) {
    const e = await expectError(ns.query(body), status);
    assert.equal(e.body.status, 'error', JSON.stringify(body));
    assert.equal(stripPos(e.body.error), msg, JSON.stringify(body));
    out.push(e);
  }
  return out;
});
