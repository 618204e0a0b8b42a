// Full export by paging ids (Turbopuffer's export pattern): `rank_by ["id","asc"]`, a page size,
// `["id","Gt",last]`, `include_attributes: true`, until a short page — for every id type.
import { useServers, conformanceCase, assert } from './harness.mjs';

useServers();

const PAGE = 10;
const COUNT = 27;

function uuidFor(i) {
  return `6ba7b810-9dad-41d1-80b4-${String(i).padStart(12, '0')}`;
}

const ID_TYPES = [
  { name: 'u64', id: (i) => i * 3 + 1, schema: undefined },
  { name: 'string', id: (i) => `doc-${String(i).padStart(3, '0')}`, schema: undefined },
  { name: 'uuid', id: uuidFor, schema: { id: 'uuid' } },
];

for (const t of ID_TYPES) {
  conformanceCase(`export by paging ids (${t.name} ids)`, async (ctx) => {
    const ns = ctx.ns(`export-${t.name}`);
    const rows = [];
    for (let i = 0; i < COUNT; i++) rows.push({ id: t.id(i), n: i, label: `row ${i}` });
    // Written in reverse so the export order comes from the ids, not from insertion.
    const write = { upsert_rows: [...rows].reverse() };
    if (t.schema) write.schema = t.schema;
    await ns.write(write);

    const pages = [];
    let last;
    for (;;) {
      const q = { rank_by: ['id', 'asc'], top_k: PAGE, include_attributes: true };
      if (last !== undefined) q.filters = ['id', 'Gt', last];
      const page = await ns.query(q);
      pages.push(page.rows);
      if (page.rows.length < PAGE) break;
      last = page.rows[page.rows.length - 1].id;
    }
    const all = pages.flat();
    const expected = [...rows].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    assert.equal(all.length, COUNT, 'every document exactly once');
    assert.deepStrictEqual(all.map((r) => r.id), expected.map((r) => r.id));
    assert.deepStrictEqual(all.map(({ id, n, label }) => ({ id, n, label })), expected);
    assert.deepStrictEqual(pages.map((p) => p.length), [10, 10, 7]);
    return pages;
  });
}
