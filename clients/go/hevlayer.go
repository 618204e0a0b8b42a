// Package hevlayer is the Go client of Layer, a caching gateway in front of Turbopuffer.
//
//	client := hevlayer.NewClient()  // $LAYER_GATEWAY_URL, $LAYER_GATEWAY_API_KEY
//	job, err := client.WarmCache(ctx, "products", &hevlayer.WarmCacheParams{PageSize: 1000})
//	job, err = client.GetWarmJob(ctx, "products", job.ID)
//
// Hint-cache-warm step options are *bool, so an explicit false reaches the wire
// (HintCacheWarmParams{Turbopuffer: hevlayer.Bool(false)}). Every call has a …WithPerf twin that
// also returns the call's Perf. The Turbopuffer-compatible calls fall through to Turbopuffer
// directly when the gateway cannot be reached and a direct key is configured.
package hevlayer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

const (
	DefaultBaseURL        = "https://aws-us-east-1.hevlayer.com"
	DefaultTurbopufferURL = "https://aws-us-east-1.turbopuffer.com"
)

// Client talks to one gateway. Safe for concurrent use.
type Client struct {
	baseURL            string
	apiKey             string
	turbopufferURL     string
	turbopufferKey     string
	fallthroughEnabled bool
	http               *http.Client
}

// Option configures a Client.
type Option func(*Client)

func WithBaseURL(u string) Option          { return func(c *Client) { c.baseURL = strings.TrimRight(u, "/") } }
func WithAPIKey(k string) Option           { return func(c *Client) { c.apiKey = strings.TrimSpace(k) } }
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithTurbopuffer sets the direct Turbopuffer URL and key used for fall-through.
func WithTurbopuffer(u, key string) Option {
	return func(c *Client) {
		c.turbopufferURL = strings.TrimRight(u, "/")
		c.turbopufferKey = strings.TrimSpace(key)
	}
}

// WithFallthrough turns fall-through to Turbopuffer on (the default) or off.
func WithFallthrough(on bool) Option { return func(c *Client) { c.fallthroughEnabled = on } }

// NewClient makes a client; the URLs and keys default to $LAYER_GATEWAY_URL,
// $LAYER_GATEWAY_API_KEY, $TURBOPUFFER_API_URL and $TURBOPUFFER_API_KEY.
func NewClient(opts ...Option) *Client {
	c := &Client{
		baseURL:            strings.TrimRight(envOr("LAYER_GATEWAY_URL", DefaultBaseURL), "/"),
		apiKey:             strings.TrimSpace(os.Getenv("LAYER_GATEWAY_API_KEY")),
		turbopufferURL:     strings.TrimRight(envOr("TURBOPUFFER_API_URL", DefaultTurbopufferURL), "/"),
		turbopufferKey:     strings.TrimSpace(os.Getenv("TURBOPUFFER_API_KEY")),
		fallthroughEnabled: true,
		http:               &http.Client{Timeout: 30 * time.Second},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// Bool returns a pointer to b, for the *bool options.
func Bool(b bool) *bool { return &b }

// Perf is what a call cost, as the client saw it.
type Perf struct {
	LatencyMs   float64 `json:"latency_ms"`
	CacheStatus *string `json:"cache_status"` // x-layer-cache, when the gateway set it
	Fallback    *string `json:"fallback"`     // "turbopuffer_direct" when the call fell through
}

// Error is an answer with an error status, with the gateway's envelope.
type Error struct {
	Status  int
	Kind    string // the envelope's "error"
	Message string
	Body    []byte
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Kind, e.Message) }

type op struct {
	method   string
	path     string
	query    url.Values
	body     interface{}
	fallback bool
}

func nsPath(format string, ns string, rest ...string) string {
	args := []interface{}{url.PathEscape(ns)}
	for _, r := range rest {
		args = append(args, url.PathEscape(r))
	}
	return fmt.Sprintf(format, args...)
}

func (c *Client) send(ctx context.Context, o op, direct bool) (*http.Response, error) {
	base, key := c.baseURL, c.apiKey
	if direct {
		base, key = c.turbopufferURL, c.turbopufferKey
	}
	u := base + o.path
	if len(o.query) > 0 {
		u += "?" + o.query.Encode()
	}
	var body io.Reader
	if o.body != nil {
		b, err := json.Marshal(o.body)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, o.method, u, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "hevlayer-go/0.1.0")
	if o.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return c.http.Do(req)
}

// call makes the request (falling through when it may) and decodes a 2xx answer into out.
func (c *Client) call(ctx context.Context, o op, out interface{}) (*Perf, error) {
	start := time.Now()
	perf := &Perf{}
	res, err := c.send(ctx, o, false)
	if err != nil {
		if !o.fallback || !c.fallthroughEnabled || c.turbopufferKey == "" || ctx.Err() != nil {
			return nil, err
		}
		log.Printf("hevlayer: gateway unreachable (%v); falling through to Turbopuffer", err)
		res, err = c.send(ctx, o, true)
		if err != nil {
			return nil, err
		}
		f := "turbopuffer_direct"
		perf.Fallback = &f
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	perf.LatencyMs = float64(time.Since(start).Microseconds()) / 1000
	if v := res.Header.Get("x-layer-cache"); v != "" && perf.Fallback == nil {
		perf.CacheStatus = &v
	}
	if res.StatusCode >= 400 {
		e := &Error{Status: res.StatusCode, Body: raw, Message: http.StatusText(res.StatusCode)}
		var env struct {
			Error   string `json:"error"`
			Message string `json:"message"`
			Status  string `json:"status"`
		}
		if json.Unmarshal(raw, &env) == nil {
			e.Kind = env.Error
			if env.Message != "" {
				e.Message = env.Message
			} else if env.Status == "error" && env.Error != "" {
				e.Message = env.Error
			}
		} else if len(raw) > 0 {
			e.Message = string(raw)
		}
		return perf, e
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return perf, fmt.Errorf("hevlayer: decoding the answer: %w", err)
		}
	}
	if q, ok := out.(*QueryResponse); ok {
		if v := res.Header.Get("x-layer-stable-as-of"); v != "" {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				q.StableAsOf = &n
			}
		}
	}
	return perf, nil
}

// IsTransportError tells whether err is a failure to reach the server (no answer came).
func IsTransportError(err error) bool {
	var e *Error
	return err != nil && !errors.As(err, &e)
}
