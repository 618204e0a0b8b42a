// Fixture P, recorded from the live service and replayed step by step (cases share state and run
// in order).
import {
  useServers, conformanceCase, assert, expectError, roundDist, pageData,
} from './harness.mjs';
import {
  P0, P1_COLUMNS, P2_COND_UPSERT, P3_COND_PATCH, P4_COND_DELETE, P5_PATCH_BY_FILTER, P6_DELETE_BY_FILTER,
} from './fixtures.mjs';

useServers();

const P = 'p';
// Datetimes may carry 9 fractional digits (SC-11); the parity harness compared them without.
const dt = (rows) => rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'string' ? v.replace(/\.0+Z$/, 'Z') : v])));
const rows3 = (res) => roundDist(res.rows, 3);

function assertWriteKeys(res, expected) {
  for (const [k, v] of Object.entries(expected)) {
    if (v === undefined) assert.ok(!(k in res) || res[k] === null, `write result must not carry ${k}: ${JSON.stringify(res)}`);
    else assert.deepStrictEqual(res[k], v, `write result ${k}`);
  }
  assert.equal(res.status, 'OK');
  assert.equal(typeof res.message, 'string');
  assert.equal(typeof res.billing?.billable_logical_bytes_written, 'number');
}

conformanceCase('P0 seed write (W-01)', async (ctx) => {
  const res = await ctx.ns(P).write(P0);
  assertWriteKeys(res, {
    rows_affected: 3, rows_upserted: 3, rows_patched: undefined, rows_deleted: undefined, upserted_ids: undefined,
  });
  return res;
});

conformanceCase('Q-P1 ANN with And filter (Q-02)', async (ctx) => {
  const res = await ctx.ns(P).query({
    rank_by: ['vector', 'ANN', [1.0, 0.0]], limit: 10,
    filters: ['And', [['category', 'Eq', 'mammal'], ['public', 'Eq', 1]]],
    include_attributes: ['category', 'score'],
  });
  assert.deepStrictEqual(rows3(res), [
    { id: 1, $dist: 0, category: 'mammal', score: 10 }, { id: 3, $dist: 0.03, category: 'mammal', score: 5 },
  ]);
  assert.equal(typeof res.billing, 'object');
  assert.equal(typeof res.performance, 'object');
  return res;
});

conformanceCase('Q-P2 kNN (Q-03)', async (ctx) => {
  const res = await ctx.ns(P).query({
    rank_by: ['vector', 'kNN', [1.0, 0.0]], limit: 2, filters: ['public', 'Eq', 1], include_attributes: ['category', 'score'],
  });
  assert.deepStrictEqual(rows3(res), [
    { id: 1, $dist: 0, category: 'mammal', score: 10 }, { id: 3, $dist: 0.03, category: 'mammal', score: 5 },
  ]);
  return res;
});

conformanceCase('Q-P3 BM25 (B-01)', async (ctx) => {
  const res = await ctx.ns(P).query({
    rank_by: ['text', 'BM25', 'quick walrus'], limit: 10, filters: ['category', 'Eq', 'mammal'], include_attributes: ['text'],
  });
  assert.deepStrictEqual(rows3(res), [
    { id: 3, $dist: 1.399, text: 'quick walrus sea mammal' }, { id: 1, $dist: 0.453, text: 'walrus narwhal arctic mammal' },
  ]);
  return res;
});

conformanceCase('Q-P4 SparseKNN (SP-01)', async (ctx) => {
  const res = await ctx.ns(P).query({
    rank_by: ['sparse_vector', 'SparseKNN', { 0: 1.0, 2: 0.1 }], limit: 10, include_attributes: ['category'],
  });
  assert.deepStrictEqual(roundDist(res.rows, 2), [
    { id: 1, $dist: 1.05, category: 'mammal' }, { id: 3, $dist: 0.82, category: 'mammal' },
  ]);
  return res;
});

conformanceCase('Q-P5 exclude_attributes (PR-03)', async (ctx) => {
  const res = await ctx.ns(P).query({ rank_by: ['id', 'asc'], limit: 2, exclude_attributes: ['vector', 'sparse_vector', 'text'] });
  assert.deepStrictEqual(dt(res.rows), [
    { id: 1, category: 'mammal', public: 1, title: 'walrus den', score: 10, tags: ['arctic', 'mammal'], published_at: '2026-05-30T00:00:00Z' },
    { id: 2, category: 'fish', public: 0, title: 'reef fish', score: 7, tags: ['fish'], published_at: '2026-05-29T00:00:00Z' },
  ]);
  return res;
});

conformanceCase('Q-P6 include_attributes false / omitted (Q-01)', async (ctx) => {
  const a = await ctx.ns(P).query({ rank_by: ['id', 'asc'], limit: 2, include_attributes: false });
  const b = await ctx.ns(P).query({ rank_by: ['id', 'asc'], limit: 2 });
  assert.deepStrictEqual(a.rows, [{ id: 1 }, { id: 2 }]);
  assert.deepStrictEqual(b.rows, [{ id: 1 }, { id: 2 }]);
  return [a, b];
});

conformanceCase('Q-P7 include_attributes true (PR-01)', async (ctx) => {
  const res = await ctx.ns(P).query({ rank_by: ['id', 'asc'], limit: 1, include_attributes: true });
  assert.deepStrictEqual(dt(res.rows), [{
    id: 1, vector: [1, 0], sparse_vector: { 0: 1, 2: 0.5 }, category: 'mammal', public: 1, title: 'walrus den',
    text: 'walrus narwhal arctic mammal', score: 10, tags: ['arctic', 'mammal'], published_at: '2026-05-30T00:00:00Z',
  }]);
  return res;
});

conformanceCase('Q-P8 include_attributes [] (PR-02)', async (ctx) => {
  const res = await ctx.ns(P).query({ rank_by: ['id', 'asc'], limit: 1, include_attributes: [] });
  assert.deepStrictEqual(res.rows, [{ id: 1 }]);
  return res;
});

conformanceCase('Q-P9 eventual consistency (Q-12)', async (ctx) => {
  const res = await ctx.ns(P).query({ rank_by: ['id', 'asc'], limit: 1, consistency: { level: 'eventual' } });
  assert.deepStrictEqual(res.rows, [{ id: 1 }]);
  return res;
});

conformanceCase('Q-P10 base64 vector output (PR-08)', async (ctx) => {
  const res = await ctx.ns(P).query({ rank_by: ['id', 'asc'], limit: 1, include_attributes: ['vector'], vector_encoding: 'base64' });
  assert.deepStrictEqual(res.rows, [{ id: 1, vector: 'AACAPwAAAAA=' }]);
  return res;
});

conformanceCase('Q-P11 limit.per (O-05)', async (ctx) => {
  const res = await ctx.ns(P).query({
    rank_by: ['id', 'asc'], limit: { total: 3, per: { attributes: ['category'], limit: 1 } }, include_attributes: ['category'],
  });
  assert.deepStrictEqual(res.rows, [{ id: 1, category: 'mammal' }, { id: 2, category: 'fish' }]);
  return res;
});

conformanceCase('Q-P12 multi-attribute order (O-02)', async (ctx) => {
  const res = await ctx.ns(P).query({ rank_by: [['category', 'asc'], ['score', 'desc']], limit: 3, include_attributes: ['category', 'score'] });
  assert.deepStrictEqual(res.rows, [
    { id: 2, category: 'fish', score: 7 }, { id: 1, category: 'mammal', score: 10 }, { id: 3, category: 'mammal', score: 5 },
  ]);
  return res;
});

conformanceCase('Q-P13 Fuzzy filter (FL-06)', async (ctx) => {
  const res = await ctx.ns(P).query({
    rank_by: ['id', 'asc'], limit: 10,
    filters: ['title', 'Fuzzy', 'walruss', { max_edit_distance: [{ min_query_chars: 6, distance: 1 }] }],
    include_attributes: ['title'],
  });
  assert.deepStrictEqual(res.rows, [{ id: 1, title: 'walrus den' }, { id: 3, title: 'quick walrus' }]);
  return res;
});

conformanceCase('P1 column upsert (W-02)', async (ctx) => {
  const res = await ctx.ns(P).write(P1_COLUMNS);
  assertWriteKeys(res, { rows_affected: 2, rows_upserted: 2, rows_patched: undefined, rows_deleted: undefined });
  return res;
});

conformanceCase('P2 conditional upsert with $ref_new (W-03)', async (ctx) => {
  const res = await ctx.ns(P).write(P2_COND_UPSERT);
  assertWriteKeys(res, { rows_affected: 2, rows_upserted: 2, upserted_ids: [4, 6], rows_patched: undefined, rows_deleted: undefined });
  return res;
});

conformanceCase('P3 conditional patch columns (W-04)', async (ctx) => {
  const res = await ctx.ns(P).write(P3_COND_PATCH);
  assertWriteKeys(res, { rows_affected: 2, rows_patched: 2, patched_ids: [4, 6], rows_upserted: undefined, rows_deleted: undefined });
  return res;
});

conformanceCase('P4 conditional delete (W-05)', async (ctx) => {
  const res = await ctx.ns(P).write(P4_COND_DELETE);
  assertWriteKeys(res, { rows_affected: 1, rows_deleted: 1, deleted_ids: [5], rows_upserted: undefined, rows_patched: undefined });
  return res;
});

conformanceCase('state after P4 (W-06)', async (ctx) => {
  const res = await ctx.ns(P).query({ rank_by: ['id', 'asc'], limit: 10, include_attributes: ['title', 'score', 'category'] });
  assert.deepStrictEqual(res.rows, [
    { id: 1, title: 'walrus den', score: 10, category: 'mammal' },
    { id: 2, title: 'reef fish', score: 7, category: 'fish' },
    { id: 3, title: 'quick walrus', score: 5, category: 'mammal' },
    { id: 4, title: 'patched column', score: 4, category: 'mammal' },
    { id: 6, title: 'patched insert', score: 100, category: 'mammal' },
  ]);
  return res;
});

conformanceCase('AG-01 grouped count with ForEachUnique', async (ctx) => {
  const res = await ctx.ns(P).query({ aggregate_by: { count: ['Count'] }, group_by: [{ tag: ['ForEachUnique', 'tags'] }], top_k: 10 });
  assert.deepStrictEqual(res.aggregation_groups, [
    { tag: 'arctic', count: 1 }, { tag: 'fish', count: 1 }, { tag: 'mammal', count: 4 }, { tag: 'sea', count: 1 },
  ]);
  assert.ok(!('rows' in res) || res.rows == null, 'aggregate query must not return rows');
  return res;
});

conformanceCase('AG-02 grouped count by category, default top_k', async (ctx) => {
  const res = await ctx.ns(P).query({ aggregate_by: { count: ['Count'] }, group_by: ['category'] });
  assert.deepStrictEqual(res.aggregation_groups, [{ category: 'fish', count: 1 }, { category: 'mammal', count: 4 }]);
  return res;
});

conformanceCase('AG-03 ungrouped Sum', async (ctx) => {
  const res = await ctx.ns(P).query({ aggregate_by: { score_sum: ['Sum', 'score'] } });
  assert.deepStrictEqual(res.aggregations, { score_sum: 126 });
  return res;
});

conformanceCase('AG-06/AG-07 aggregation validation', async (ctx) => {
  const a = await expectError(ctx.ns(P).query({ aggregate_by: { count: ['Count'], score_sum: ['Sum', 'score'] } }), 400, 'BadRequestError');
  assert.equal(a.body.error, '💔 aggregate_by currently requires exactly one function');
  const b = await expectError(ctx.ns(P).query({ aggregate_by: { count: ['Count'] }, top_k: 10 }), 400, 'BadRequestError');
  assert.equal(b.body.error, '💔 top_k is not supported in aggregation queries without group_by');
  return [a, b];
});

conformanceCase('MQ-01 multi-query', async (ctx) => {
  const res = await ctx.ns(P).multiQuery({
    queries: [{ rank_by: ['vector', 'ANN', [1.0, 0.0]], limit: 1 }, { rank_by: ['text', 'BM25', 'walrus'], limit: 2 }],
  });
  assert.equal(res.results.length, 2);
  assert.deepStrictEqual(roundDist(res.results[0].rows, 3), [{ id: 1, $dist: 0 }]);
  assert.deepStrictEqual(roundDist(res.results[1].rows, 3), [{ id: 1, $dist: 0.817 }, { id: 3, $dist: 0.817 }]);
  assert.equal(typeof res.billing, 'object');
  assert.equal(typeof res.performance, 'object');
  return res;
});

conformanceCase('P5 patch_by_filter (W-07)', async (ctx) => {
  const res = await ctx.ns(P).write(P5_PATCH_BY_FILTER);
  assertWriteKeys(res, { rows_affected: 1, rows_patched: 1, patched_ids: [2], rows_upserted: undefined });
  const q = await ctx.ns(P).query({ rank_by: ['id', 'asc'], limit: 10, include_attributes: ['category', 'score'] });
  assert.deepStrictEqual(q.rows, [
    { id: 1, category: 'mammal', score: 10 }, { id: 2, category: 'reef', score: 8 }, { id: 3, category: 'mammal', score: 5 },
    { id: 4, category: 'mammal', score: 4 }, { id: 6, category: 'mammal', score: 100 },
  ]);
  return [res, q];
});

conformanceCase('P6 delete_by_filter (W-08)', async (ctx) => {
  const res = await ctx.ns(P).write(P6_DELETE_BY_FILTER);
  assertWriteKeys(res, { rows_affected: 2, rows_deleted: 2, deleted_ids: [3, 4], rows_upserted: undefined, rows_patched: undefined });
  const q = await ctx.ns(P).query({ rank_by: ['id', 'asc'], limit: 10, include_attributes: ['category', 'score'] });
  assert.deepStrictEqual(q.rows, [
    { id: 1, category: 'mammal', score: 10 }, { id: 2, category: 'reef', score: 8 }, { id: 6, category: 'mammal', score: 100 },
  ]);
  return [res, q];
});

const FTS_DEFAULT = { k1: 1.2, b: 0.75, k3: 8, language: 'english', stemming: false, ascii_folding: false, case_sensitive: false, max_token_length: 39, tokenizer: 'word_v3' };
// remove_stopwords' default is contested (SC-05): compare everything else.
const noStop = (fts) => {
  if (!fts || typeof fts !== 'object') return fts;
  const { remove_stopwords, ...rest } = fts;
  return rest;
};

conformanceCase('schema GET representation (SC-01, SC-02)', async (ctx) => {
  const s = await ctx.ns(P).schema();
  const got = { ...s, text: { ...s.text, full_text_search: noStop(s.text?.full_text_search) } };
  assert.deepStrictEqual(got, {
    id: { type: 'uint', filterable: null, full_text_search: null },
    vector: { type: '[2]f32', ann: true, filterable: null, full_text_search: null },
    category: { type: 'string', filterable: true, full_text_search: null },
    public: { type: 'int', filterable: true, full_text_search: null },
    score: { type: 'int', filterable: true, full_text_search: null },
    tags: { type: '[]string', filterable: true, full_text_search: null },
    published_at: { type: 'datetime', filterable: true, full_text_search: null },
    title: { type: 'string', fuzzy: true, filterable: false, full_text_search: null },
    text: { type: 'string', filterable: false, full_text_search: FTS_DEFAULT },
    sparse_vector: { type: '{}f16', filterable: false, full_text_search: null },
  });
  assert.equal(await ctx.ns(P).exists(), true);
  return s;
});

conformanceCase('metadata (MD-01, SC-04)', async (ctx) => {
  const m = await ctx.ns(P).metadata();
  for (const k of ['schema', 'approx_logical_bytes', 'approx_row_count', 'created_at', 'updated_at', 'encryption', 'index']) {
    assert.ok(k in m, `metadata lacks ${k}: ${JSON.stringify(m)}`);
  }
  assert.equal(typeof m.approx_logical_bytes, 'number');
  assert.equal(typeof m.approx_row_count, 'number');
  assert.ok(!Number.isNaN(Date.parse(m.created_at)), 'created_at is a date');
  assert.ok(!Number.isNaN(Date.parse(m.updated_at)), 'updated_at is a date');
  assert.deepStrictEqual(m.index, { status: 'up-to-date' });
  assert.deepStrictEqual(m.encryption, { mode: 'default' });
  assert.deepStrictEqual(m.schema.vector.ann, { distance_metric: 'cosine_distance' });
  assert.deepStrictEqual(m.schema.id, { type: 'uint' });
  assert.equal(m.schema.category.filterable, true);
  assert.deepStrictEqual(noStop(m.schema.text.full_text_search), FTS_DEFAULT);
  // Legacy v1 path, raw (the SDK uses v2): same document, encryption possibly in the old shape.
  const v1 = await ctx.raw('GET', `/v1/namespaces/${ctx.nsName(P)}/metadata`);
  assert.equal(v1.status, 200);
  assert.equal(v1.contentType, 'application/json');
  assert.ok(JSON.stringify(v1.body.encryption) === '{"sse":true}' || JSON.stringify(v1.body.encryption) === '{"mode":"default"}',
    `v1 encryption: ${JSON.stringify(v1.body.encryption)}`);
  assert.deepStrictEqual(v1.body.schema, m.schema);
  return [m, v1];
});

conformanceCase('schema update (SC-06, SC-08)', async (ctx) => {
  const ns = ctx.ns(P);
  const a = await ns.updateSchema({ schema: { category: { type: 'string', regex: true, filterable: true } } });
  assert.equal(a.id.type, 'uint');
  assert.equal(a.category.type, 'string');
  assert.equal(a.category.regex, true);
  assert.equal(a.score.type, 'int');
  const b = await ns.updateSchema({ schema: { category: { type: 'string', regex: true, filterable: true, not_a_real_schema_option: true } } });
  assert.deepStrictEqual(b.category, { type: 'string', regex: true, filterable: true, full_text_search: null });
  const c = await expectError(ns.updateSchema({ schema: { category: 'int' } }), 400, 'BadRequestError');
  assert.deepStrictEqual(c.body, {
    status: 'error',
    error: "🙅 invalid schema update for attribute 'category': cannot change attribute type from string to int",
    attribute: 'category',
  });
  const d = await expectError(ns.updateSchema({ schema: { category: { regex: true } } }), 422, 'UnprocessableEntityError');
  assert.match(d.body.error, /^Failed to deserialize the JSON body into the target type: category: data did not match any variant of untagged enum AttributeSchemaInput/);
  const after = await ns.schema();
  assert.equal(after.category.type, 'string');
  return [a, b, c, d, after];
});

conformanceCase('copy_from_namespace (CP-01)', async (ctx) => {
  const res = await ctx.ns(`${P}-copy`).copyFrom({ source_namespace: ctx.nsName(P) });
  assert.equal(res.rows_affected, 3);
  const q = await ctx.ns(`${P}-copy`).query({ rank_by: ['id', 'asc'], limit: 10, include_attributes: ['category', 'score'] });
  assert.deepStrictEqual(q.rows, [
    { id: 1, category: 'mammal', score: 10 }, { id: 2, category: 'reef', score: 8 }, { id: 6, category: 'mammal', score: 100 },
  ]);
  return [res, q];
});

const b64json = (s) => JSON.parse(Buffer.from(s, 'base64').toString('utf8'));

conformanceCase('namespace listing and cursors (NS-01..NS-05)', async (ctx) => {
  const prefix = ctx.nsName(P);
  const page = await ctx.client.namespaces({ prefix, page_size: 10 });
  assert.deepStrictEqual(pageData(page), { namespaces: [{ id: `${prefix}-copy` }, { id: prefix }], next_cursor: null });
  assert.equal(page.hasNextPage(), false);

  const p1 = await ctx.client.namespaces({ prefix, page_size: 1 });
  assert.deepStrictEqual(p1.namespaces, [{ id: `${prefix}-copy` }]);
  assert.equal(typeof p1.next_cursor, 'string');
  assert.ok(!p1.next_cursor.endsWith('='), 'cursor is unpadded base64');
  assert.deepStrictEqual(b64json(p1.next_cursor), { continuation_token: null, start_after: `${prefix}-copy-table/` });
  const p2 = await p1.getNextPage();
  assert.deepStrictEqual(p2.namespaces, [{ id: prefix }]);
  assert.deepStrictEqual(b64json(p2.next_cursor), { continuation_token: null, start_after: `${prefix}-table/` });

  const empty = await ctx.client.namespaces({ prefix: `${prefix}-empty`, page_size: 1 });
  assert.deepStrictEqual(pageData(empty), { namespaces: [], next_cursor: null });

  const bad = await expectError(ctx.client.namespaces({ prefix, page_size: 0 }), 400, 'BadRequestError');
  assert.deepStrictEqual(bad.body, { status: 'error', error: '💔 Page size must be in range 1..=1000, was 0' });
  const badRaw = await ctx.raw('GET', `/v1/namespaces?prefix=${prefix}&page_size=bad`);
  assert.deepStrictEqual(badRaw, {
    status: 400, contentType: badRaw.contentType, body: 'Failed to deserialize query string: invalid digit found in string',
  });
  assert.ok(!badRaw.contentType.includes('json'), 'page_size=bad answers plain text');
  return {
    page, p1: { ...pageData(p1), next_cursor: b64json(p1.next_cursor) }, p2: { ...pageData(p2), next_cursor: b64json(p2.next_cursor) },
    empty, bad, badRaw,
  };
});

conformanceCase('hint_cache_warm (HW-01)', async (ctx) => {
  const { data, response } = await ctx.ns(P).hintCacheWarm().withResponse();
  assert.equal(response.status, 202);
  assert.equal(response.headers.get('preference-applied'), null);
  assert.equal(data.status, 'ACCEPTED');
  assert.equal(typeof data.message, 'string');
  return { status: response.status, data };
});

conformanceCase('recall (RC-01)', async (ctx) => {
  const res = await ctx.ns(P).recall({ num: 1, top_k: 2, filters: ['public', 'Eq', 1] });
  for (const k of ['avg_recall', 'avg_exhaustive_count', 'avg_ann_count']) assert.equal(typeof res[k], 'number', k);
  return res;
});

conformanceCase('deprecated export (EXP-01)', async (ctx) => {
  const r = await ctx.raw('GET', `/v1/namespaces/${ctx.nsName(P)}`);
  assert.equal(r.status, 200);
  assert.deepStrictEqual(r.body.ids, [1, 2, 6]);
  assert.deepStrictEqual(r.body.vectors, [[1, 0], [0, 1], [0.3, 0.7]]);
  assert.deepStrictEqual(r.body.attributes.category, ['mammal', 'reef', 'mammal']);
  assert.deepStrictEqual(r.body.attributes.score, [10, 8, 100]);
  assert.deepStrictEqual(r.body.attributes.title, ['walrus den', 'reef fish', 'patched insert']);
  assert.equal(r.body.next_cursor, null);
  return r;
});

conformanceCase('delete namespace (NS-09, ERR-05..07)', async (ctx) => {
  const ns = ctx.ns(`${P}-copy`);
  const del = await ns.deleteAll();
  assert.deepStrictEqual(del, { status: 'OK' });
  const q = await expectError(ns.query({ rank_by: ['id', 'asc'], limit: 1 }), 404, 'NotFoundError');
  assert.deepStrictEqual(q.body, { status: 'error', error: `🤷 namespace '${ctx.nsName(`${P}-copy`)}' was not found` });
  const s = await expectError(ns.schema(), 404, 'NotFoundError');
  const m = await expectError(ns.metadata(), 404, 'NotFoundError');
  const again = await expectError(ns.deleteAll(), 404, 'NotFoundError');
  assert.equal(await ns.exists(), false);
  const list = await ctx.client.namespaces({ prefix: ctx.nsName(P), page_size: 10 });
  assert.deepStrictEqual(list.namespaces, [{ id: ctx.nsName(P) }]);
  // The name is reusable at once.
  const w = await ns.write({ upsert_rows: [{ id: 1, a: 'again' }] });
  assert.equal(w.rows_upserted, 1);
  const q2 = await ns.query({ rank_by: ['id', 'asc'], limit: 10, include_attributes: true });
  assert.deepStrictEqual(q2.rows, [{ id: 1, a: 'again' }]);
  return [del, q, s, m, again, list, w, q2];
});
