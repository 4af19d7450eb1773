// Package httpconf is the one HTTP client configuration of goroscope, as
// Prometheus's common/config HTTPClientConfig is Prometheus's: basic or
// bearer auth (secrets inline or from files re-read when they change), extra
// headers, TLS, a proxy and the request timeout, with YAML keys. The pprof
// scrape targets and every push endpoint inline it next to their url, so the
// same keys mean the same thing everywhere; NewClient builds the
// *http.Client.
//
// Its types are part of pkg/inproc's API (Endpoint.HTTP, through
// push/endpoint.Config), so they change only as that API does.
package httpconf
