// Package httpapi serves a keymesh node's public HTTP API: JSON-RPC 2.0
// (https://www.jsonrpc.org/specification) at POST /, batches included, and
// GET /healthz, /readyz and /metrics beside it. The wire contract (limits,
// error codes, HTTP statuses) is documented in package api.
//
// Methods live in a Registry, filled by one Register… function per method
// group (a file each, e.g. node.go); the node wires them explicitly.
//
// The handler logs one line per HTTP request (request id, path, JSON-RPC
// methods, status, duration) and the cause of every internal error, through
// the injected *slog.Logger; it never logs request or response bodies. The
// request id is returned to the client in the X-Request-Id header.
package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/envelope"
)

// Options configure NewHandler.
type Options struct {
	Registry *Registry
	Logger   *slog.Logger // nil discards logs
	Metrics  *Metrics     // nil: no metrics, and /metrics is 404
	// Ready reports readiness for GET /readyz; nil means always ready.
	Ready func(ctx context.Context) api.ReadyStatus
	// Routes are extra HTTP routes beside JSON-RPC (the attestation
	// document, the passkey page); each Pattern is an http.ServeMux pattern
	// such as "GET /attestation".
	Routes []Route
	// Sealing, if set, makes POST / open sealed requests (sealed.go) and
	// refuse plaintext ones unless Sealing.AllowPlaintext. Nil serves
	// plaintext JSON-RPC only.
	Sealing *Sealing
	// RateLimits, if set, limit the JSON-RPC requests of each client
	// address and each scope (ratelimit.go); nil serves without limits.
	RateLimits *RateLimits
	// TrustedProxies are the addresses of reverse proxies in front of the
	// node: a request whose TCP peer is in one of them is charged to the
	// client address the proxies appended to X-Forwarded-For (the
	// rightmost that is not itself a trusted proxy). Empty: the client
	// address is the TCP peer's, and the header is ignored.
	TrustedProxies []netip.Prefix
	// CORS, if set, lets the origins of a scope read the answers to its
	// passkey ceremonies and GET /attestation (cors.go); nil: no CORS.
	CORS *CORS
}

// Route is one extra HTTP route served by NewHandler's handler.
type Route struct {
	Pattern string
	Handler http.Handler
}

// handler is the http.Handler returned by NewHandler.
type handler struct {
	Options
	mux     *http.ServeMux
	limiter *rateLimiter // nil without Options.RateLimits
}

// NewHandler returns the node's HTTP handler.
func NewHandler(opts Options) http.Handler {
	if opts.Registry == nil {
		opts.Registry = NewRegistry()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{Options: opts, mux: http.NewServeMux()}
	if opts.RateLimits != nil {
		h.limiter = newRateLimiter(*opts.RateLimits, nil)
	}
	h.mux.HandleFunc("POST /{$}", h.serveRPC)
	h.mux.HandleFunc("GET /healthz", h.serveHealth)
	h.mux.HandleFunc("GET /readyz", h.serveReady)
	// Metrics are counted here but served on their own listener
	// (Metrics.Handler), never on the public API port.
	for _, r := range opts.Routes {
		h.mux.Handle(r.Pattern, r.Handler)
	}
	return h
}

// Server timeouts, so that a slow or stuck client cannot hold a connection.
// WriteTimeout bounds the whole handling of a request, MPC sessions
// included.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 60 * time.Second
	IdleTimeout       = 120 * time.Second
	// RequestTimeout bounds the handling of one JSON-RPC body (a whole
	// batch): handlers see it as their context's deadline, so they stop
	// before WriteTimeout cuts the connection.
	RequestTimeout = WriteTimeout - 5*time.Second
)

// NewServer returns an http.Server for h with the timeouts above and a
// header size limit; the server's own errors go to logger.
func NewServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		ConnContext:       connContext, // for LimitListener's choice of victims
	}
}

type ctxKey struct{}

// RequestID returns the id of the HTTP request being served, for handlers
// that log.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// statusWriter records the status code for logs and metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer servingConn(r.Context())()
	start := time.Now()
	var b [8]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	w.Header().Set("X-Request-Id", id)
	var methods []string
	cw, preflight := h.cors(w, r, &methods)
	sw := &statusWriter{ResponseWriter: cw}
	ctx := context.WithValue(r.Context(), ctxKey{}, id)
	ctx = context.WithValue(ctx, methodsKey{}, &methods)
	ctx = withProofs(ctx, r.Header.Get(ProofsHeader))
	ctx = envelope.WithSource(ctx, SourceOf(clientAddr(r, h.TrustedProxies)))
	if preflight {
		h.servePreflight(sw, r.WithContext(ctx))
	} else {
		h.mux.ServeHTTP(sw, r.WithContext(ctx))
	}
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	path := r.URL.Path
	if _, pattern := h.mux.Handler(r); pattern == "" {
		path = "other" // bound the label set
	}
	if h.Metrics != nil {
		h.Metrics.observeHTTP(path, sw.status)
	}
	level := slog.LevelInfo
	if path == "/healthz" || path == "/readyz" {
		level = slog.LevelDebug
	}
	h.Logger.LogAttrs(ctx, level, "http request",
		slog.String("request_id", id),
		slog.String("http_method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("remote", r.RemoteAddr),
		slog.String("rpc_methods", strings.Join(methods, ",")),
		slog.Int("status", sw.status),
		slog.Duration("duration", time.Since(start)))
}

type methodsKey struct{}

// clientAddr is the address a request is charged to: its TCP peer's, or,
// when that is one of trusted (reverse proxies), the rightmost address of
// X-Forwarded-For that is not itself a trusted proxy (each proxy appends
// the address it received the request from; the entries left of the
// nearest untrusted one are the client's to write, so not believed).
func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	if len(trusted) == 0 {
		return r.RemoteAddr
	}
	isTrusted := func(s string) bool {
		ip, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return false
		}
		ip = ip.Unmap()
		for _, p := range trusted {
			if p.Contains(ip) {
				return true
			}
		}
		return false
	}
	peer, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		peer = r.RemoteAddr
	}
	if !isTrusted(peer) {
		return r.RemoteAddr
	}
	addr := r.RemoteAddr
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		if _, err := netip.ParseAddr(hop); err != nil {
			break // not an address: stop believing the header here
		}
		addr = hop
		if !isTrusted(hop) {
			break
		}
	}
	return addr
}

// ClientSource returns the client address of the request being served,
// as SourceOf gives it (an IPv4 address or an IPv6 /64), for handlers that
// limit per client; "" outside a request.
func ClientSource(ctx context.Context) string { return envelope.Source(ctx) }

func (h *handler) serveHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (h *handler) serveReady(w http.ResponseWriter, r *http.Request) {
	st := api.ReadyStatus{Ready: true, Down: []uint16{}}
	if h.Ready != nil {
		st = h.Ready(r.Context())
		if st.Down == nil {
			st.Down = []uint16{}
		}
	}
	code := http.StatusOK
	if !st.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, st)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own types are written here; they always marshal.
		panic(fmt.Sprintf("httpapi: marshal %T: %v", v, err))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

var nullID = json.RawMessage("null")

func errorResponse(id json.RawMessage, e *api.Error) *api.Response {
	if id == nil {
		id = nullID
	}
	return &api.Response{JSONRPC: api.Version, ID: id, Error: e}
}

func (h *handler) serveRPC(w http.ResponseWriter, r *http.Request) {
	if e := checkContentType(r.Header, h.Sealing != nil); e != nil {
		h.count(r.Context(), "invalid", e.Code, 0)
		writeJSON(w, http.StatusUnsupportedMediaType, errorResponse(nil, e))
		return
	}
	limit := int64(api.MaxBodyBytes)
	if h.Sealing != nil {
		limit = sealedBodyLimit(r.Header)
	}
	body, err := readBody(w, r, limit)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.count(r.Context(), "invalid", api.CodeLimitExceeded, 0)
			writeJSON(w, http.StatusRequestEntityTooLarge, errorResponse(nil,
				api.Errorf(api.CodeLimitExceeded, "request body larger than %d bytes", limit)))
			return
		}
		// The client went away or sent a broken body: nobody to answer.
		h.Logger.Debug("reading request body", "request_id", RequestID(r.Context()), "err", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if h.Sealing != nil {
		h.serveSealed(w, r, body)
		return
	}
	h.servePlain(w, r, body)
}

// checkContentType refuses a request whose Content-Type is not what its
// mode sends: application/json for JSON-RPC (plaintext, or Passport's
// compatibility mode, whose X-Encrypted-Key header marks it) and
// application/keymesh-sealed for HPKE mode (only where sealing is on). A
// charset parameter, if any, must be utf-8.
//
// This is what keeps browsers' cross-origin requests out: a form or a
// fetch may POST text/plain, application/x-www-form-urlencoded or
// multipart/form-data to any origin without asking it first, but
// application/json (or any other type) needs a CORS preflight, which the
// node grants only to a scope's own origins, and then lets them read only
// the answers of the passkey ceremonies (cors.go). So a page on another
// origin cannot, for example, run keymesh_initiateRegistration from its
// visitors' browsers.
func checkContentType(h http.Header, sealing bool) *api.Error {
	want := "application/json"
	if sealing && envelope.DetectMode(h) == envelope.ModeHPKE {
		want = envelope.ContentType
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err == nil && mt == want {
		cs, ok := params["charset"]
		delete(params, "charset")
		if len(params) == 0 && (!ok || strings.EqualFold(cs, "utf-8")) {
			return nil
		}
	}
	if want == envelope.ContentType {
		return api.Errorf(api.CodeInvalidRequest, "unsupported Content-Type: a sealed request must be sent as %s", want)
	}
	return api.Errorf(api.CodeInvalidRequest, "unsupported Content-Type: JSON-RPC requests must be sent as application/json (charset utf-8, if any)")
}

// readBody reads r's body, at most limit bytes, in one allocation when the
// client announced its length (io.ReadAll's growth would copy a 1 MiB body
// several times over).
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, limit)
	if n := r.ContentLength; n > 0 && n <= limit {
		var b bytes.Buffer
		b.Grow(int(n) + bytes.MinRead)
		_, err := b.ReadFrom(body)
		return b.Bytes(), err
	}
	return io.ReadAll(body)
}

// servePlain answers a plaintext JSON-RPC body.
func (h *handler) servePlain(w http.ResponseWriter, r *http.Request, body []byte) {
	status, resp, retry := h.dispatch(r.Context(), body)
	if retry > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((retry+time.Second-1)/time.Second), 10))
	}
	if resp == nil {
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, resp)
}

// dispatch runs a JSON-RPC body (a request or a batch) and returns the HTTP
// status and the response to send: an *api.Response, a batch of them, or
// nil with http.StatusNoContent when there is nothing to answer. When every
// answer is a rate-limit refusal, the status is 429 and retry is the
// longest of their retry-after hints (else 0).
func (h *handler) dispatch(ctx context.Context, body []byte) (status int, resp any, retry time.Duration) {
	items, batch, top := decodeBody(body)
	if top != nil {
		h.count(ctx, "invalid", top.Code, 0)
		return http.StatusOK, errorResponse(nil, top), 0
	}
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	var out []*api.Response
	limited := 0
	for _, it := range items {
		if resp := h.run(ctx, it); resp != nil {
			out = append(out, resp)
			if resp.Error != nil && resp.Error.Code == api.CodeRateLimited {
				d, _ := api.RetryAfter(resp.Error)
				limited++
				retry = max(retry, d)
			}
		}
	}
	status = http.StatusOK
	if limited == 0 || limited < len(out) {
		retry = 0
	} else {
		status = http.StatusTooManyRequests
	}
	switch {
	case len(out) == 0:
		return http.StatusNoContent, nil, 0
	case batch:
		return status, out, retry
	default:
		return status, out[0], retry
	}
}

// run executes one item and returns its response, or nil for a
// notification.
func (h *handler) run(ctx context.Context, it item) *api.Response {
	if it.err != nil {
		h.count(ctx, "invalid", it.err.Code, 0)
		return errorResponse(it.id, it.err)
	}
	req := it.req
	start := time.Now()
	fn, ok := h.Registry.lookup(req.method)
	label := req.method
	if !ok {
		label = "unknown"
	}
	if ms, ok := ctx.Value(methodsKey{}).(*[]string); ok {
		*ms = append(*ms, label)
	}
	var result json.RawMessage
	var rpcErr *api.Error
	if h.limiter != nil {
		scope := SealedScope(ctx)
		if scope == "" && ok {
			scope = paramsScope(req.params)
		}
		rpcErr = h.limiter.admit(ClientSource(ctx), scope, req.method)
	}
	if rpcErr != nil {
		// refused by a rate limit: nothing runs
	} else if !ok {
		rpcErr = api.Errorf(api.CodeMethodNotFound, "method not found")
	} else {
		result, rpcErr = h.call(ctx, fn, req)
	}
	code := 0
	if rpcErr != nil {
		code = rpcErr.Code
	}
	h.count(ctx, label, code, time.Since(start))
	if req.id == nil {
		return nil // notification: run, never answered
	}
	if rpcErr != nil {
		return errorResponse(req.id, rpcErr)
	}
	return &api.Response{JSONRPC: api.Version, ID: req.id, Result: result}
}

// call runs fn, turning any error that is not an *api.Error, and any panic,
// into an internal error whose cause goes only to the log.
func (h *handler) call(ctx context.Context, fn Handler, req *request) (result json.RawMessage, rpcErr *api.Error) {
	internal := func(cause any) {
		h.Logger.ErrorContext(ctx, "internal error",
			"request_id", RequestID(ctx), "rpc_method", req.method, "err", cause)
		result, rpcErr = nil, api.Errorf(api.CodeInternalError, "internal error")
	}
	defer func() {
		if p := recover(); p != nil {
			internal(fmt.Sprintf("panic: %v\n%s", p, debug.Stack()))
		}
	}()
	v, err := fn(ctx, req.params)
	if err != nil {
		var e *api.Error
		if errors.As(err, &e) {
			return nil, e
		}
		internal(err)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		internal(fmt.Errorf("marshal result: %w", err))
		return
	}
	return b, nil
}

func (h *handler) count(ctx context.Context, method string, code int, d time.Duration) {
	if h.Metrics != nil {
		h.Metrics.observeRPC(method, code, d)
	}
}
