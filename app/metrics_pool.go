package app

import (
	"github.com/handoffhq/handoff/models"
	"github.com/prometheus/client_golang/prometheus"
)

// poolCollector exports a store's connection pool (models.Store.PoolStats:
// pgxpool's on PostgreSQL, database/sql's on SQLite) under the names and
// label Prometheus' database/sql collector uses, so dashboards built for
// it read it. That collector reads database/sql's pool, which on
// PostgreSQL keeps no connections of its own (models/pgpool.go).
type poolCollector struct {
	st    *models.Store
	descs [8]*prometheus.Desc
}

func newPoolCollector(st *models.Store, name string) *poolCollector {
	desc := func(metric, help string) *prometheus.Desc {
		return prometheus.NewDesc("go_sql_"+metric, help, nil, prometheus.Labels{"db_name": name})
	}
	return &poolCollector{st: st, descs: [8]*prometheus.Desc{
		desc("max_open_connections", "Maximum number of open connections to the database."),
		desc("open_connections", "The number of established connections both in use and idle."),
		desc("in_use_connections", "The number of connections currently in use."),
		desc("idle_connections", "The number of idle connections."),
		desc("wait_count_total", "The total number of connections waited for."),
		desc("wait_duration_seconds_total", "The total time blocked waiting for a new connection."),
		desc("max_idle_time_closed_total", "The total number of connections closed because they were idle too long."),
		desc("max_lifetime_closed_total", "The total number of connections closed because they were too old."),
	}}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.st.PoolStats()
	values := [8]struct {
		kind prometheus.ValueType
		v    float64
	}{
		{prometheus.GaugeValue, float64(st.MaxOpenConnections)},
		{prometheus.GaugeValue, float64(st.OpenConnections)},
		{prometheus.GaugeValue, float64(st.InUse)},
		{prometheus.GaugeValue, float64(st.Idle)},
		{prometheus.CounterValue, float64(st.WaitCount)},
		{prometheus.CounterValue, st.WaitDuration.Seconds()},
		{prometheus.CounterValue, float64(st.MaxIdleTimeClosed)},
		{prometheus.CounterValue, float64(st.MaxLifetimeClosed)},
	}
	for i, d := range c.descs {
		ch <- prometheus.MustNewConstMetric(d, values[i].kind, values[i].v)
	}
}
