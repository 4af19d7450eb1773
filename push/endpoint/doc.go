// Package endpoint is what every push endpoint is configured with: the URL,
// the tenant (sent as X-Scope-OrgID) and the HTTP client configuration
// shared with the pprof scraper (pkg/httpconf, inlined). The wire clients
// (push/remotewrite, push/pyroscope, pkg/inproc's ingest client) build
// their *http.Client from a Config; the agent's endpoint configuration
// inlines it, so the YAML keys are these.
package endpoint
