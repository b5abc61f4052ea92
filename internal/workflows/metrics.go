package workflows

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the workflows' Prometheus series.
type Metrics struct {
	started  prometheus.Counter
	ended    *prometheus.CounterVec
	nodes    *prometheus.CounterVec
	lateness prometheus.Histogram
}

// NewMetrics registers the workflows' series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		started: prometheus.NewCounter(prometheus.CounterOpts{Name: "workflow_runs_started_total",
			Help: "Workflow runs started."}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "workflow_runs_ended_total",
			Help: "Workflow runs ended, by final status."}, []string{"status"}),
		nodes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "workflow_nodes_executed_total",
			Help: "Workflow nodes executed, by node type."}, []string{"type"}),
		// How late delays and timeouts fire: the timers' health.
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "workflow_wake_lateness_seconds",
			Help:    "How long after its time a waiting workflow run was woken.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 20, 30, 45, 60, 120, 300}}),
	}
	if reg != nil {
		reg.MustRegister(m.started, m.ended, m.nodes, m.lateness)
	}
	return m
}

func (m *Metrics) moved(mv *move) {
	if mv.newRun {
		m.started.Inc()
	}
	if mv.late >= 0 {
		m.lateness.Observe(mv.late.Seconds())
	}
	if mv.leave != nil && mv.leave.Branch != "" {
		m.nodes.WithLabelValues(mv.leave.NodeType).Inc()
	}
	for _, st := range mv.steps {
		if st.Branch != "" {
			m.nodes.WithLabelValues(st.NodeType).Inc()
		}
	}
	if mv.run.ended() {
		m.ended.WithLabelValues(mv.run.Status).Inc()
	}
}
