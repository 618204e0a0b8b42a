// Write semantics: patches, deletes, by-filter counts, conditions, ids, distance metrics and the
// write-side validation errors recorded from the live service.
import { useServers, conformanceCase, assert, expectError, ids, roundDist } from './harness.mjs';

useServers();

const DESER = 'Failed to deserialize the JSON body into the target type: ';
const stripPos = (s) => s.replace(/ at line \d+ column \d+$/, '');

conformanceCase('patch rows and columns merge attributes (W-11)', async (ctx) => {
  const ns = ctx.ns('patch');
  const w = await ns.write({ upsert_rows: [{ id: 1, vector: [1, 1] }, { id: 2, vector: [2, 2] }], distance_metric: 'cosine_distance' });
  const p1 = await ns.write({ patch_rows: [{ id: 1, a: 1 }, { id: 2, b: 2 }] });
  assert.equal(p1.rows_patched, 2);
  assert.ok(!('rows_upserted' in p1));
  const p2 = await ns.write({ patch_rows: [{ id: 1, b: 1 }, { id: 2, a: 2 }], distance_metric: 'cosine_distance' });
  const q1 = await ns.query({ rank_by: ['id', 'asc'], include_attributes: ['id', 'a', 'b'], top_k: 10 });
  assert.deepStrictEqual(q1.rows, [{ id: 1, a: 1, b: 1 }, { id: 2, a: 2, b: 2 }]);
  const p3 = await ns.write({ patch_columns: { id: [1, 2], a: [11, 22], c: [1, 2] }, return_affected_ids: true });
  assert.deepStrictEqual(p3.patched_ids, [1, 2]);
  const q2 = await ns.query({ rank_by: ['id', 'asc'], include_attributes: ['a', 'b', 'c'], top_k: 10 });
  assert.deepStrictEqual(q2.rows, [{ id: 1, a: 11, b: 1, c: 1 }, { id: 2, a: 22, b: 2, c: 2 }]);
  // Patching a missing id creates nothing and is not counted.
  const p4 = await ns.write({ patch_rows: [{ id: 99, a: 1 }], return_affected_ids: true });
  assert.equal(p4.rows_patched, 0);
  assert.equal(p4.rows_affected, 0);
  const q3 = await ns.query({ rank_by: ['id', 'asc'], top_k: 10 });
  assert.deepStrictEqual(ids(q3), [1, 2]);
  return [w, p1, p2, q1, p3, q2, p4, q3];
});

conformanceCase('delete_by_filter counts (W-09) and deleting every row (W-18)', async (ctx) => {
  const ns = ctx.ns('dbf');
  const rows = [[5, 0], [6, 1], [7, 2], [8, 1], [9, 3]].map(([id, a]) => ({ id, a, vector: [0.7, 0.7] }));
  const w = await ns.write({ upsert_rows: rows, distance_metric: 'euclidean_squared' });
  const d0 = await ns.write({ delete_by_filter: ['a', 'Eq', 42] });
  assert.equal(d0.rows_affected, 0);
  const d1 = await ns.write({ delete_by_filter: ['a', 'Eq', 1], return_affected_ids: true });
  assert.equal(d1.rows_affected, 2);
  assert.deepStrictEqual(d1.deleted_ids, [6, 8]);
  assert.deepStrictEqual(ids(await ns.query({ rank_by: ['id', 'asc'], top_k: 10 })), [5, 7, 9]);
  const d2 = await ns.write({ delete_by_filter: ['a', 'Gt', 0] });
  assert.equal(d2.rows_affected, 2);
  const d3 = await ns.write({ deletes: [5] });
  assert.equal(d3.rows_deleted, 1);
  const empty = await ns.query({ rank_by: ['id', 'asc'], top_k: 100 });
  assert.deepStrictEqual(empty.rows, []);
  assert.equal(await ns.exists(), true);
  return [w, d0, d1, d2, d3, empty];
});

conformanceCase('request ordering: delete_by_filter, then patch_by_filter, then id writes (§2.2)', async (ctx) => {
  const ns = ctx.ns('order');
  await ns.write({ upsert_rows: [1, 2, 3, 4].map((id) => ({ id, g: id % 2, n: 0 })) });
  const res = await ns.write({
    delete_by_filter: ['g', 'Eq', 0], // deletes 2, 4
    patch_by_filter: { filters: ['n', 'Eq', 0], patch: { n: 1 } }, // patches 1, 3 only
    patch_rows: [{ id: 4, n: 9 }], // 4 was deleted earlier in the request: ignored
    upsert_rows: [{ id: 5, g: 1, n: 5 }],
    return_affected_ids: true,
  });
  assert.deepStrictEqual(res.deleted_ids, [2, 4]);
  assert.deepStrictEqual(res.patched_ids, [1, 3]);
  assert.deepStrictEqual(res.upserted_ids, [5]);
  const q = await ns.query({ rank_by: ['id', 'asc'], top_k: 10, include_attributes: ['n'] });
  assert.deepStrictEqual(q.rows, [{ id: 1, n: 1 }, { id: 3, n: 1 }, { id: 5, n: 5 }]);
  return [res, q];
});

conformanceCase('conditional writes: insert-if-absent and version check', async (ctx) => {
  const ns = ctx.ns('cond');
  await ns.write({ upsert_rows: [{ id: 1, version: 2, v: 'a' }, { id: 2, version: 5, v: 'b' }] });
  const ins = await ns.write({
    upsert_rows: [{ id: 1, version: 9, v: 'x' }, { id: 3, version: 1, v: 'c' }],
    upsert_condition: ['id', 'Eq', null], return_affected_ids: true,
  });
  assert.deepStrictEqual(ins.upserted_ids, [3]);
  const ver = await ns.write({
    upsert_rows: [{ id: 1, version: 3, v: 'newer' }, { id: 2, version: 4, v: 'older' }],
    upsert_condition: ['version', 'Lt', { $ref_new: 'version' }], return_affected_ids: true,
  });
  assert.deepStrictEqual(ver.upserted_ids, [1]);
  assert.equal(ver.rows_upserted, 1);
  const del = await ns.write({ deletes: [1, 2], delete_condition: ['v', 'Eq', 'b'], return_affected_ids: true });
  assert.deepStrictEqual(del.deleted_ids, [2]);
  const q = await ns.query({ rank_by: ['id', 'asc'], top_k: 10, include_attributes: ['v', 'version'] });
  assert.deepStrictEqual(q.rows, [{ id: 1, v: 'newer', version: 3 }, { id: 3, v: 'c', version: 1 }]);
  return [ins, ver, del, q];
});

conformanceCase('string ids and filters on ids (ID-11, FL-09)', async (ctx) => {
  const ns = ctx.ns('strid');
  const w = await ns.write({
    upsert_columns: { id: ['a', 'b', 'c'], vector: [[0, 0], [0.1, 0.1], [0.2, 0.2]] }, distance_metric: 'euclidean_squared',
  });
  const w2 = await ns.write({ upsert_rows: [{ id: 'd', vector: [0.3, 0.3] }, { id: 'e', vector: [0.4, 0.4] }] });
  const q = await ns.query({ rank_by: ['vector', 'ANN', [0, 0]], top_k: 10, filters: ['id', 'In', ['a', 'b', 'c', 'd', 'e']] });
  assert.deepStrictEqual(roundDist(q.rows, 4), [
    { id: 'a', $dist: 0 }, { id: 'b', $dist: 0.02 }, { id: 'c', $dist: 0.08 }, { id: 'd', $dist: 0.18 }, { id: 'e', $dist: 0.32 },
  ]);
  const d = await ns.write({ deletes: ['c'] });
  assert.equal(d.rows_deleted, 1);
  const mismatch = await expectError(ns.query({ rank_by: ['id', 'asc'], top_k: 1, filters: ['id', 'Eq', 1] }), 400);
  assert.equal(mismatch.body.error, "filter error in key `id`: type mismatch, Eq expects string, but got '1'");
  return [w, w2, q, d, mismatch];
});

const U = ['769c134d-07b8-4225-954a-b6cc5ffc320c', '769c134d-07b8-4225-954a-b6cc5ffc320d', '769c134d-07b8-4225-954a-b6cc5ffc320e', '769c134d-07b8-4225-954a-b6cc5ffc320f'];

conformanceCase('uuid ids: canonicalisation in writes, queries, filters, patches, deletes (ID-01..ID-07, W-17)', async (ctx) => {
  const ns = ctx.ns('uuid');
  const bad = await expectError(ctx.ns('uuid-bad').write({ schema: { id: 'uuid', title: 'string' }, upsert_rows: [{ id: 'not-a-uuid', title: 'bad' }] }), 400);
  assert.equal(bad.body.error, '💔 namespace ID type is uuid, but a written ID could not be parsed as uuid');
  await expectError(ctx.ns('uuid-bad').metadata(), 404);
  const w = await ns.write({
    schema: { id: 'uuid', title: 'string' },
    upsert_rows: [
      { id: '769C134D-07B8-4225-954A-B6CC5FFC320C', title: 'row-0' }, { id: '769c134d07b84225954ab6cc5ffc320d', title: 'row-1' },
      { id: '{769c134d-07b8-4225-954a-b6cc5ffc320e}', title: 'row-2' }, { id: 'urn:uuid:769c134d-07b8-4225-954a-b6cc5ffc320f', title: 'row-3' },
    ],
    return_affected_ids: true,
  });
  assert.deepStrictEqual(w.upserted_ids, U);
  const q = await ns.query({ rank_by: ['title', 'asc'], limit: 10, include_attributes: ['title'] });
  assert.deepStrictEqual(q.rows, U.map((id, i) => ({ id, title: `row-${i}` })));
  assert.equal((await ns.schema()).id.type, 'uuid');
  const f1 = await ns.query({ rank_by: ['id', 'asc'], limit: 10, filters: ['id', 'Eq', '769C134D-07B8-4225-954A-B6CC5FFC320C'] });
  assert.deepStrictEqual(f1.rows, [{ id: U[0] }]);
  const f2 = await ns.query({ rank_by: ['id', 'asc'], limit: 10, filters: ['id', 'Gte', '769c134d07b84225954ab6cc5ffc320c'] });
  assert.deepStrictEqual(ids(f2), U);
  const fe = await expectError(ns.query({ rank_by: ['id', 'asc'], limit: 10, filters: ['id', 'Eq', 'not-a-uuid'] }), 400);
  assert.equal(fe.body.error, "filter error in key `id`: type mismatch, Eq expects uuid, but got 'not-a-uuid'");
  const fe2 = await expectError(ns.query({ rank_by: ['id', 'asc'], limit: 10, filters: ['id', 'In', ['not-a-uuid', '769C134D-07B8-4225-954A-B6CC5FFC320C']] }), 400);
  assert.equal(fe2.body.error, "filter error in key `id`: type mismatch, In expects uuid or []uuid, but got '[not-a-uuid, 769C134D-07B8-4225-954A-B6CC5FFC320C]'");
  const dup = await expectError(ns.write({
    upsert_rows: [{ id: '769C134D-07B8-4225-954A-B6CC5FFC320C', title: 'dupe-0' }, { id: '769c134d-07b8-4225-954a-b6cc5ffc320c', title: 'dupe-1' }],
  }), 400, 'BadRequestError');
  assert.equal(dup.body.error, `💔 This upsert contains duplicate document IDs and was not written. You should ensure that individual upserts do not include duplicate documents. The duplicated IDs in this batch were the following: ${U[0]}`);
  const steps = [
    [{ patch_rows: [{ id: '769C134D-07B8-4225-954A-B6CC5FFC320C', title: 'patched' }], return_affected_ids: true }, 'patched_ids', [U[0]]],
    [{ patch_columns: { id: ['769c134d07b84225954ab6cc5ffc320d'], title: ['column patched'] }, return_affected_ids: true }, 'patched_ids', [U[1]]],
    [{ upsert_rows: [{ id: '769C134D-07B8-4225-954A-B6CC5FFC320C', title: 'conditioned' }], upsert_condition: ['id', 'Eq', '769C134D-07B8-4225-954A-B6CC5FFC320C'], return_affected_ids: true }, 'upserted_ids', [U[0]]],
    [{ patch_rows: [{ id: '769c134d07b84225954ab6cc5ffc320d', title: 'conditioned patch' }], patch_condition: ['id', 'Eq', '769c134d07b84225954ab6cc5ffc320d'], return_affected_ids: true }, 'patched_ids', [U[1]]],
    [{ deletes: ['{769c134d-07b8-4225-954a-b6cc5ffc320e}'], delete_condition: ['id', 'Eq', '{769c134d-07b8-4225-954a-b6cc5ffc320e}'], return_affected_ids: true }, 'deleted_ids', [U[2]]],
    [{ deletes: ['urn:uuid:769c134d-07b8-4225-954a-b6cc5ffc320f'], return_affected_ids: true }, 'deleted_ids', [U[3]]],
  ];
  const out = [bad, w, q, f1, f2, fe, fe2, dup];
  for (const [body, key, expected] of steps) {
    const r = await ns.write(body);
    assert.deepStrictEqual(r[key], expected, JSON.stringify(body));
    out.push(r);
  }
  for (const body of [{ deletes: ['not-a-uuid'] }, { patch_columns: { id: ['urn:uuid:{769c134d-07b8-4225-954a-b6cc5ffc320c}'], title: ['bad'] } }]) {
    const e = await expectError(ns.write(body), 400);
    assert.equal(e.body.error, '💔 namespace ID type is uuid, but a written ID could not be parsed as uuid');
    out.push(e);
  }
  const final = await ns.query({ rank_by: ['id', 'asc'], limit: 10, include_attributes: ['title'] });
  assert.deepStrictEqual(final.rows, [{ id: U[0], title: 'conditioned' }, { id: U[1], title: 'conditioned patch' }]);
  out.push(final);
  return out;
});

conformanceCase('id type errors (ID-08, ID-09, ID-10)', async (ctx) => {
  const out = [];
  for (const [name, body, msg] of [
    ['idt-int', { schema: { id: 'int', title: 'string' }, upsert_rows: [{ id: 1, title: 'bad' }] }, '💔 int is not a valid ID type'],
    ['idt-s', { schema: { id: 'string', title: 'string' }, upsert_rows: [{ id: 1, title: 'bad' }] }, '💔 namespace ID type is string, but you sent uint; you are not allowed to mix ID types in the same namespace'],
    ['idt-u', { schema: { id: 'uint', title: 'string' }, upsert_rows: [{ id: 'abc', title: 'bad' }] }, '💔 namespace ID type is uint, but you sent string; you are not allowed to mix ID types in the same namespace'],
  ]) {
    const e = await expectError(ctx.ns(name).write(body), 400, 'BadRequestError');
    assert.equal(e.body.error, msg);
    out.push(e);
  }
  const ns = ctx.ns('idt-mix');
  out.push(await ns.write({ upsert_rows: [{ id: 1, title: 'good' }] }));
  const e = await expectError(ns.write({ upsert_rows: [{ id: '1', title: 'bad' }] }), 400);
  assert.equal(e.body.error, '💔 namespace ID type is uint, but you sent string; you are not allowed to mix ID types in the same namespace');
  out.push(e);
  return out;
});

conformanceCase('distance_metric rules and base64 vectors (DM-01..DM-08, W-22)', async (ctx) => {
  const out = [];
  const e1 = await expectError(ctx.ns('dm1').write({ upsert_rows: [{ id: 1, vector: [1, 0] }] }), 400);
  assert.equal(e1.body.error, '💔 distance_metric must be specified for write to namespace with a vector');
  const e2 = await expectError(ctx.ns('dm2').write({ schema: { vector: { type: '[2]f32', ann: { distance_metric: 'euclidean' } } }, upsert_rows: [{ id: 1, vector: [1, 0] }] }), 400);
  assert.equal(e2.body.error, '💔 `distance_metric` must be specified as a field at the top level of the write request, not in the `ann` configuration for an attribute');
  const e3 = await expectError(ctx.ns('dm3').write({ distance_metric: 'cosine_distance', schema: { vector: '[2]f32' }, upsert_rows: [{ id: 1, vector: [1, 0] }] }), 400);
  assert.equal(e3.body.error, '💔 the `vector` attribute must have `ann` set to `true`, eg: `"vector": { "type": "[1024]f32", "ann": true }`');
  const e4 = await expectError(ctx.ns('dm4').write({ distance_metric: 'bad', upsert_rows: [{ id: 1, vector: [1, 0] }] }), 422);
  assert.equal(stripPos(e4.body.error), `${DESER}distance_metric: unknown variant \`bad\`, expected one of \`Unknown\`, \`euclidean_squared\`, \`cosine_distance\`, \`euclidean\`, \`Query\``);
  out.push(e1, e2, e3, e4);

  const eu = ctx.ns('dm-eu');
  const w = await eu.write({ distance_metric: 'euclidean', upsert_rows: [{ id: 1, vector: [1, 0] }, { id: 2, vector: [0, 2] }] });
  assert.equal(w.rows_upserted, 2);
  const q = await eu.query({ rank_by: ['vector', 'ANN', [0, 0]], limit: 2, include_attributes: ['vector'] });
  assert.deepStrictEqual(roundDist(q.rows, 4), [{ id: 1, $dist: 1, vector: [1, 0] }, { id: 2, $dist: 2, vector: [0, 2] }]);
  assert.deepStrictEqual((await eu.metadata()).schema.vector.ann, { distance_metric: 'euclidean' });
  const mm = await expectError(eu.write({ distance_metric: 'euclidean_squared', upsert_rows: [{ id: 99, vector: [0, 1] }] }), 400);
  assert.equal(mm.body.error, '💔 distance metric mismatch, expected euclidean, got euclidean_squared');
  out.push(w, q, mm);

  const sc = ctx.ns('dm-scalar');
  const s1 = await sc.write({ upsert_rows: [{ id: 1, title: 'scalar' }] });
  const s2 = await expectError(sc.write({ upsert_rows: [{ id: 2, vector: [1, 0], title: 'vector' }] }), 400);
  assert.equal(s2.body.error, '💔 Vector provided for namespace without vector attribute');
  out.push(s1, s2);

  const b = ctx.ns('dm-b64');
  const bw = await b.write({
    distance_metric: 'cosine_distance', schema: { vector: { type: '[2]f32', ann: true } },
    upsert_rows: [{ id: 1, vector: 'AACAPwAAAAA=', title: 'base64' }], return_affected_ids: true,
  });
  assert.deepStrictEqual([bw.rows_affected, bw.rows_upserted, bw.upserted_ids], [1, 1, [1]]);
  const bq = await b.query({ rank_by: ['vector', 'ANN', 'AACAPwAAAAA='], limit: 1, include_attributes: ['vector'], vector_encoding: 'base64' });
  assert.deepStrictEqual(roundDist(bq.rows, 4), [{ id: 1, $dist: 0, vector: 'AACAPwAAAAA=' }]);
  const bc = await b.write({ upsert_columns: { id: [2, 3], vector: ['zczMPc3MTD4=', [0.7, 0.7]] } });
  assert.equal(bc.rows_upserted, 2);
  const bf = await b.query({ rank_by: ['id', 'asc'], limit: 10, include_attributes: ['vector'] });
  assert.deepStrictEqual(bf.rows, [{ id: 1, vector: [1, 0] }, { id: 2, vector: [0.1, 0.2] }, { id: 3, vector: [0.7, 0.7] }]);
  const pv = await expectError(b.write({ patch_rows: [{ id: 1, vector: [1.0, 0.0] }] }), 400);
  assert.equal(pv.body.error, '💔 patching vectors is currently unsupported');
  out.push(bw, bq, bc, bf, pv);
  return out;
});

conformanceCase('write body validation (W-12..W-17)', async (ctx) => {
  const ns = ctx.ns('wval');
  await ns.write({ upsert_rows: [{ id: 1, title: 'x' }] });
  const out = [];
  for (const [body, status, msg] of [
    [{ upsert_rows: { id: 1 } }, 422, `${DESER}upsert_rows: invalid type: map, expected a sequence`],
    [{ upsert_rows: [{ vector: [1, 0] }] }, 422, `${DESER}upsert_rows[0]: missing field \`id\``],
    [{ deletes: true }, 422, `${DESER}deletes: data did not match any variant of untagged enum IdVec`],
    [{ upsert_rows: [{ id: false }] }, 422, `${DESER}upsert_rows[0].id: data did not match any variant of untagged enum Id`],
    [{ patch_rows: [{ id: 1.5 }] }, 422, `${DESER}patch_rows[0].id: data did not match any variant of untagged enum Id`],
    [{ upsert_columns: { id: [true], title: ['bad'] } }, 422, `${DESER}upsert_columns.id: data did not match any variant of untagged enum IdVec`],
    [{ patch_columns: { id: [1.5], title: ['bad'] } }, 422, `${DESER}patch_columns.id: data did not match any variant of untagged enum IdVec`],
    [{ deletes: [true] }, 422, `${DESER}deletes: data did not match any variant of untagged enum IdVec`],
    [{ copy_from_namespace: ctx.nsName('wval'), upsert_rows: [{ id: 1 }] }, 400, '💔 copy_from_namespace cannot be used with other write request fields'],
    [{ upsert_rows: [{ id: 7, title: 'a' }, { id: 7, title: 'b' }] }, 400, '💔 This upsert contains duplicate document IDs and was not written. You should ensure that individual upserts do not include duplicate documents. The duplicated IDs in this batch were the following: 7'],
  ]) {
    const e = await expectError(ns.write(body), status);
    assert.equal(e.body.status, 'error');
    assert.equal(stripPos(e.body.error), msg, JSON.stringify(body));
    out.push(e);
  }
  // Nothing of the rejected writes landed.
  const q = await ns.query({ rank_by: ['id', 'asc'], limit: 10, include_attributes: true });
  assert.deepStrictEqual(q.rows, [{ id: 1, title: 'x' }]);
  out.push(q);
  return out;
});
