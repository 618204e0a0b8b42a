// The TypeScript client against a real `layer serve` (LAYER_BIN, default build/layer) on its
// embedded default: the seed page's snippets verbatim, the routes, withPerf, the error envelope,
// and fall-through to a `layer origin` when the gateway is down.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import net from "node:net";
import { Hevlayer, HevlayerError } from "../index.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const bin = process.env.LAYER_BIN ?? join(root, "build", "layer");
const API_KEY = "ts-client-key";
const procs = [];

async function startLayer(args) {
  const dir = mkdtempSync(join(tmpdir(), "hevlayer-ts-"));
  const portFile = join(dir, "port");
  const p = spawn(bin, [...args, "--listen", "127.0.0.1:0", "--port-file", portFile,
    "--data-dir", join(dir, "data")], { stdio: "ignore" });
  procs.push(p);
  const deadline = Date.now() + 15000;
  while (!existsSync(portFile) || readFileSync(portFile, "utf8").trim() === "") {
    if (Date.now() > deadline || p.exitCode !== null) throw new Error(`${args[0]} did not start`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return `http://127.0.0.1:${readFileSync(portFile, "utf8").trim()}`;
}

function closedPort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

let gatewayUrl;
before(async () => {
  gatewayUrl = await startLayer(["serve"]);
  process.env.LAYER_GATEWAY_URL = gatewayUrl;
  process.env.LAYER_GATEWAY_API_KEY = API_KEY;
  const c = new Hevlayer();
  await c.write("products", {
    upsert_rows: Array.from({ length: 30 }, (_, i) => ({ id: i + 1, title: `product ${i + 1}`,
      color: i % 2 ? "red" : "blue" })),
  });
});
after(() => procs.forEach((p) => p.kill("SIGKILL")));

test("the seed page's snippets run verbatim", async () => {
  const client = new Hevlayer();
  const result = await client.hintCacheWarm("products", {
    turbopuffer: false,
    documents: false,
    snapshots: true,
  });
  assert.deepEqual(result.turbopuffer, { enabled: false, status: "skipped" });
  assert.deepEqual(result.documents, { enabled: false, status: "skipped" });
  assert.equal(result.snapshots.enabled, true);
  let job = await client.warmCache("products", { pageSize: 1000 });
  const jobId = job.id;
  job = await client.getWarmJob("products", jobId);
  assert.equal(job.id, jobId);
  assert.ok(["running", "completed"].includes(job.status));
});

test("routes, withPerf and waitForWarmJob", async () => {
  const c = new Hevlayer();
  const doc = await c.fetchDocument("products", 2);
  assert.deepEqual(doc, { id: 2, attributes: { title: "product 2", color: "red" } });
  const docs = await c.fetchDocuments("products", [1, 999], { includeAttributes: ["color"] });
  assert.deepEqual(docs, { documents: [{ id: 1, attributes: { color: "blue" } }], missing: [999] });
  let r;
  for (let i = 0; i < 100; i++) {
    r = await c.fetchDocument("products", 5, { withPerf: true });
    if (r.perf.cacheStatus === "hit") break;
  }
  assert.equal(r.data.id, 5);
  assert.equal(r.perf.cacheStatus, "hit");
  assert.equal(r.perf.fallback, null);
  assert.ok(r.perf.latencyMs > 0);
  const job = await c.warmCache("products", { pageSize: 7 });
  const seen = [];
  const done = await c.waitForWarmJob("products", job.id, { onProgress: (j) => seen.push(j), timeout: 60000 });
  assert.equal(done.status, "completed");
  assert.equal(done.documents_scanned, 30);
  assert.ok(seen.length >= 1);
  const q = await c.query("products", { rank_by: ["id", "asc"], top_k: 2 });
  assert.deepEqual(q.rows.map((row) => row.id), [1, 2]);
  const multi = await c.multiQuery("products", [{ rank_by: ["id", "desc"], top_k: 1 }]);
  assert.equal(multi.results[0].rows[0].id, 30);
  const names = await c.namespaces();
  assert.ok(names.namespaces.some((n) => n.id === "products"));
  const policy = await c.putSnapshotPolicy("products", { facetFields: ["color"], interval: "1s" });
  assert.deepEqual(policy, { facetFields: ["color"], interval: "1s", retention: "never" });
  assert.equal((await c.health()).status, "ok");
});

test("errors carry the gateway's envelope", async () => {
  const c = new Hevlayer();
  await assert.rejects(c.fetchDocument("products", 4242), (e) => {
    assert.ok(e instanceof HevlayerError);
    assert.equal(e.status, 404);
    assert.equal(e.error, "not_found");
    assert.match(e.message, /4242/);
    return true;
  });
  await assert.rejects(c.warmCache("products", { pageSize: 0 }), (e) => e.status === 422 &&
    e.error === "validation_error");
});

test("falls through to Turbopuffer when the gateway is down; Layer-only calls fail fast", async () => {
  const direct = await startLayer(["origin", "--api-key", "direct-key"]);
  const down = `http://127.0.0.1:${await closedPort()}`;
  const c = new Hevlayer({ baseUrl: down, apiKey: "k", turbopufferApiKey: "direct-key",
    turbopufferBaseUrl: direct });
  const w = await c.write("ts_fall", { upsert_rows: [{ id: 1, v: 1 }] }, { withPerf: true });
  assert.equal(w.perf.fallback, "turbopuffer_direct");
  assert.equal(w.perf.cacheStatus, null);
  assert.equal(w.data.rows_upserted, 1);
  const q = await c.query("ts_fall", { rank_by: ["id", "asc"], top_k: 1 }, { withPerf: true });
  assert.equal(q.perf.fallback, "turbopuffer_direct");
  await assert.rejects(c.warmCache("ts_fall"), TypeError);
  await assert.rejects(c.fetchDocument("ts_fall", 1), TypeError);
  const off = new Hevlayer({ baseUrl: down, apiKey: "k", turbopufferApiKey: "direct-key",
    turbopufferBaseUrl: direct, fallbackToTurbopuffer: false });
  await assert.rejects(off.write("ts_fall", { upsert_rows: [{ id: 2 }] }), TypeError);
});
