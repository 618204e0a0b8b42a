package hevlayer

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Document is one fetched document.
type Document struct {
	ID         interface{}            `json:"id"`
	Attributes map[string]interface{} `json:"attributes"`
}

// FetchDocumentsResponse is the answer of a batch fetch.
type FetchDocumentsResponse struct {
	Documents []Document    `json:"documents"`
	Missing   []interface{} `json:"missing"`
}

// WarmJob is a warm job's record.
type WarmJob struct {
	ID               string  `json:"id"`
	Namespace        string  `json:"namespace"`
	Status           string  `json:"status"`
	Progress         float64 `json:"progress"`
	DocumentsScanned uint64  `json:"documents_scanned"`
	StableAsOf       *int64  `json:"stable_as_of,omitempty"`
	CreatedAt        string  `json:"created_at"`
	CompletedAt      string  `json:"completed_at,omitempty"`
	Error            string  `json:"error,omitempty"`
	Waiting          string  `json:"waiting,omitempty"`
	CacheErrors      uint64  `json:"cache_errors"`
	PageSize         int     `json:"page_size"`
}

// WarmStep is one step of an orchestrated hint.
type WarmStep struct {
	Enabled     bool     `json:"enabled"`
	Status      string   `json:"status"`
	Job         *WarmJob `json:"job,omitempty"`
	Key         string   `json:"key,omitempty"`
	WatermarkMs int64    `json:"watermark_ms,omitempty"`
	Sha         string   `json:"sha,omitempty"`
}

// HintCacheWarmResult is the orchestrated hint's answer.
type HintCacheWarmResult struct {
	Namespace   string   `json:"namespace"`
	Turbopuffer WarmStep `json:"turbopuffer"`
	Documents   WarmStep `json:"documents"`
	Snapshots   WarmStep `json:"snapshots"`
}

// WarmCacheParams are the options of WarmCache.
type WarmCacheParams struct {
	PageSize int // 1..10000; 0 = the gateway's default
}

// HintCacheWarmParams are the options of HintCacheWarm. nil fields are not sent; a pointer to
// false is sent as false (turning that step off). All nil: the raw passthrough.
type HintCacheWarmParams struct {
	Turbopuffer *bool
	Documents   *bool
	Snapshots   *bool
	PageSize    int
}

// SnapshotPolicy is a namespace's snapshot policy.
type SnapshotPolicy struct {
	FacetFields []string `json:"facetFields"`
	Interval    string   `json:"interval,omitempty"`
	Retention   string   `json:"retention,omitempty"`
}

// QueryResponse is a query's answer; StableAsOf comes from x-layer-stable-as-of.
type QueryResponse struct {
	Rows       []map[string]interface{} `json:"rows,omitempty"`
	Results    []map[string]interface{} `json:"results,omitempty"`
	StableAsOf *int64                   `json:"-"`
}

// FetchDocument reads one document by id.
func (c *Client) FetchDocument(ctx context.Context, ns string, id interface{}, includeAttributes []string) (*Document, error) {
	d, _, err := c.FetchDocumentWithPerf(ctx, ns, id, includeAttributes)
	return d, err
}

func (c *Client) FetchDocumentWithPerf(ctx context.Context, ns string, id interface{}, includeAttributes []string) (*Document, *Perf, error) {
	q := url.Values{}
	if includeAttributes != nil {
		q.Set("include_attributes", strings.Join(includeAttributes, ","))
	}
	var d Document
	perf, err := c.call(ctx, op{method: "GET", path: nsPath("/v2/namespaces/%s/documents/%s", ns, fmt.Sprint(id)), query: q}, &d)
	return orNil(&d, err), perf, err
}

// FetchDocuments reads documents by id.
func (c *Client) FetchDocuments(ctx context.Context, ns string, ids []interface{}, includeAttributes []string) (*FetchDocumentsResponse, error) {
	r, _, err := c.FetchDocumentsWithPerf(ctx, ns, ids, includeAttributes)
	return r, err
}

// WarmCache starts (or joins) a warm job of the namespace.
func (c *Client) WarmCache(ctx context.Context, ns string, params *WarmCacheParams) (*WarmJob, error) {
	j, _, err := c.WarmCacheWithPerf(ctx, ns, params)
	return j, err
}

func (c *Client) WarmCacheWithPerf(ctx context.Context, ns string, params *WarmCacheParams) (*WarmJob, *Perf, error) {
	q := url.Values{}
	if params != nil && params.PageSize != 0 {
		q.Set("page_size", strconv.Itoa(params.PageSize))
	}
	var j WarmJob
	perf, err := c.call(ctx, op{method: "POST", path: nsPath("/v2/namespaces/%s/warm", ns), query: q}, &j)
	return orNil(&j, err), perf, err
}

// GetWarmJob reads a warm job.
func (c *Client) GetWarmJob(ctx context.Context, ns, jobID string) (*WarmJob, error) {
	j, _, err := c.GetWarmJobWithPerf(ctx, ns, jobID)
	return j, err
}

func (c *Client) GetWarmJobWithPerf(ctx context.Context, ns, jobID string) (*WarmJob, *Perf, error) {
	var j WarmJob
	perf, err := c.call(ctx, op{method: "GET", path: nsPath("/v2/namespaces/%s/warm-jobs/%s", ns, jobID)}, &j)
	return orNil(&j, err), perf, err
}

// ListWarmJobs lists the namespace's warm jobs, oldest first.
func (c *Client) ListWarmJobs(ctx context.Context, ns string) ([]WarmJob, error) {
	var r struct {
		WarmJobs []WarmJob `json:"warm_jobs"`
	}
	_, err := c.call(ctx, op{method: "GET", path: nsPath("/v2/namespaces/%s/warm-jobs", ns)}, &r)
	return r.WarmJobs, err
}

// CancelWarmJob cancels a running warm job.
func (c *Client) CancelWarmJob(ctx context.Context, ns, jobID string) (*WarmJob, error) {
	var j WarmJob
	_, err := c.call(ctx, op{method: "DELETE", path: nsPath("/v2/namespaces/%s/warm-jobs/%s", ns, jobID)}, &j)
	return orNil(&j, err), err
}

// WaitForWarmJob polls the job with exponential backoff (50 ms to 2 s) until it is no longer
// running, calling onProgress (if any) with each poll; ctx bounds the wait.
func (c *Client) WaitForWarmJob(ctx context.Context, ns, jobID string, onProgress func(*WarmJob)) (*WarmJob, error) {
	delay := 50 * time.Millisecond
	for {
		j, err := c.GetWarmJob(ctx, ns, jobID)
		if err != nil {
			return nil, err
		}
		if onProgress != nil {
			onProgress(j)
		}
		if j.Status != "running" {
			return j, nil
		}
		select {
		case <-ctx.Done():
			return j, ctx.Err()
		case <-time.After(delay):
		}
		if delay *= 2; delay > 2*time.Second {
			delay = 2 * time.Second
		}
	}
}

// HintCacheWarm sends the hint: a raw passthrough with no option (the upstream's answer in raw),
// Layer's orchestration with any.
func (c *Client) HintCacheWarm(ctx context.Context, ns string, params *HintCacheWarmParams) (*HintCacheWarmResult, error) {
	r, _, err := c.HintCacheWarmWithPerf(ctx, ns, params)
	return r, err
}

func (c *Client) HintCacheWarmWithPerf(ctx context.Context, ns string, params *HintCacheWarmParams) (*HintCacheWarmResult, *Perf, error) {
	q := url.Values{}
	if params != nil {
		for name, v := range map[string]*bool{"turbopuffer": params.Turbopuffer, "documents": params.Documents, "snapshots": params.Snapshots} {
			if v != nil {
				q.Set(name, strconv.FormatBool(*v))
			}
		}
		if params.PageSize != 0 {
			q.Set("page_size", strconv.Itoa(params.PageSize))
		}
	}
	var r HintCacheWarmResult
	perf, err := c.call(ctx, op{method: "GET", path: nsPath("/v1/namespaces/%s/hint_cache_warm", ns), query: q}, &r)
	return orNil(&r, err), perf, err
}

// GetSnapshotPolicy reads the namespace's snapshot policy.
func (c *Client) GetSnapshotPolicy(ctx context.Context, ns string) (*SnapshotPolicy, error) {
	var p SnapshotPolicy
	_, err := c.call(ctx, op{method: "GET", path: nsPath("/v2/namespaces/%s/snapshot-policy", ns)}, &p)
	return orNil(&p, err), err
}

// PutSnapshotPolicy stores the namespace's snapshot policy; returns it normalised.
func (c *Client) PutSnapshotPolicy(ctx context.Context, ns string, p SnapshotPolicy) (*SnapshotPolicy, error) {
	if p.FacetFields == nil {
		p.FacetFields = []string{}
	}
	var out SnapshotPolicy
	_, err := c.call(ctx, op{method: "PUT", path: nsPath("/v2/namespaces/%s/snapshot-policy", ns), body: p}, &out)
	return orNil(&out, err), err
}

// Write sends a Turbopuffer write (upsert_rows, patch_rows, deletes, delete_by_filter, ...).
func (c *Client) Write(ctx context.Context, ns string, body map[string]interface{}) (map[string]interface{}, error) {
	r, _, err := c.WriteWithPerf(ctx, ns, body)
	return r, err
}

func (c *Client) WriteWithPerf(ctx context.Context, ns string, body map[string]interface{}) (map[string]interface{}, *Perf, error) {
	var r map[string]interface{}
	perf, err := c.call(ctx, op{method: "POST", path: nsPath("/v2/namespaces/%s", ns), body: body, fallback: true}, &r)
	return r, perf, err
}

// Query sends a Turbopuffer query (or a multi-query with "queries").
func (c *Client) Query(ctx context.Context, ns string, body map[string]interface{}) (*QueryResponse, error) {
	r, _, err := c.QueryWithPerf(ctx, ns, body)
	return r, err
}

func (c *Client) QueryWithPerf(ctx context.Context, ns string, body map[string]interface{}) (*QueryResponse, *Perf, error) {
	var r QueryResponse
	perf, err := c.call(ctx, op{method: "POST", path: nsPath("/v2/namespaces/%s/query", ns), body: body, fallback: true}, &r)
	return orNil(&r, err), perf, err
}

// GetSchema reads the namespace's schema.
func (c *Client) GetSchema(ctx context.Context, ns string) (map[string]interface{}, error) {
	var r map[string]interface{}
	_, err := c.call(ctx, op{method: "GET", path: nsPath("/v1/namespaces/%s/schema", ns), fallback: true}, &r)
	return r, err
}

// DeleteNamespace deletes the namespace.
func (c *Client) DeleteNamespace(ctx context.Context, ns string) error {
	_, err := c.call(ctx, op{method: "DELETE", path: nsPath("/v2/namespaces/%s", ns)}, nil)
	return err
}

// Health reads the gateway's /health.
func (c *Client) Health(ctx context.Context) (map[string]interface{}, error) {
	var r map[string]interface{}
	_, err := c.call(ctx, op{method: "GET", path: "/health"}, &r)
	return r, err
}

func orNil[T any](v *T, err error) *T {
	if err != nil {
		return nil
	}
	return v
}

// Namespaces lists namespaces (Turbopuffer's GET /v1/namespaces); falls through when it may.
func (c *Client) Namespaces(ctx context.Context, prefix string) (map[string]interface{}, error) {
	r, _, err := c.NamespacesWithPerf(ctx, prefix)
	return r, err
}

func (c *Client) NamespacesWithPerf(ctx context.Context, prefix string) (map[string]interface{}, *Perf, error) {
	q := url.Values{}
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	var r map[string]interface{}
	perf, err := c.call(ctx, op{method: "GET", path: "/v1/namespaces", query: q, fallback: true}, &r)
	return r, perf, err
}

// GetMetadata reads the namespace's metadata, with Layer's view of it under "layer".
func (c *Client) GetMetadata(ctx context.Context, ns string) (map[string]interface{}, error) {
	var r map[string]interface{}
	_, err := c.call(ctx, op{method: "GET", path: nsPath("/v2/namespaces/%s/metadata", ns)}, &r)
	return r, err
}

// SnapshotHistoryEntry is one stored snapshot, newest first in GetHistory.
type SnapshotHistoryEntry struct {
	WatermarkMs int64  `json:"watermark_ms"`
	Sha         string `json:"sha"`
}

// GetHistory lists the namespace's snapshots, newest first.
func (c *Client) GetHistory(ctx context.Context, ns string) ([]SnapshotHistoryEntry, error) {
	var r []SnapshotHistoryEntry
	_, err := c.call(ctx, op{method: "GET", path: nsPath("/v2/namespaces/%s/history", ns)}, &r)
	return r, err
}

// GetSnapshot reads a stored snapshot body by (a prefix of) its sha.
func (c *Client) GetSnapshot(ctx context.Context, ns, sha string) (map[string]interface{}, error) {
	var r map[string]interface{}
	_, err := c.call(ctx, op{method: "GET", path: nsPath("/v2/namespaces/%s/snapshots/%s", ns, sha)}, &r)
	return r, err
}

// FetchDocumentsWithPerf is FetchDocuments with the call's Perf.
func (c *Client) FetchDocumentsWithPerf(ctx context.Context, ns string, ids []interface{}, includeAttributes []string) (*FetchDocumentsResponse, *Perf, error) {
	body := map[string]interface{}{"ids": ids}
	if includeAttributes != nil {
		body["include_attributes"] = includeAttributes
	}
	var r FetchDocumentsResponse
	perf, err := c.call(ctx, op{method: "POST", path: nsPath("/v2/namespaces/%s/documents", ns), body: body}, &r)
	return orNil(&r, err), perf, err
}

// SnapshotJobRequest asks for an on-demand snapshot of one field.
type SnapshotJobRequest struct {
	Field    string      `json:"field"`
	Source   string      `json:"source,omitempty"` // auto (default), stored, cache, origin
	Filters  interface{} `json:"filters,omitempty"`
	PageSize int         `json:"page_size,omitempty"`
}

// CreateSnapshotJob starts an on-demand snapshot job.
func (c *Client) CreateSnapshotJob(ctx context.Context, ns string, req SnapshotJobRequest) (map[string]interface{}, error) {
	var r map[string]interface{}
	_, err := c.call(ctx, op{method: "POST", path: nsPath("/v2/namespaces/%s/snapshots", ns), body: req}, &r)
	return r, err
}

// ListSnapshotJobs lists the namespace's snapshot jobs, oldest first.
func (c *Client) ListSnapshotJobs(ctx context.Context, ns string) (map[string]interface{}, error) {
	var r map[string]interface{}
	_, err := c.call(ctx, op{method: "GET", path: nsPath("/v2/namespaces/%s/snapshot-jobs", ns)}, &r)
	return r, err
}

// GetSnapshotJob reads one snapshot job.
func (c *Client) GetSnapshotJob(ctx context.Context, ns, jobID string) (map[string]interface{}, error) {
	var r map[string]interface{}
	_, err := c.call(ctx, op{method: "GET", path: nsPath("/v2/namespaces/%s/snapshot-jobs/%s", ns, jobID)}, &r)
	return r, err
}
