package hevlayer_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"hevlayer"
)

// A recording server: the explicit false of the step options reaches the wire.
func TestHintCacheWarmSendsExplicitFalse(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.RawQuery)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"namespace":"products"}`))
	}))
	defer srv.Close()
	c := hevlayer.NewClient(hevlayer.WithBaseURL(srv.URL), hevlayer.WithAPIKey("k"))
	ctx := context.Background()
	if _, err := c.HintCacheWarm(ctx, "products", &hevlayer.HintCacheWarmParams{
		Turbopuffer: hevlayer.Bool(false), Documents: hevlayer.Bool(false), Snapshots: hevlayer.Bool(true),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.HintCacheWarm(ctx, "products", nil); err != nil {
		t.Fatal(err)
	}
	want := []string{"documents=false&snapshots=true&turbopuffer=false", ""}
	if strings.Join(seen, "|") != strings.Join(want, "|") {
		t.Fatalf("queries on the wire: %q, want %q", seen, want)
	}
}

// startLayer runs `layer <args>` (LAYER_BIN) on a free port and returns its URL.
func startLayer(t *testing.T, args ...string) string {
	t.Helper()
	bin := os.Getenv("LAYER_BIN")
	if bin == "" {
		bin = filepath.Join("..", "..", "build", "layer")
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no layer binary at %s", bin)
		}
		t.Skipf("no layer binary at %s (set LAYER_BIN)", bin)
	}
	dir := t.TempDir()
	portFile := filepath.Join(dir, "port")
	cmd := exec.Command(bin, append(args, "--listen", "127.0.0.1:0", "--port-file", portFile,
		"--data-dir", filepath.Join(dir, "data"))...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(15 * time.Second)
	for {
		if b, err := os.ReadFile(portFile); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			return "http://127.0.0.1:" + strings.TrimSpace(string(b))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start", args[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAgainstARealGateway(t *testing.T) {
	gw := startLayer(t, "serve")
	t.Setenv("LAYER_GATEWAY_URL", gw)
	t.Setenv("LAYER_GATEWAY_API_KEY", "go-client-key")
	client := hevlayer.NewClient()
	ctx := context.Background()
	rows := []interface{}{}
	for i := 1; i <= 20; i++ {
		rows = append(rows, map[string]interface{}{"id": i, "color": []string{"red", "blue"}[i%2]})
	}
	if _, err := client.Write(ctx, "products", map[string]interface{}{"upsert_rows": rows}); err != nil {
		t.Fatal(err)
	}

	// The seed page's snippet, verbatim.
	job, err := client.WarmCache(ctx, "products", &hevlayer.WarmCacheParams{
		PageSize: 1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	jobID := job.ID
	job, err = client.GetWarmJob(ctx, "products", jobID)
	if err != nil || job.ID != jobID {
		t.Fatalf("GetWarmJob: %v %+v", err, job)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	done, err := client.WaitForWarmJob(waitCtx, "products", jobID, nil)
	if err != nil || done.Status != "completed" || done.DocumentsScanned != 20 {
		t.Fatalf("WaitForWarmJob: %v %+v", err, done)
	}

	// An explicit false turns a step off at the gateway.
	r, err := client.HintCacheWarm(ctx, "products", &hevlayer.HintCacheWarmParams{
		Turbopuffer: hevlayer.Bool(false), Documents: hevlayer.Bool(false), Snapshots: hevlayer.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Turbopuffer.Enabled || r.Turbopuffer.Status != "skipped" || r.Documents.Status != "skipped" || !r.Snapshots.Enabled {
		t.Fatalf("hint: %+v", r)
	}

	// With perf: a warmed document is a hit.
	d, perf, err := client.FetchDocumentWithPerf(ctx, "products", 3, nil)
	if err != nil || d.Attributes["color"] != "blue" {
		t.Fatalf("fetch: %v %+v", err, d)
	}
	if perf.CacheStatus == nil || *perf.CacheStatus != "hit" || perf.Fallback != nil || perf.LatencyMs <= 0 {
		t.Fatalf("perf: %+v", perf)
	}
	q, err := client.Query(ctx, "products", map[string]interface{}{"rank_by": []string{"id", "asc"}, "top_k": 2})
	if err != nil || len(q.Rows) != 2 {
		t.Fatalf("query: %v %+v", err, q)
	}

	// An on-demand snapshot job of one field, from the origin.
	sj, err := client.CreateSnapshotJob(ctx, "products", hevlayer.SnapshotJobRequest{Field: "color", Source: "origin"})
	if err != nil || sj["field"] != "color" {
		t.Fatalf("snapshot job: %v %v", err, sj)
	}
	if got, err := client.GetSnapshotJob(ctx, "products", sj["id"].(string)); err != nil || got["id"] != sj["id"] {
		t.Fatalf("snapshot job: %v %v", err, got)
	}

	// Errors carry the envelope.
	_, err = client.FetchDocument(ctx, "products", 999, nil)
	var e *hevlayer.Error
	if !errors.As(err, &e) || e.Status != 404 || e.Kind != "not_found" || !strings.Contains(e.Message, "999") {
		t.Fatalf("error: %#v", err)
	}
	_, err = client.WarmCache(ctx, "products", &hevlayer.WarmCacheParams{PageSize: 20000})
	if !errors.As(err, &e) || e.Status != 422 || e.Kind != "validation_error" {
		t.Fatalf("error: %#v", err)
	}
}

func TestFallsThroughWhenTheGatewayIsDown(t *testing.T) {
	direct := startLayer(t, "origin", "--api-key", "direct-key")
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	down := "http://" + l.Addr().String()
	l.Close()
	c := hevlayer.NewClient(hevlayer.WithBaseURL(down), hevlayer.WithAPIKey("k"),
		hevlayer.WithTurbopuffer(direct, "direct-key"))
	ctx := context.Background()
	w, perf, err := c.WriteWithPerf(ctx, "go_fall", map[string]interface{}{
		"upsert_rows": []interface{}{map[string]interface{}{"id": 1, "v": 1}}})
	if err != nil || perf.Fallback == nil || *perf.Fallback != "turbopuffer_direct" || w["rows_upserted"] != float64(1) {
		t.Fatalf("write: %v %+v %v", err, perf, w)
	}
	if _, err := c.WarmCache(ctx, "go_fall", nil); !hevlayer.IsTransportError(err) {
		t.Fatalf("a Layer-only call must fail fast: %v", err)
	}
	off := hevlayer.NewClient(hevlayer.WithBaseURL(down), hevlayer.WithTurbopuffer(direct, "direct-key"),
		hevlayer.WithFallthrough(false))
	if _, err := off.Write(ctx, "go_fall", map[string]interface{}{"upsert_rows": []interface{}{}}); !hevlayer.IsTransportError(err) {
		t.Fatalf("fall-through off: %v", err)
	}
}
