package app

import (
	"context"
	"crypto/subtle"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/handoffhq/handoff/models"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics is the server's own Prometheus registry (no global state, so two
// servers in one test process do not collide).
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	logins   *prometheus.CounterVec
	sockets  prometheus.Counter
	online   prometheus.Gauge
	passes   *prometheus.HistogramVec // dispatch pass duration by kind
	phases   *prometheus.HistogramVec // an offer pass's time by phase: read, commit, publish
	toOffer  prometheus.Histogram     // queued → offered
	offers   *prometheus.CounterVec   // offers by outcome
	skipped  prometheus.Counter       // offer passes that read nothing: the queue known empty
	shed     prometheus.Counter       // escalations refused while the database's work queues (Config.ShedWriteWait)

	peerDelivery prometheus.Histogram // another instance's NOTIFY received → its frames sent here
	msgStore     prometheus.Histogram // a chat message's store, batched with others, to its commit
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "handoff_http_requests_total", Help: "HTTP requests by route and status.",
	}, []string{"method", "route", "status"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "handoff_http_request_duration_seconds", Help: "HTTP request latency by route.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"method", "route"})
	m.logins = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "handoff_logins_total", Help: "Sign-in attempts by outcome.",
	}, []string{"outcome"})
	m.sockets = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "handoff_websocket_connections_total", Help: "Websocket connections accepted.",
	})
	m.online = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "handoff_websocket_open", Help: "Websockets open now.",
	})
	m.passes = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "handoff_dispatch_pass_seconds", Help: "Dispatch pass duration: offer (on wake) or sweep (every second).",
		Buckets: []float64{.001, .0025, .005, .01, .02, .03, .05, .1, .25, .5, 1},
	}, []string{"kind"})
	m.phases = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "handoff_offer_pass_phase_seconds",
		Help:    "Time of an offer pass that read the queue, by phase: read (the queue, the agents touched, brands, matching), commit (the offers' statement, for passes that made offers), publish (their frames).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .02, .05, .1, .25, 1},
	}, []string{"phase"})
	m.toOffer = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "handoff_escalation_to_offer_seconds", Help: "Time from a conversation entering the queue to its offer.",
		Buckets: []float64{.005, .01, .02, .03, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	})
	m.offers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "handoff_offers_total", Help: "Offers by outcome: made, accepted, declined, expired, withdrawn.",
	}, []string{"outcome"})
	m.skipped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "handoff_dispatch_passes_skipped_total", Help: "Offer passes that read nothing, the queue being known to be empty (counted in handoff_dispatch_pass_seconds too).",
	})
	m.shed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "handoff_escalations_shed_total", Help: "Escalations refused (503) because the database's work was queueing past HANDOFF_SHED_WRITE_WAIT.",
	})
	m.peerDelivery = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "handoff_peer_delivery_seconds", Help: "Time from another instance's NOTIFY reaching this one to its frames being sent to the sockets here (its rows read).",
		Buckets: []float64{.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 10},
	})
	m.msgStore = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "handoff_message_store_seconds", Help: "Time to store a chat message (stored with the others that arrived meanwhile, in one commit), from its command or request to its answer, errors included.",
		Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, 1, 5},
	})
	m.reg.MustRegister(m.passes, m.phases, m.toOffer, m.offers, m.skipped, m.shed, m.peerDelivery, m.msgStore)
	m.reg.MustRegister(m.requests, m.duration, m.logins, m.sockets, m.online,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// watchPool exports a connection pool's statistics (open, in use, waits
// and time spent waiting for a connection) as go_sql_* with db_name=name.
func (m *metrics) watchPool(name string, st *models.Store) error {
	if err := m.reg.Register(newPoolCollector(st, name)); err != nil {
		return err
	}
	if _, ok := st.SQLiteWrites(); !ok {
		return nil
	}
	// SQLite: how busy its one writer is (held seconds per second near 1
	// is saturated) and the statements kept compiled.
	labels := prometheus.Labels{"db": name}
	read := func(f func(models.SQLiteWrites) float64) func() float64 {
		return func() float64 { w, _ := st.SQLiteWrites(); return f(w) }
	}
	for _, c := range []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "handoff_sqlite_write_turns_total", ConstLabels: labels,
			Help: "Write turns taken at the SQLite store's gate."}, read(func(w models.SQLiteWrites) float64 { return float64(w.Turns) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "handoff_sqlite_write_transactions_total", ConstLabels: labels,
			Help: "Write transactions the SQLite store ran, several to a commit when they wait together."}, read(func(w models.SQLiteWrites) float64 { return float64(w.Transactions) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "handoff_sqlite_write_groups_total", ConstLabels: labels,
			Help: "Commits of the SQLite store's write transactions (groups of them)."}, read(func(w models.SQLiteWrites) float64 { return float64(w.Groups) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "handoff_sqlite_write_held_seconds_total", ConstLabels: labels,
			Help: "Time writes held the SQLite store's turn, summed."}, read(func(w models.SQLiteWrites) float64 { return w.Held.Seconds() })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "handoff_sqlite_write_waited_seconds_total", ConstLabels: labels,
			Help: "Time writes waited for the SQLite store's turn, summed."}, read(func(w models.SQLiteWrites) float64 { return w.Waited.Seconds() })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "handoff_sqlite_write_backlog_seconds", ConstLabels: labels,
			Help: "How long the write waiting longest for the SQLite store's turn has waited (0: none waits)."}, func() float64 { return st.WriteBacklog().Seconds() }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "handoff_sqlite_statements_compiled_total", ConstLabels: labels,
			Help: "Statements the SQLite store's connections compiled."}, read(func(w models.SQLiteWrites) float64 { return float64(w.StatementsCompiled) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "handoff_sqlite_statements_kept", ConstLabels: labels,
			Help: "Statements the SQLite store's connections keep compiled now."}, read(func(w models.SQLiteWrites) float64 { return float64(w.StatementsKept) })),
	} {
		if err := m.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *metrics) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		m.requests.WithLabelValues(c.Request().Method, route, strconv.Itoa(c.Response().Status)).Inc()
		m.duration.WithLabelValues(c.Request().Method, route).Observe(time.Since(start).Seconds())
		return nil
	}
}

// handleMetrics serves the registry to loopback clients, or to anyone with
// the bearer token when HANDOFF_METRICS_TOKEN is set.
func (s *Server) handleMetrics(c echo.Context) error {
	if !s.operatorProbe(c) {
		return echo.NewHTTPError(http.StatusForbidden, "metrics are served on loopback or with the metrics token")
	}
	promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}).ServeHTTP(c.Response(), c.Request())
	return nil
}

// handleProfile serves Go's profiles (/debug/pprof/…) under the same rule
// as /metrics, for measuring the server under load.
func (s *Server) handleProfile(c echo.Context) error {
	if !s.operatorProbe(c) {
		return echo.NewHTTPError(http.StatusForbidden, "profiles are served on loopback or with the metrics token")
	}
	switch name := c.Param("*"); name {
	case "profile":
		pprof.Profile(c.Response(), c.Request())
	case "trace":
		pprof.Trace(c.Response(), c.Request())
	case "", "cmdline", "symbol":
		pprof.Index(c.Response(), c.Request())
	default:
		pprof.Handler(name).ServeHTTP(c.Response(), c.Request())
	}
	return nil
}

// operatorProbe reports whether the request may read metrics and profiles:
// from loopback (not forwarded) or with the metrics token.
func (s *Server) operatorProbe(c echo.Context) bool {
	ok := false
	if tok := s.cfg.MetricsToken; tok != "" {
		ok = subtle.ConstantTimeCompare([]byte(c.Request().Header.Get("Authorization")), []byte("Bearer "+tok)) == 1
	}
	if host, _, err := net.SplitHostPort(c.Request().RemoteAddr); err == nil && !ok {
		ip := net.ParseIP(host)
		ok = ip != nil && ip.IsLoopback() && c.Request().Header.Get("X-Forwarded-For") == ""
	}
	return ok
}

// timedPass records how long each dispatch pass takes.
func (s *Server) timedPass(kind string, pass func(context.Context) error) func(context.Context) error {
	h := s.metrics.passes.WithLabelValues(kind)
	return func(ctx context.Context) error {
		start := time.Now()
		err := pass(ctx)
		h.Observe(time.Since(start).Seconds())
		return err
	}
}
