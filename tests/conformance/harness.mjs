// Conformance harness: one `layer origin` (temp data dir) and one `layer serve` in front of it,
// the official @turbopuffer/turbopuffer SDK pointed at each, and a `conformanceCase` helper that
// runs a case function against both targets and asserts that the normalised results are equal.
//
// Each test file imports this module; node's test runner runs every file in its own process, so
// every file gets its own pair of servers.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import Turbopuffer, { APIError } from '@turbopuffer/turbopuffer';

export { assert };

export const LAYER_BIN =
  process.env.LAYER_BIN || new URL('../../build/layer', import.meta.url).pathname;
export const API_KEY = 'tpuf_test';

// Namespaces are named `c<run>-<target>-<name>`; normalisation strips the `c<run>-<target>-` part.
// Both target tags have the same length so that size-derived values (billing bytes of a body that
// names a namespace, for instance) are equal on both targets.
const RUN_ID = `${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
export const TARGETS = ['dir', 'gwy'];
const NS_PREFIX_RE = new RegExp(`c${RUN_ID}-(dir|gwy)-`, 'g');

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

async function waitForBinary(timeoutMs = 60_000) {
  // The owner rebuilds the binary from time to time; it may be missing for a moment.
  const deadline = Date.now() + timeoutMs;
  while (!fs.existsSync(LAYER_BIN)) {
    if (Date.now() > deadline) throw new Error(`layer binary not found at ${LAYER_BIN} (set LAYER_BIN)`);
    await sleep(500);
  }
}

export class LayerProcess {
  constructor(name, args, workdir) {
    this.name = name;
    this.workdir = workdir;
    this.portFile = path.join(workdir, `${name}.port`);
    this.logFile = path.join(workdir, `${name}.log`);
    this.args = [...args, '--port-file', this.portFile];
    this.proc = null;
    this.port = null;
  }

  async start(timeoutMs = 15_000) {
    await waitForBinary();
    const env = { ...process.env };
    for (const k of Object.keys(env)) {
      if (k.startsWith('LAYER_') || k.startsWith('TURBOPUFFER_')) delete env[k];
    }
    const log = fs.openSync(this.logFile, 'w');
    this.proc = spawn(LAYER_BIN, this.args, { env, stdio: ['ignore', log, log] });
    fs.closeSync(log);
    let exited = null;
    this.proc.on('exit', (code, sig) => {
      exited = { code, sig };
    });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (exited) {
        throw new Error(`${this.name} exited (${JSON.stringify(exited)}) before listening: ${this.args.join(' ')}\n${this.output()}`);
      }
      let port = null;
      try {
        port = parseInt(fs.readFileSync(this.portFile, 'utf8').trim(), 10);
      } catch {}
      if (port > 0 && (await canConnect(port))) {
        this.port = port;
        return this;
      }
      if (Date.now() > deadline) throw new Error(`${this.name} did not listen within ${timeoutMs} ms\n${this.output()}`);
      await sleep(20);
    }
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  output() {
    try {
      return fs.readFileSync(this.logFile, 'utf8').slice(-4000);
    } catch {
      return '';
    }
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const done = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill('SIGKILL');
    await done;
  }
}

// ---------------------------------------------------------------------------------------------
// Servers and clients
// ---------------------------------------------------------------------------------------------
export const env = {
  workdir: null,
  origin: null,
  gateway: null,
  targets: {}, // target -> { url, client, gzClient }
};

export function makeClient(baseURL, opts = {}) {
  return new Turbopuffer({ apiKey: API_KEY, baseURL, region: null, maxRetries: 0, timeout: 20_000, ...opts });
}

export async function startServers() {
  env.workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'layer-conformance-'));
  env.origin = await new LayerProcess(
    'origin',
    // The origin checks keys as Turbopuffer does; the gateway (derive mode, no upstream key)
    // forwards the caller's key, so both targets see the same key and the same refusals.
    [
      'origin', '--listen', '127.0.0.1:0', '--data-dir', path.join(env.workdir, 'origin-data'),
      '--api-key', API_KEY,
    ],
    env.workdir,
  ).start();
  env.gateway = await new LayerProcess(
    'gateway',
    [
      'serve', '--listen', '127.0.0.1:0', '--upstream', env.origin.url, '--access-log', 'false',
      '--data-dir', path.join(env.workdir, 'gateway-data'),
    ],
    env.workdir,
  ).start();
  for (const [t, proc] of [['dir', env.origin], ['gwy', env.gateway]]) {
    env.targets[t] = {
      url: proc.url,
      client: makeClient(proc.url),
      gzClient: makeClient(proc.url, { compression: true }),
    };
  }
}

export async function stopServers() {
  if (env.gateway) await env.gateway.stop();
  if (env.origin) await env.origin.stop();
  if (env.workdir && !process.env.LAYER_KEEP_WORKDIR) fs.rmSync(env.workdir, { recursive: true, force: true });
}

/** Registers before/after hooks that start and stop the servers for the calling test file. */
export function useServers() {
  before(startServers);
  after(stopServers);
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------
export class Ctx {
  constructor(target) {
    this.target = target;
    const t = env.targets[target];
    this.url = t.url;
    this.client = t.client;
    this.gzClient = t.gzClient;
  }

  /** Unique namespace name for this target. */
  nsName(name) {
    return `c${RUN_ID}-${this.target}-${name}`;
  }

  /** SDK Namespace object for `nsName(name)`; `{gzip:true}` uses the compression client. */
  ns(name, { gzip = false } = {}) {
    return (gzip ? this.gzClient : this.client).namespace(this.nsName(name));
  }

  /** Raw HTTP call (for things the SDK does not expose); returns {status, contentType, body}. */
  async raw(method, p, body) {
    const init = { method, headers: { Authorization: `Bearer ${API_KEY}` } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
    }
    const r = await fetch(this.url + p, init);
    const text = await r.text();
    const ct = r.headers.get('content-type') || '';
    let parsed = text;
    if (ct.includes('application/json')) {
      try {
        parsed = JSON.parse(text);
      } catch {}
    }
    return { status: r.status, contentType: ct.split(';')[0].trim(), body: parsed };
  }
}

/** Runs `p` and returns its value, or `{error: {...}}` for an API error (so errors compare too). */
export async function capture(p) {
  try {
    return await p;
  } catch (e) {
    return { error: errorInfo(e) };
  }
}

export function errorInfo(e) {
  if (e instanceof APIError) {
    return { class: e.constructor.name, status: e.status ?? null, body: e.error ?? null };
  }
  throw e;
}

/** Asserts that `p` rejects with an APIError of the given status; returns the error info. */
export async function expectError(p, status, cls) {
  let v;
  try {
    v = await p;
  } catch (e) {
    const info = errorInfo(e);
    assert.equal(info.status, status, `expected HTTP ${status}, got ${info.status}: ${JSON.stringify(info.body)}`);
    if (cls) assert.equal(info.class, cls);
    return info;
  }
  assert.fail(`expected HTTP ${status} error, got success: ${JSON.stringify(v)}`);
}

// Performance fields that measure time (server or client side) and so differ run to run.
const TIMING_KEY = /(_ms$|^cache_hit_ratio$|^cache_temperature$)/;

export function normalise(value) {
  const strip = (v, parentKey) => {
    if (Array.isArray(v)) return v.map((x) => strip(x, null));
    if (v && typeof v === 'object') {
      if (typeof v.getPaginatedItems === 'function') return strip(pageData(v), parentKey);
      const out = {};
      for (const k of Object.keys(v)) {
        // Billed and stored byte counts cover the whole stored row, which through the gateway
        // includes its `_hevlayer_upserted_at` stamp; Turbopuffer's own parity checks ignore
        // billing too. Row counts and every visible value are still compared.
        if (k === 'billing') continue;
        // Layer's own view of a namespace, added to metadata read through the gateway.
        if (k === 'layer' && parentKey === null) continue;
        if (k === 'approx_logical_bytes' || k === 'billable_logical_bytes_written') continue;
        if (parentKey === 'performance' && TIMING_KEY.test(k)) continue;
        if (/^(created_at|updated_at|last_write_at)$/.test(k)) {
          out[k] = typeof v[k] === 'string' ? '<timestamp>' : v[k];
          continue;
        }
        out[k] = strip(v[k], k);
      }
      return out;
    }
    if (typeof v === 'string') return v.replace(NS_PREFIX_RE, '');
    return v;
  };
  // JSON round trip drops undefined keys (SDK results are plain data, pages are unwrapped first).
  return JSON.parse(JSON.stringify(strip(value ?? null, null)));
}

/**
 * Registers a test that runs `fn(ctx)` against the origin directly and through the gateway and
 * asserts the two normalised results are deeply equal. `fn` should do its own expected-value
 * assertions too (they run for both targets).
 */
export function conformanceCase(name, fn, opts = {}) {
  test(name, opts, async () => {
    const results = {};
    for (const target of TARGETS) {
      try {
        results[target] = normalise(await fn(new Ctx(target)));
      } catch (e) {
        e.message = `[target ${target}] ${e.message}`;
        throw e;
      }
    }
    assert.deepStrictEqual(results.gwy, results.dir, 'gateway result differs from direct origin result');
  });
}

// ---------------------------------------------------------------------------------------------
// Small helpers for expected-value checks
// ---------------------------------------------------------------------------------------------
export const ids = (res) => res.rows.map((r) => r.id);

/** The raw JSON body of an SDK page (the page object itself turns a null next_cursor into ''). */
export const pageData = (page) => page.body;

/** Rows with `$dist` rounded to `digits` decimals (live facts are stated to 3-4 decimals). */
export function roundDist(rows, digits = 4) {
  const f = 10 ** digits;
  return rows.map((r) => ('$dist' in r ? { ...r, $dist: Math.round(r.$dist * f) / f } : r));
}

export function approx(actual, expected, tol = 1e-3, what = 'value') {
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: expected ≈${expected}, got ${actual}`);
}
