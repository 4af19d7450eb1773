package inproc_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/goroscope/goroscope/pkg/httpconf"
	"github.com/goroscope/goroscope/pkg/inproc"
	"github.com/goroscope/goroscope/push/endpoint"
)

// A program profiles itself: pyroscope-go's CPU, heap, mutex and block
// profiles and goroscope's goroutine profiles every 10s, to one Pyroscope
// with basic auth and a tenant, and the goroutine series to Prometheus.
// Stop delivers what is pending before the program exits.
func Example() {
	ctx := context.Background()
	p, err := inproc.Start(ctx, inproc.Config{
		ApplicationName: "checkout",
		Pyroscope: []inproc.Endpoint{{HTTP: endpoint.Config{
			URL:    "https://profiles.example.com",
			Tenant: "team-a",
			HTTPClientConfig: httpconf.HTTPClientConfig{
				BasicAuth: &httpconf.BasicAuth{Username: "123456", Password: os.Getenv("PYROSCOPE_PASSWORD")},
			},
		}}},
		RemoteWrite: []inproc.Endpoint{{HTTP: endpoint.Config{URL: "http://prometheus:9090/api/v1/write"}}},
		Tags:        map[string]string{"region": "eu-west-1"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Stop(ctx); err != nil {
			log.Print(err)
		}
	}()

	// ... the program's work ...
}
