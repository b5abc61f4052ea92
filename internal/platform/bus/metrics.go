package bus

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the specification's event metrics, named exactly as it names
// them and labelled by subject and consumer.
type Metrics struct {
	Published *prometheus.CounterVec
	Consumed  *prometheus.CounterVec
	Acked     *prometheus.CounterVec
	Nacked    *prometheus.CounterVec
	DLQ       *prometheus.CounterVec
	Lag       *prometheus.GaugeVec
	Duration  *prometheus.HistogramVec
}

// NewMetrics creates the metrics and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	sc := []string{"subject", "consumer"}
	m := &Metrics{
		Published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "events_published_total", Help: "Events accepted by JetStream, by subject (re-publishes dropped as duplicates not counted).",
		}, []string{"subject"}),
		Consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "events_consumed_total", Help: "Event deliveries handed to a consumer's handler, redeliveries included.",
		}, sc),
		Acked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "events_acked_total", Help: "Events a consumer processed successfully.",
		}, sc),
		Nacked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "events_nacked_total", Help: "Failed deliveries that will be retried after a backoff.",
		}, sc),
		DLQ: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "events_dlq_total", Help: "Events moved to the dead-letter queue, by original subject and failing consumer.",
		}, sc),
		Lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "consumer_lag", Help: "Messages not yet processed by a durable consumer (NumPending + NumAckPending).",
		}, []string{"consumer"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "event_processing_duration",
			Help:    "Seconds a consumer's handler took per delivery.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, sc),
	}
	if reg != nil {
		reg.MustRegister(m.Published, m.Consumed, m.Acked, m.Nacked, m.DLQ, m.Lag, m.Duration)
	}
	return m
}
