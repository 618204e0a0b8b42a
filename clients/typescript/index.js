// hevlayer: the TypeScript/JavaScript client of Layer (ESM, no dependencies, global fetch).
// Types: index.d.ts. Every Layer route and the Turbopuffer calls are built from one table of
// operations (OPERATIONS below), each a method of Hevlayer with an optional `withPerf`.

const DEFAULT_BASE_URL = "https://aws-us-east-1.hevlayer.com";
const DEFAULT_TURBOPUFFER_URL = "https://aws-us-east-1.turbopuffer.com";

export class HevlayerError extends Error {
  constructor(status, error, message, body) {
    super(`${status}${error ? " " + error : ""}: ${message}`);
    this.name = "HevlayerError";
    this.status = status;
    this.error = error;
    this.message = message;
    this.body = body;
  }
}

const env = (name) => (typeof process !== "undefined" ? process.env[name] : undefined);
const token = (v) => {
  const t = (v ?? "").trim();
  return t === "" ? undefined : t;
};
const ns = (n) => {
  if (typeof n !== "string" || n === "") throw new TypeError("namespace must be a non-empty string");
  return encodeURIComponent(n);
};
const seg = (v) => encodeURIComponent(String(v));
// Query parameters: undefined/null are left out; booleans are sent explicitly, false included.
const params = (o) => {
  const out = {};
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined || v === null) continue;
    out[k] = typeof v === "boolean" ? (v ? "true" : "false") : String(v);
  }
  return out;
};

// name -> (...args) => { method, path, query?, body?, fallback?, queryHeaders? }
const OPERATIONS = {
  fetchDocument: (n, id, opts = {}) => ({
    method: "GET",
    path: `/v2/namespaces/${ns(n)}/documents/${seg(id)}`,
    query: opts.includeAttributes ? { include_attributes: opts.includeAttributes.join(",") } : {},
  }),
  fetchDocuments: (n, ids, opts = {}) => ({
    method: "POST",
    path: `/v2/namespaces/${ns(n)}/documents`,
    body: opts.includeAttributes ? { ids, include_attributes: opts.includeAttributes } : { ids },
  }),
  warmCache: (n, opts = {}) => ({
    method: "POST",
    path: `/v2/namespaces/${ns(n)}/warm`,
    query: params({ page_size: opts.pageSize }),
  }),
  getWarmJob: (n, id) => ({ method: "GET", path: `/v2/namespaces/${ns(n)}/warm-jobs/${seg(id)}` }),
  listWarmJobs: (n) => ({ method: "GET", path: `/v2/namespaces/${ns(n)}/warm-jobs` }),
  cancelWarmJob: (n, id) => ({
    method: "DELETE",
    path: `/v2/namespaces/${ns(n)}/warm-jobs/${seg(id)}`,
  }),
  hintCacheWarm: (n, opts = {}) => ({
    method: "GET",
    path: `/v1/namespaces/${ns(n)}/hint_cache_warm`,
    query: params({
      turbopuffer: opts.turbopuffer,
      documents: opts.documents,
      snapshots: opts.snapshots,
      page_size: opts.pageSize,
    }),
  }),
  getSnapshotPolicy: (n) => ({ method: "GET", path: `/v2/namespaces/${ns(n)}/snapshot-policy` }),
  putSnapshotPolicy: (n, policy) => ({
    method: "PUT",
    path: `/v2/namespaces/${ns(n)}/snapshot-policy`,
    body: policy,
  }),
  getHistory: (n, opts = {}) => ({
    method: "GET",
    path: `/v2/namespaces/${ns(n)}/history`,
    query: params({ limit: opts.limit, before: opts.before }),
  }),
  getSnapshot: (n, sha) => ({ method: "GET", path: `/v2/namespaces/${ns(n)}/snapshots/${seg(sha)}` }),
  createSnapshotJob: (n, req) => ({
    method: "POST",
    path: `/v2/namespaces/${ns(n)}/snapshots`,
    body: req,
  }),
  listSnapshotJobs: (n) => ({ method: "GET", path: `/v2/namespaces/${ns(n)}/snapshot-jobs` }),
  getSnapshotJob: (n, id) => ({
    method: "GET",
    path: `/v2/namespaces/${ns(n)}/snapshot-jobs/${seg(id)}`,
  }),
  getMetadata: (n) => ({ method: "GET", path: `/v2/namespaces/${ns(n)}/metadata` }),
  health: () => ({ method: "GET", path: "/health" }),
  deleteNamespace: (n) => ({ method: "DELETE", path: `/v2/namespaces/${ns(n)}` }),
  namespaces: (opts = {}) => ({
    method: "GET",
    path: "/v1/namespaces",
    query: params({ prefix: opts.prefix, cursor: opts.cursor, page_size: opts.pageSize }),
    fallback: true,
  }),
  getSchema: (n) => ({ method: "GET", path: `/v1/namespaces/${ns(n)}/schema`, fallback: true }),
  updateSchema: (n, schema) => ({
    method: "POST",
    path: `/v1/namespaces/${ns(n)}/schema`,
    body: schema,
    fallback: true,
  }),
  write: (n, body) => ({ method: "POST", path: `/v2/namespaces/${ns(n)}`, body, fallback: true }),
  query: (n, body) => ({
    method: "POST",
    path: `/v2/namespaces/${ns(n)}/query`,
    body,
    fallback: true,
    queryHeaders: true,
  }),
  multiQuery: (n, queries, rest = {}) => ({
    method: "POST",
    path: `/v2/namespaces/${ns(n)}/query`,
    body: { queries, ...rest },
    fallback: true,
    queryHeaders: true,
  }),
  explainQuery: (n, body) => ({
    method: "POST",
    path: `/v2/namespaces/${ns(n)}/explain_query`,
    body,
    fallback: true,
  }),
};

// A transport failure (no answer from the server), as opposed to an error status.
const isTransportError = (e) => e instanceof TypeError || e?.name === "AbortError" || e?.name === "TimeoutError";

export class Hevlayer {
  constructor(opts = {}) {
    this.baseUrl = (opts.baseUrl ?? env("LAYER_GATEWAY_URL") ?? DEFAULT_BASE_URL).replace(/\/+$/, "");
    this.apiKey = token(opts.apiKey ?? env("LAYER_GATEWAY_API_KEY"));
    this.timeout = opts.timeout ?? 30000;
    this.turbopufferApiKey = token(opts.turbopufferApiKey ?? env("TURBOPUFFER_API_KEY"));
    this.turbopufferBaseUrl = (
      opts.turbopufferBaseUrl ?? env("TURBOPUFFER_API_URL") ?? DEFAULT_TURBOPUFFER_URL
    ).replace(/\/+$/, "");
    this.fallbackToTurbopuffer = opts.fallbackToTurbopuffer ?? true;
    this.fetch = opts.fetch ?? globalThis.fetch;
  }

  async #send(op, direct) {
    const base = direct ? this.turbopufferBaseUrl : this.baseUrl;
    const key = direct ? this.turbopufferApiKey : this.apiKey;
    const url = new URL(base + op.path);
    for (const [k, v] of Object.entries(op.query ?? {})) url.searchParams.set(k, v);
    const headers = { accept: "application/json", "user-agent": "hevlayer-typescript/0.1.0" };
    if (key) headers.authorization = `Bearer ${key}`;
    let body;
    if (op.body !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(op.body);
    }
    return this.fetch(url, { method: op.method, headers, body, signal: AbortSignal.timeout(this.timeout) });
  }

  async call(op, withPerf = false) {
    const started = performance.now();
    let res;
    let fallback = null;
    try {
      res = await this.#send(op, false);
    } catch (e) {
      if (!isTransportError(e) || !op.fallback || !this.fallbackToTurbopuffer || !this.turbopufferApiKey) {
        throw e;
      }
      console.warn(`hevlayer: gateway unreachable (${e.message}); falling through to Turbopuffer`);
      res = await this.#send(op, true);
      fallback = "turbopuffer_direct";
    }
    const text = await res.text();
    let parsed = null;
    if (text !== "") {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    const perf = {
      latencyMs: performance.now() - started,
      cacheStatus: fallback ? null : res.headers.get("x-layer-cache"),
      fallback,
    };
    if (!res.ok) {
      let error = null;
      let message = null;
      if (parsed && typeof parsed === "object") {
        if (typeof parsed.error === "string") error = parsed.error;
        if (typeof parsed.message === "string") message = parsed.message;
        else if (parsed.status === "error") message = error;
      } else if (typeof parsed === "string") {
        message = parsed;
      }
      throw new HevlayerError(res.status, error, message ?? res.statusText, text);
    }
    if (op.queryHeaders && parsed && typeof parsed === "object") {
      for (const [header, name] of [["x-layer-stable-as-of", "stable_as_of"], ["x-layer-next-cursor", "next_cursor"]]) {
        const v = res.headers.get(header);
        if (v !== null) parsed[name] = /^\d+$/.test(v) ? Number(v) : v;
      }
    }
    return withPerf ? { data: parsed, perf } : parsed;
  }

  // Polls the job with exponential backoff until it is no longer running; returns it.
  async waitForWarmJob(n, id, opts = {}) {
    const deadline = opts.timeout === undefined ? Infinity : Date.now() + opts.timeout;
    let delay = opts.initialDelay ?? 50;
    for (;;) {
      const job = await this.getWarmJob(n, id);
      opts.onProgress?.(job);
      if (job?.status !== "running") return job;
      if (Date.now() + delay > deadline) throw new Error(`warm job ${id} still running after ${opts.timeout} ms`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, opts.maxDelay ?? 2000);
    }
  }
}

// Each operation is a method with its own arguments. `withPerf: true` in the last argument (an
// options object, or one more argument after the operation's own) returns { data, perf }.
for (const [name, build] of Object.entries(OPERATIONS)) {
  Hevlayer.prototype[name] = function (...args) {
    let withPerf = false;
    const last = args[args.length - 1];
    if (last && typeof last === "object" && !Array.isArray(last) && "withPerf" in last) {
      const { withPerf: wanted, ...rest } = last;
      withPerf = Boolean(wanted);
      if (args.length > build.length && Object.keys(rest).length === 0) {
        args = args.slice(0, -1);
      } else {
        args = [...args.slice(0, -1), rest];
      }
    }
    return this.call(build(...args), withPerf);
  };
}

export default Hevlayer;
