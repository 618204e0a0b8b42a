// Namespace-level API: listing over several pages, schema read/update, metadata, cache warm,
// delete, and URL-level / not-found errors.
import { useServers, conformanceCase, assert, expectError, pageData } from './harness.mjs';

useServers();

conformanceCase('namespaces listing across several pages (NS-08)', async (ctx) => {
  const names = ['l-a', 'l-a-b', 'l-b', 'l-c', 'l-c.x', 'l-c_y', 'l-d', 'l-e', 'l-f', 'l-g', 'l-h', 'l-i'];
  for (const n of names) await ctx.ns(n).write({ upsert_rows: [{ id: 1 }] });
  const prefix = ctx.nsName('l-');
  // Expected order: by the key "<name>-table/" (NS-02), e.g. "l-a-b" sorts before "l-a".
  const expected = names.map((n) => ctx.nsName(n)).sort((x, y) => Buffer.compare(Buffer.from(`${x}-table/`), Buffer.from(`${y}-table/`)));
  assert.equal(expected.indexOf(ctx.nsName('l-a-b')) < expected.indexOf(ctx.nsName('l-a')), true);
  const pages = [];
  let page = await ctx.client.namespaces({ prefix, page_size: 5 });
  pages.push(pageData(page));
  while (page.hasNextPage()) {
    page = await page.getNextPage();
    pages.push(pageData(page));
  }
  assert.deepStrictEqual(pages.map((p) => p.namespaces.length), [5, 5, 2]);
  assert.deepStrictEqual(pages.flatMap((p) => p.namespaces.map((n) => n.id)), expected);
  assert.equal(pages[2].next_cursor, null);
  assert.notEqual(pages[0].next_cursor, pages[1].next_cursor);
  // Auto-pagination through the SDK iterator gives the same list.
  const all = [];
  for await (const ns of ctx.client.namespaces({ prefix, page_size: 5 })) all.push(ns.id);
  assert.deepStrictEqual(all, expected);
  // Exactly one full page: a cursor is still returned, and the next page is empty.
  const twelve = await ctx.client.namespaces({ prefix, page_size: 12 });
  assert.equal(typeof pageData(twelve).next_cursor, 'string');
  const after = await ctx.client.namespaces({ prefix, page_size: 12, cursor: pageData(twelve).next_cursor });
  assert.deepStrictEqual(pageData(after), { namespaces: [], next_cursor: null });
  const big = await ctx.client.namespaces({ prefix, page_size: 1000 });
  assert.equal(pageData(big).namespaces.length, 12);
  const tooBig = await expectError(ctx.client.namespaces({ prefix, page_size: 1001 }), 400);
  assert.equal(tooBig.body.error, '💔 Page size must be in range 1..=1000, was 1001');
  const strip = (p) => ({ ...p, next_cursor: p.next_cursor ? Buffer.from(p.next_cursor, 'base64').toString() : p.next_cursor });
  return { pages: pages.map(strip), all, after: pageData(after), tooBig };
});

conformanceCase('malformed list cursor (NS-07)', async (ctx) => {
  const e = await expectError(ctx.client.namespaces({ cursor: 'bad', page_size: 1 }), 500, 'InternalServerError');
  assert.deepStrictEqual(e.body, { status: 'error', error: "🐡 Unknown error, if this persists, please contact support!! We'll be happy to help :)" });
  return e;
});

const FTS = (o) => ({ k1: 1.2, k3: 8, b: 0.75, language: 'english', max_token_length: 39, ascii_folding: false, ...o });

conformanceCase('schema read and update (SC-03, SC-09, SC-10)', async (ctx) => {
  const ns = ctx.ns('schema');
  assert.equal(await ns.exists(), false);
  await ns.write({
    distance_metric: 'cosine_distance',
    upsert_rows: [
      { id: 1, vector: [1, 0], title: 'walrus', private: true, tags: ['a', 'b'] },
      { id: 2, vector: [0, 1], title: null, private: null, tags: ['c'] },
    ],
    schema: {
      title: { type: 'string', full_text_search: { stemming: true, remove_stopwords: true, case_sensitive: false } },
      tags: { type: '[]string', full_text_search: { stemming: false, remove_stopwords: false, case_sensitive: true } },
      vector: { type: '[2]f16', ann: true },
    },
  });
  assert.equal(await ns.exists(), true);
  const s = await ns.schema();
  const tok = s.title.full_text_search?.tokenizer;
  assert.equal(typeof tok, 'string');
  assert.deepStrictEqual(s, {
    id: { type: 'uint', filterable: null, full_text_search: null },
    title: { type: 'string', filterable: false, full_text_search: FTS({ stemming: true, remove_stopwords: true, case_sensitive: false, tokenizer: tok }) },
    tags: { type: '[]string', filterable: false, full_text_search: FTS({ stemming: false, remove_stopwords: false, case_sensitive: true, tokenizer: s.tags.full_text_search.tokenizer }) },
    private: { type: 'bool', filterable: true, full_text_search: null },
    vector: { type: '[2]f16', ann: true, filterable: null, full_text_search: null },
  });
  const m = await ns.metadata();
  assert.deepStrictEqual(m.schema.id, { type: 'uint' });
  assert.deepStrictEqual(m.schema.private, { type: 'bool', filterable: true });
  assert.deepStrictEqual(m.schema.vector, { type: '[2]f16', ann: { distance_metric: 'cosine_distance' } });

  const u = await ns.updateSchema({
    schema: {
      tags: { type: '[]string', filterable: true, full_text_search: { k1: 1.2, b: 0.75, language: 'english', stemming: false, remove_stopwords: false, case_sensitive: true, tokenizer: 'word_v3' } },
      private: { type: 'bool', filterable: false, full_text_search: false },
    },
  });
  assert.deepStrictEqual(u.tags, { type: '[]string', filterable: true, full_text_search: FTS({ stemming: false, remove_stopwords: false, case_sensitive: true, tokenizer: 'word_v3' }) });
  assert.deepStrictEqual(u.private, { type: 'bool', filterable: false, full_text_search: null });
  assert.deepStrictEqual(u.vector, { type: '[2]f16', ann: true, filterable: null, full_text_search: null });
  assert.deepStrictEqual(await ns.schema(), u);
  // Filtering on a now non-filterable attribute is an error (SC-10); on the re-enabled one it works.
  const nf = await capture4xx(ns.query({ rank_by: ['id', 'asc'], top_k: 10, filters: ['private', 'Eq', true] }));
  const ok = await ns.query({ rank_by: ['id', 'asc'], top_k: 10, filters: ['tags', 'Contains', 'c'] });
  assert.deepStrictEqual(ok.rows, [{ id: 2 }]);
  // Adding a new attribute through the schema endpoint.
  const add = await ns.updateSchema({ schema: { fresh: 'string' } });
  assert.deepStrictEqual(add.fresh, { type: 'string', filterable: true, full_text_search: null });
  const wrap = await expectError(ns.updateSchema({ schema: { schema: { category: 'string' } } }), 422);
  assert.match(wrap.body.error, /^Failed to deserialize the JSON body into the target type: schema: data did not match any variant of untagged enum AttributeSchemaInput/);
  const missing = await expectError(ctx.ns('schema-missing').schema(), 404, 'NotFoundError');
  return [s, m, u, nf, ok, add, wrap, missing];
});

async function capture4xx(p) {
  try {
    const v = await p;
    assert.fail(`expected a 4xx error, got ${JSON.stringify(v)}`);
  } catch (e) {
    if (!e.status) throw e;
    assert.ok(e.status >= 400 && e.status < 500, `expected 4xx, got ${e.status}`);
    return { status: e.status, body: e.error };
  }
}

conformanceCase('metadata of a fresh namespace and of a missing one (MD-01, MD-02, ERR-07)', async (ctx) => {
  const ns = ctx.ns('meta');
  const before = Date.now();
  await ns.write({ upsert_rows: [{ id: 1, flag: true }, { id: 2, flag: false }, { id: 3, flag: null }] });
  const m = await ns.metadata();
  assert.deepStrictEqual(m.schema, { id: { type: 'uint' }, flag: { type: 'bool', filterable: true } });
  assert.deepStrictEqual(m.index, { status: 'up-to-date' });
  assert.deepStrictEqual(m.encryption, { mode: 'default' });
  const created = Date.parse(m.created_at);
  assert.ok(Math.abs(created - before) < 60_000, `created_at ${m.created_at} is now`);
  assert.ok(Date.parse(m.updated_at) >= created);
  const miss = await expectError(ctx.ns('meta-missing').metadata(), 404, 'NotFoundError');
  assert.deepStrictEqual(miss.body, { status: 'error', error: `🤷 namespace '${ctx.nsName('meta-missing')}' was not found` });
  return [m, miss];
});

conformanceCase('hint_cache_warm and delete on missing namespaces (ERR-05, ERR-06)', async (ctx) => {
  const ns = ctx.ns('gone');
  const name = ctx.nsName('gone');
  const notFound = { status: 'error', error: `🤷 namespace '${name}' was not found` };
  const q = await expectError(ns.query({ rank_by: ['id', 'asc'], limit: 1 }), 404, 'NotFoundError');
  assert.deepStrictEqual(q.body, notFound);
  const mq = await expectError(ns.multiQuery({ queries: [{ rank_by: ['id', 'asc'], limit: 1 }] }), 404, 'NotFoundError');
  const d = await expectError(ns.deleteAll(), 404, 'NotFoundError');
  assert.deepStrictEqual(d.body, notFound);
  const ann = await expectError(ns.query({ rank_by: ['vector', 'ANN', [0.1, 0.2]], top_k: 1 }), 404, 'NotFoundError');
  const warm = await expectError(ns.hintCacheWarm(), 404, 'NotFoundError');
  const rec = await expectError(ns.recall({ num: 1, top_k: 1 }), 404, 'NotFoundError');
  // delete → write → delete again works and the name is free again.
  await ns.write({ upsert_rows: [{ id: 1 }] });
  assert.deepStrictEqual(await ns.deleteAll(), { status: 'OK' });
  assert.equal(await ns.exists(), false);
  return [q, mq, d, ann, warm, rec];
});

conformanceCase('invalid namespace names are plain-text 400s (ERR-03, ERR-04)', async (ctx) => {
  const out = [];
  const body = { rank_by: ['id', 'asc'], limit: 1 };
  const bad = await ctx.raw('POST', '/v2/namespaces/bad%20namespace/query', body);
  assert.equal(bad.status, 400);
  assert.ok(!bad.contentType.includes('json'), `content-type ${bad.contentType}`);
  assert.equal(bad.body, 'Invalid URL: Namespace contains invalid characters, must be [A-Za-z0-9-_.]');
  const long = 'a'.repeat(129);
  const tooLong = await ctx.raw('POST', `/v2/namespaces/${long}/query`, body);
  assert.equal(tooLong.status, 400);
  assert.equal(tooLong.body, `Invalid URL: Namespace \`${long}\` is too long, limit is currently 128 characters`);
  // 128 characters are fine (a missing namespace: 404 JSON).
  const ok128 = await ctx.raw('POST', `/v2/namespaces/${'a'.repeat(128)}/query`, body);
  assert.equal(ok128.status, 404);
  assert.equal(ok128.contentType, 'application/json');
  out.push(bad, tooLong, ok128);
  // The SDK surfaces the plain-text body as the error payload.
  const sdk = await expectError(ctx.client.namespace('bad namespace').query(body), 400, 'BadRequestError');
  out.push(sdk);
  return out;
});
