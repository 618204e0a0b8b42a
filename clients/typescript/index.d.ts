// Types of the hevlayer client (index.js).

export interface HevlayerOptions {
  /** Gateway URL; default $LAYER_GATEWAY_URL, else https://aws-us-east-1.hevlayer.com */
  baseUrl?: string;
  /** Gateway key, sent as `Authorization: Bearer`; default $LAYER_GATEWAY_API_KEY */
  apiKey?: string;
  /** Per-request timeout in milliseconds (default 30000) */
  timeout?: number;
  /** Turbopuffer key for fall-through; default $TURBOPUFFER_API_KEY */
  turbopufferApiKey?: string;
  /** Turbopuffer URL for fall-through; default $TURBOPUFFER_API_URL */
  turbopufferBaseUrl?: string;
  /** Fall through to Turbopuffer on transport failures (default true) */
  fallbackToTurbopuffer?: boolean;
  /** A fetch implementation (default the global fetch) */
  fetch?: typeof fetch;
}

export interface LayerPerf {
  latencyMs: number;
  cacheStatus: string | null;
  fallback: null | "turbopuffer_direct";
}

export interface LayerResponse<T> {
  data: T;
  perf: LayerPerf;
}

export interface PerfOption {
  withPerf?: boolean;
}

export interface Document {
  id: string | number;
  attributes: Record<string, unknown>;
}

export interface WarmJob {
  id: string;
  namespace: string;
  status: "running" | "completed" | "failed" | "cancelled";
  progress: number;
  documents_scanned: number;
  stable_as_of?: number;
  created_at: string;
  completed_at?: string;
  error?: string;
  waiting?: string;
  cache_errors: number;
  page_size: number;
}

export interface WarmStep {
  enabled: boolean;
  status: string;
  job?: WarmJob;
  key?: string;
  watermark_ms?: number;
  sha?: string;
}

export interface HintCacheWarmResult {
  namespace: string;
  turbopuffer: WarmStep;
  documents: WarmStep;
  snapshots: WarmStep;
}

export interface SnapshotPolicy {
  facetFields?: string[];
  interval?: string;
  retention?: string;
}

export interface SnapshotHistoryEntry {
  watermark_ms: number;
  sha: string;
}

export class HevlayerError extends Error {
  status: number;
  error: string | null;
  message: string;
  body: string;
}

type Maybe<T, P> = P extends { withPerf: true } ? LayerResponse<T> : T;

export class Hevlayer {
  constructor(options?: HevlayerOptions);
  fetchDocument<P extends PerfOption = {}>(ns: string, id: string | number,
    options?: { includeAttributes?: string[] } & P): Promise<Maybe<Document, P>>;
  fetchDocuments<P extends PerfOption = {}>(ns: string, ids: Array<string | number>,
    options?: { includeAttributes?: string[] } & P):
    Promise<Maybe<{ documents: Document[]; missing: Array<string | number> }, P>>;
  warmCache<P extends PerfOption = {}>(ns: string, options?: { pageSize?: number } & P):
    Promise<Maybe<WarmJob, P>>;
  getWarmJob<P extends PerfOption = {}>(ns: string, id: string, perf?: P): Promise<Maybe<WarmJob, P>>;
  listWarmJobs<P extends PerfOption = {}>(ns: string, perf?: P):
    Promise<Maybe<{ warm_jobs: WarmJob[] }, P>>;
  cancelWarmJob<P extends PerfOption = {}>(ns: string, id: string, perf?: P): Promise<Maybe<WarmJob, P>>;
  waitForWarmJob(ns: string, id: string, options?: {
    onProgress?: (job: WarmJob) => void; timeout?: number; initialDelay?: number; maxDelay?: number;
  }): Promise<WarmJob>;
  hintCacheWarm<P extends PerfOption = {}>(ns: string, options?: {
    turbopuffer?: boolean; documents?: boolean; snapshots?: boolean; pageSize?: number;
  } & P): Promise<Maybe<HintCacheWarmResult, P>>;
  getSnapshotPolicy<P extends PerfOption = {}>(ns: string, perf?: P): Promise<Maybe<SnapshotPolicy, P>>;
  putSnapshotPolicy<P extends PerfOption = {}>(ns: string, policy: SnapshotPolicy, perf?: P):
    Promise<Maybe<SnapshotPolicy, P>>;
  getHistory<P extends PerfOption = {}>(ns: string, options?: { limit?: number; before?: number } & P):
    Promise<Maybe<SnapshotHistoryEntry[], P>>;
  getSnapshot<P extends PerfOption = {}>(ns: string, sha: string, perf?: P): Promise<Maybe<unknown, P>>;
  createSnapshotJob<P extends PerfOption = {}>(ns: string, request: {
    field: string; source?: "auto" | "stored" | "cache" | "origin"; filters?: unknown; page_size?: number;
  }, perf?: P): Promise<Maybe<unknown, P>>;
  listSnapshotJobs<P extends PerfOption = {}>(ns: string, perf?: P): Promise<Maybe<unknown, P>>;
  getSnapshotJob<P extends PerfOption = {}>(ns: string, id: string, perf?: P): Promise<Maybe<unknown, P>>;
  getMetadata<P extends PerfOption = {}>(ns: string, perf?: P): Promise<Maybe<Record<string, unknown>, P>>;
  health<P extends PerfOption = {}>(perf?: P): Promise<Maybe<Record<string, unknown>, P>>;
  deleteNamespace<P extends PerfOption = {}>(ns: string, perf?: P): Promise<Maybe<unknown, P>>;
  namespaces<P extends PerfOption = {}>(options?: { prefix?: string; cursor?: string; pageSize?: number } & P):
    Promise<Maybe<{ namespaces: Array<{ id: string }>; next_cursor?: string }, P>>;
  getSchema<P extends PerfOption = {}>(ns: string, perf?: P): Promise<Maybe<Record<string, unknown>, P>>;
  updateSchema<P extends PerfOption = {}>(ns: string, schema: Record<string, unknown>, perf?: P):
    Promise<Maybe<Record<string, unknown>, P>>;
  write<P extends PerfOption = {}>(ns: string, body: Record<string, unknown>, perf?: P):
    Promise<Maybe<Record<string, unknown>, P>>;
  query<P extends PerfOption = {}>(ns: string, body: Record<string, unknown>, perf?: P):
    Promise<Maybe<{ rows?: Array<Record<string, unknown>>; stable_as_of?: number } & Record<string, unknown>, P>>;
  multiQuery<P extends PerfOption = {}>(ns: string, queries: Array<Record<string, unknown>>,
    rest?: Record<string, unknown>, perf?: P): Promise<Maybe<{ results: unknown[] } & Record<string, unknown>, P>>;
  explainQuery<P extends PerfOption = {}>(ns: string, body: Record<string, unknown>, perf?: P):
    Promise<Maybe<Record<string, unknown>, P>>;
}

export default Hevlayer;
