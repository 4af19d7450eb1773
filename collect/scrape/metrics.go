package scrape

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the scraper's own metrics; the Scraper is their
// prometheus.Collector.
type metrics struct {
	requests    *prometheus.CounterVec
	errors      *prometheus.CounterVec
	restarts    *prometheus.CounterVec
	unsupported *prometheus.GaugeVec
	duration    *prometheus.GaugeVec
	lastSuccess *prometheus.GaugeVec
}

func newMetrics() *metrics {
	return &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "goroscope_scrape_requests_total",
			Help: "Profiles requested from pprof targets.",
		}, []string{"target", "profile"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "goroscope_scrape_errors_total",
			Help: "Failed profile collections by reason: timeout, connect, status, redirect, not_found, not_pprof, corrupt, too_large, parse, unexpected, partial_dump.",
		}, []string{"target", "profile", "reason"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "goroscope_scrape_target_restarts_total",
			Help: "Restarts of pprof targets detected from their cumulative profiles; delta profiles start again from the next collection.",
		}, []string{"target"}),
		unsupported: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "goroscope_scrape_unsupported",
			Help: "1 while a target is known not to offer a profile (goroutineleak needs Go 1.26 built with GOEXPERIMENT=goroutineleakprofile); asked again hourly.",
		}, []string{"target", "profile"}),
		duration: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "goroscope_scrape_duration_seconds",
			Help: "Duration of the latest collection of each profile of each target, request to decoded profile.",
		}, []string{"target", "profile"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "goroscope_scrape_last_success_timestamp_seconds",
			Help: "Unix time of the latest successful collection of each profile of each target.",
		}, []string{"target", "profile"}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.errors, m.restarts, m.unsupported, m.duration, m.lastSuccess}
}

// Describe implements prometheus.Collector.
func (s *Scraper) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range s.m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (s *Scraper) Collect(ch chan<- prometheus.Metric) {
	for _, c := range s.m.collectors() {
		c.Collect(ch)
	}
}
