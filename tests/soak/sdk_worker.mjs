// The soak's SDK client: executes operations with the official @turbopuffer/turbopuffer SDK on
// behalf of tests/soak/soak.py, which generates them and checks the history.
//
// Protocol (JSON lines): soak.py writes one command per line on stdin, the worker answers one line
// per command on stdout, in any order (commands run concurrently; each names its `lane`, and a
// lane's operations run one after another).
//   {"cmd":"clock","seq":n}                         -> {"seq":n,"now":<monotonic seconds>}
//   {"cmd":"run","seq":n,"lane":k,"ops":[op,...]}   -> {"seq":n,"results":[result,...]}
// An op is {"kind":"write","ns","body"} (ns.write), {"kind":"query","ns","body"} (ns.query),
// {"kind":"fetch","ns","id"} (GET /v2/namespaces/{ns}/documents/{id} with client.get),
// {"kind":"fetch_batch","ns","ids"} (POST .../documents with client.post),
// {"kind":"delete_ns","ns"} (ns.deleteAll) or {"kind":"warm","ns"} (POST .../warm).
// A result is {"call","ret","status","body","cache","conn"}: call and ret are
// process.hrtime (CLOCK_MONOTONIC on Linux, the clock of Python's time.monotonic()) in seconds;
// status is the HTTP status (null without an answer); conn is "refused" when the connection was
// refused (nothing was sent), "lost" when an answer never came, else null; cache is the
// x-layer-cache header of a fetch.
//
// The client: baseURL from the command line (argv[2]), API key argv[3], no retries (a retried
// write could be applied twice, and a history records one call per operation), a 20 s timeout.
import readline from 'node:readline';
import Turbopuffer, { APIError } from '@turbopuffer/turbopuffer';

const [baseURL, apiKey] = process.argv.slice(2);
const client = new Turbopuffer({ apiKey, baseURL, region: null, maxRetries: 0, timeout: 20_000 });

function now() {
  return Number(process.hrtime.bigint()) / 1e9;
}

function refused(err) {
  for (let e = err; e; e = e.cause) {
    if (e.code === 'ECONNREFUSED') return true;
  }
  return false;
}

async function execute(op) {
  const ns = client.namespace(op.ns);
  const docs = `/v2/namespaces/${encodeURIComponent(op.ns)}/documents`;
  switch (op.kind) {
    case 'write':
      // The SDK retries writes 6 times by default; a retry could apply a write twice.
      return ns.write(op.body, { maxRetries: 0 }).withResponse();
    case 'query':
      return ns.query(op.body).withResponse();
    case 'fetch':
      return client.get(`${docs}/${op.id}`).withResponse();
    case 'fetch_batch':
      return client.post(docs, { body: { ids: op.ids } }).withResponse();
    case 'delete_ns':
      return ns.deleteAll().withResponse();
    case 'warm':
      return client.post(`/v2/namespaces/${encodeURIComponent(op.ns)}/warm`).withResponse();
    default:
      throw new Error(`unknown op kind ${op.kind}`);
  }
}

async function runOne(op) {
  const call = now();
  try {
    const { data, response } = await execute(op);
    const ret = now();
    return {
      call, ret, status: response.status, body: data ?? null,
      cache: response.headers.get('x-layer-cache'), conn: null,
    };
  } catch (err) {
    const ret = now();
    if (err instanceof APIError && typeof err.status === 'number') {
      return {
        call, ret, status: err.status, body: err.error ?? null,
        cache: err.headers?.get?.('x-layer-cache') ?? null, conn: null,
      };
    }
    return {
      call, ret, status: null, body: String(err?.message ?? err), cache: null,
      conn: refused(err) ? 'refused' : 'lost',
    };
  }
}

const lanes = new Map(); // lane -> promise of its last command

function reply(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (!line.trim()) return;
  const cmd = JSON.parse(line);
  if (cmd.cmd === 'clock') {
    reply({ seq: cmd.seq, now: now() });
    return;
  }
  const prev = lanes.get(cmd.lane) ?? Promise.resolve();
  const next = prev.then(async () => {
    const results = [];
    for (const op of cmd.ops) results.push(await runOne(op));
    reply({ seq: cmd.seq, results });
  });
  const failed = (err) => reply({ seq: cmd.seq, error: String(err?.stack ?? err) });
  lanes.set(cmd.lane, next.catch(failed));
});
rl.on('close', async () => {
  await Promise.all(lanes.values());
  process.exit(0);
});
