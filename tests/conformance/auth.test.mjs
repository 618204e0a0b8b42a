// API keys: the origin runs with --api-key (harness.mjs), so a wrong key is Turbopuffer's 401
// (AuthenticationError) with the error envelope, directly and through the gateway (which forwards
// the caller's key in its default derive mode), and a refused write changes nothing.
import { useServers, conformanceCase, assert, expectError, makeClient } from './harness.mjs';

useServers();

conformanceCase('a wrong key is a 401 AuthenticationError and changes nothing', async (ctx) => {
  const wrong = makeClient(ctx.url, { apiKey: 'tpuf_wrongKey' }).namespace(ctx.nsName('auth'));
  const w = await expectError(wrong.write({ upsert_rows: [{ id: 1 }] }), 401, 'AuthenticationError');
  assert.equal(w.body.status, 'error');
  assert.equal(typeof w.body.error, 'string');
  const q = await expectError(wrong.query({ rank_by: ['id', 'asc'], limit: 1 }), 401, 'AuthenticationError');
  const d = await expectError(wrong.deleteAll(), 401, 'AuthenticationError');
  // The write was not applied: with the right key the namespace does not exist.
  assert.equal(await ctx.ns('auth').exists(), false);
  await ctx.ns('auth').write({ upsert_rows: [{ id: 2 }] });
  await expectError(wrong.deleteAll(), 401, 'AuthenticationError');
  const rows = (await ctx.ns('auth').query({ rank_by: ['id', 'asc'], limit: 10 })).rows;
  assert.deepStrictEqual(rows, [{ id: 2 }]);
  return [w, q, d, rows];
});
