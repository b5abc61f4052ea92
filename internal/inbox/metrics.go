package inbox

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the inbox's Prometheus series.
type Metrics struct {
	received *prometheus.CounterVec
	reached  *prometheus.CounterVec
}

// NewMetrics registers the inbox's series on reg (none when reg is nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "inbox_messages_received_total",
			Help: "Inbound messages recorded in inbox threads, by channel (provider retries and redeliveries not counted)."}, []string{"channel"}),
		reached: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "inbox_sla_reached_total",
			Help: "Response deadlines that reached their warning or were breached, by stage (warning, breach) and kind."}, []string{"stage", "kind"}),
	}
	if reg != nil {
		reg.MustRegister(m.received, m.reached)
	}
	return m
}
