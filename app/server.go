// Package app is the web layer: routes, handlers, sessions, rendering. It is
// the only package that imports Echo.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/handoffhq/handoff/app/realtime"
	"github.com/handoffhq/handoff/matching"
	"github.com/handoffhq/handoff/models"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// Server holds the dependencies every handler needs.
type Server struct {
	cfg     Config
	store   *models.Store
	log     *slog.Logger
	keys    *KeyRing
	echo    *echo.Echo
	views   *views
	metrics *metrics
	logins  *limiter
	mailer  Mailer
	secure  bool // cookies get Secure: the base URL is https

	hub        *realtime.Hub
	apiLimit   *limiter
	loop       *matching.Dispatcher
	peers      *peers                // nil on SQLite: one instance only
	ds         *models.Store         // the dispatcher's store: its own pool, or store
	times      ttlCache[recentTimes] // per brand, for wait estimates
	profiles   profileCache
	beats      beats
	board      agentBoard
	brands     ttlCache[models.Brand]
	apiKeys    ttlCache[models.APIKey] // live keys by digest
	agentNames ttlCache[string]
	skills     ttlCache[[]models.BrandSkill] // per brand, to check escalations' skills
	headcounts ttlCache[headcount]           // per brand, language, skills and ladder step, for wait estimates
	queueMu    sync.Mutex
	lastQueue  map[string]string // conversation → last queue frame sent
	line       queueLine         // the waiting conversations as the last sweep here read them
	passBrands brandGuess        // brands of the last offer pass's queue, read beside the next one's
	queue      queueWatch        // whether anything can have joined the queue since a pass found it empty

	// dispatchLease is the dispatch lock, held across offer passes while
	// this instance leads (PostgreSQL).
	dispatchLease lease

	// sockets is the context of every websocket; Serve cancels it at
	// shutdown, since http.Server.Shutdown does not wait for them.
	sockets     context.Context
	stopSockets context.CancelFunc
	socketsOpen sync.WaitGroup // socket handlers still running, waited for at shutdown
}

// New builds a server over a migrated store.
func New(ctx context.Context, cfg Config, store *models.Store, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, store: store, ds: store, log: log, secure: strings.HasPrefix(cfg.BaseURL, "https://")}
	var err error
	if store.Dialect == models.Postgres && cfg.DispatchConns > 0 {
		if s.ds, err = models.Open(ctx, cfg.DatabaseURL, models.Options{Clock: store.Clock, Log: log, MaxOpenConns: cfg.DispatchConns}); err != nil {
			return nil, fmt.Errorf("dispatcher pool: %w", err)
		}
		s.ds.PasswordCost = store.PasswordCost
	}
	if len(cfg.SecretKeys) > 0 {
		s.keys, err = ParseSecretKeys(cfg.SecretKeys)
	} else {
		s.keys, err = keyRingFromStore(ctx, store)
	}
	if err != nil {
		return nil, err
	}
	if s.views, err = loadViews(); err != nil {
		return nil, err
	}
	if s.mailer, err = newMailer(cfg.SMTPURL); err != nil {
		return nil, err
	}
	s.brands.ttl, s.times.ttl, s.skills.ttl, s.headcounts.ttl = cfg.SnapshotTTL, cfg.SnapshotTTL, cfg.SnapshotTTL, cfg.SnapshotTTL
	s.apiKeys.ttl = cfg.SnapshotTTL
	if cfg.SnapshotTTL > 0 {
		s.agentNames.ttl = profileTTL
	}
	s.metrics = newMetrics()
	if err := s.metrics.watchPool("main", store); err != nil {
		return nil, err
	}
	if s.ds != store {
		if err := s.metrics.watchPool("dispatch", s.ds); err != nil {
			return nil, err
		}
	}
	s.logins = newLimiter(store.Now)
	s.apiLimit = newLimiter(store.Now)
	s.hub = realtime.NewHub()
	s.lastQueue = map[string]string{}
	if store.Dialect == models.Postgres {
		s.peers = newPeers(s)
	}
	s.sockets, s.stopSockets = context.WithCancel(context.Background())
	s.loop = matching.NewDispatcher(
		s.timedPass("offer", func(ctx context.Context) error { return s.exclusivePass(ctx, s.offerQueued) }),
		s.timedPass("sweep", func(ctx context.Context) error {
			// The sweep's expiries and lapses requeue conversations (here
			// or, with the lease elsewhere, on another instance): the offer
			// pass it wakes must read the queue.
			defer s.queue.changed()
			if err := s.sweepPass(ctx); err != nil {
				return err
			}
			return s.refreshBoard(ctx)
		}),
		time.Second, log)
	s.echo = echo.New()
	s.echo.HideBanner, s.echo.HidePort = true, true
	s.echo.HTTPErrorHandler = s.handleError
	s.echo.IPExtractor = echo.ExtractIPDirect()
	if cfg.TrustProxy {
		s.echo.IPExtractor = echo.ExtractIPFromXFFHeader()
	}
	s.routes()
	return s, nil
}

// Close releases what New opened besides the store it was given.
func (s *Server) Close() error {
	if s.ds != s.store {
		return s.ds.Close()
	}
	return nil
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.echo }

// Serve answers on ln until ctx is cancelled, then shuts down gracefully,
// giving open requests up to 10 s.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	loopCtx, stopLoop := context.WithCancel(ctx)
	done := make(chan struct{})
	defer func() { stopLoop(); <-done }()
	go func() { s.RunBackground(loopCtx); close(done) }()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.stopSockets()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	// Shutdown does not wait for hijacked connections: wait for the socket
	// handlers (their context is cancelled) so none is still using the
	// database when the caller closes it.
	closed := make(chan struct{})
	go func() { s.socketsOpen.Wait(); close(closed) }()
	select {
	case <-closed:
	case <-shutdownCtx.Done():
		s.log.Warn("shutdown: websocket handlers still running")
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// RunBackground runs the dispatcher and, on PostgreSQL, the cross-instance
// fan-out until ctx ends, for callers that serve Handler themselves (tests
// with httptest). Serve runs it on its own.
func (s *Server) RunBackground(ctx context.Context) {
	if s.peers != nil {
		go s.peers.run(ctx)
	}
	go s.runBeats(ctx)
	s.loop.Run(ctx)
	s.dispatchLease.release()
}

// middleware common to every route, outermost first.
func (s *Server) baseMiddleware() []echo.MiddlewareFunc {
	return []echo.MiddlewareFunc{
		// An incoming X-Request-Id is kept only when it is short and plain
		// (withLogger checks), so clients cannot inject text into logs.
		middleware.RequestIDWithConfig(middleware.RequestIDConfig{Generator: models.NewID}),
		s.withLogger,
		s.recoverPanics,
		s.securityHeaders,
		middleware.BodyLimit("1M"),
		s.metrics.middleware,
	}
}

// requestID returns the id of the request (also sent as X-Request-Id).
func requestID(c echo.Context) string {
	return c.Response().Header().Get(echo.HeaderXRequestID)
}

// withLogger logs each request with its id once it is done. Only the path is
// logged, never query strings or bodies: they can hold customer content.
func (s *Server) withLogger(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := requestID(c)
		if !plainID(id) {
			id = models.NewID()
			c.Response().Header().Set(echo.HeaderXRequestID, id)
		}
		log := s.log.With("request_id", id)
		c.Set(ctxLog, log)
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		log.Info("request", "method", c.Request().Method, "path", c.Request().URL.Path, "route", c.Path(),
			"status", c.Response().Status, "duration_ms", time.Since(start).Milliseconds(), "ip", c.RealIP())
		return nil
	}
}

func plainID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// logger returns the request's logger.
func (s *Server) logger(c echo.Context) *slog.Logger {
	if l, ok := c.Get(ctxLog).(*slog.Logger); ok {
		return l
	}
	return s.log
}

func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		return next(c)
	}
}

func (s *Server) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		if s.secure {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		return next(c)
	}
}

// context keys
const (
	ctxLog     = "log"
	ctxUser    = "user"
	ctxSession = "session"
	ctxMember  = "member"
	ctxAgent   = "agent"
)
