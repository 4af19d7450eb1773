// Package senderr is the contract between the push queue and the wire
// clients about a failed send: a *SendError says whether the same request
// may succeed later, how long the server asked to wait and which part of the
// batch is done despite the failure. Classify and StatusError turn an HTTP
// outcome into one, so every wire client (push/remotewrite, push/pyroscope,
// pkg/inproc's ingest client) classifies alike and push/queue retries by
// one policy.
//
// It is a package of its own, rather than part of push/queue or of the HTTP
// client configuration (pkg/httpconf), because the wire clients produce
// these errors and the queue consumes them: neither side imports the other,
// and the pprof scraper, which shares the client configuration, does not
// retry by them.
package senderr
