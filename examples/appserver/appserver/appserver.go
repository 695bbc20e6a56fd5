package appserver

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/turnstilemq/turnstile/pkg/tokenclient"
)

// Config configures the example application server.
type Config struct {
	Listen string             // address to listen on, e.g. "127.0.0.1:8081"
	Tokens tokenclient.Config // the token API and the AccessKey
	// Devices maps a device id to its secret.
	Devices map[string]string
	// Allow decides whether a device may have a resource; nil: only topics under
	// "devices/<device id>/" (and that subtree as a filter).
	Allow func(device, resource string) bool
	// AdminSecret protects POST /admin/revoke (Authorization: Bearer <secret>); "" disables it.
	AdminSecret string
	// OnListen, when set, is called with the bound address once the server listens.
	OnListen func(addr net.Addr)
	Logger   *slog.Logger
}

// RightsRequest is what a device sends to POST /rights.
type RightsRequest struct {
	Device    string   `json:"device"`
	Secret    string   `json:"secret"`
	Resources []string `json:"resources"`
	Actions   string   `json:"actions"` // "R", "W" or "R,W"
}

// RightsResponse is the answer: what the device needs to connect.
type RightsResponse struct {
	Token    string `json:"token"`
	Type     string `json:"type"`      // "R", "W" or "RW": the CONNECT and upload spelling
	ExpireAt int64  `json:"expire_at"` // Unix milliseconds
	Username string `json:"username"`  // "Token|<AccessKeyId>|<InstanceId>"
	Cached   bool   `json:"cached"`
}

// Server is the example application server.
type Server struct {
	cfg    Config
	client *tokenclient.Client
	log    *slog.Logger

	mu     sync.Mutex
	issued map[string]map[string]bool // device → tokens handed out, for revocation
}

// New returns a server over cfg.
func New(cfg Config) (*Server, error) {
	c, err := tokenclient.New(cfg.Tokens)
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Allow == nil {
		cfg.Allow = func(device, resource string) bool {
			return strings.HasPrefix(resource, "devices/"+device+"/") || resource == "devices/"+device+"/#"
		}
	}
	return &Server{cfg: cfg, client: c, log: cfg.Logger, issued: map[string]map[string]bool{}}, nil
}

// Run serves until ctx is done.
func Run(ctx context.Context, cfg Config) error {
	s, err := New(cfg)
	if err != nil {
		return err
	}
	return s.Serve(ctx)
}

// Serve listens on Config.Listen and serves until ctx is done.
func (s *Server) Serve(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return err
	}
	if s.cfg.OnListen != nil {
		s.cfg.OnListen(ln.Addr())
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	s.log.Info("appserver: listening", "addr", ln.Addr().String())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Handler serves POST /rights and POST /admin/revoke.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /rights", s.rights)
	mux.HandleFunc("POST /admin/revoke", s.revoke)
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (s *Server) rights(w http.ResponseWriter, r *http.Request) {
	var req RightsRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body: JSON RightsRequest"})
		return
	}
	want, known := s.cfg.Devices[req.Device]
	if !known {
		want = "\x00no such device" // compare anyway
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(req.Secret)) != 1 || !known {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unknown device or wrong secret"})
		return
	}
	if len(req.Resources) == 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "resources: at least one"})
		return
	}
	for _, res := range req.Resources {
		if !s.cfg.Allow(req.Device, res) {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "resource not allowed for this device: " + res})
			return
		}
	}
	tok, cached, err := s.client.Get(r.Context(), req.Resources, req.Actions)
	if err != nil {
		status := http.StatusBadGateway
		var ae *tokenclient.APIError
		if errors.As(err, &ae) && ae.Status < 500 && ae.Status != http.StatusTooManyRequests {
			status = http.StatusBadRequest
		}
		s.log.Warn("appserver: no token", "device", req.Device, "err", err)
		writeJSON(w, status, map[string]string{"error": "no token: " + err.Error()})
		return
	}
	s.mu.Lock()
	if s.issued[req.Device] == nil {
		s.issued[req.Device] = map[string]bool{}
	}
	s.issued[req.Device][tok.Token] = true
	s.mu.Unlock()
	s.log.Info("appserver: rights granted", "device", req.Device, "type", tok.Type(), "expire_at", tok.ExpireAt, "cached", cached)
	writeJSON(w, http.StatusOK, RightsResponse{Token: tok.Token, Type: tok.Type(), ExpireAt: tok.ExpireAt.UnixMilli(),
		Username: tokenclient.Username(s.cfg.Tokens.AccessKeyID, s.cfg.Tokens.InstanceID), Cached: cached})
}

// RevokeDevice revokes every token handed out to the device: its connections are cut off.
func (s *Server) RevokeDevice(ctx context.Context, device string) (int, error) {
	s.mu.Lock()
	toks := s.issued[device]
	delete(s.issued, device)
	s.mu.Unlock()
	n := 0
	for tok := range toks {
		if err := s.client.RevokeToken(ctx, tok); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if s.cfg.AdminSecret == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.AdminSecret)) != 1 {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "admin secret required"})
		return
	}
	device := r.URL.Query().Get("device")
	n, err := s.RevokeDevice(r.Context(), device)
	if err != nil {
		writeJSON(w, http.StatusBadGateway, map[string]any{"error": err.Error(), "revoked": n})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"revoked": n})
}
