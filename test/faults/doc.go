// Package faults is a fault-injecting push receiver for tests and
// benchmarks: one HTTP server on 127.0.0.1 that accepts Prometheus
// remote-write 1.0 (POST /api/v1/write, snappy-compressed protobuf) and the
// Pyroscope push API (the official pushv1connect handler), decodes every
// request fully and records every sample by identity, so a test can count
// exactly what arrived once, what arrived more than once and what never
// arrived.
//
// Identity: a remote-write sample is its series (every label) and its
// timestamp; a profile is its series (every label) and the pprof profile's
// TimeNanos.
//
// The server's Mode can be switched at any time (SetMode), and a script of
// modes can be queued for the next requests (Script):
//
//	OK          ingest and answer 200 (remote-write: 204)
//	Status500   answer 500
//	Status503   answer 503
//	TooMany     answer 429 with Retry-After (SetRetryAfter; default "1")
//	BadRequest  decode, record the samples as rejected, answer 400
//	Hang        read the request, then answer nothing until the client
//	            gives up (or the server goes down)
//	Reset       read the request, then close the connection with a TCP RST
//	Down        close the listener and every connection (answers being
//	            written finish first, hung requests end unanswered); the
//	            next other mode listens again on the same port
//
// As a real server, it ingests a request only when it answers 2xx: a
// request answered with an error status, hung or reset leaves no sample
// behind, so every retry of it by a correct client must arrive exactly once.
// A request's mode is taken when its body has been read. (A client whose
// own timeout is shorter than an OK answer takes would see a lost answer
// and retry a request that was ingested: give clients a timeout well above
// the milliseconds an answer takes.)
package faults
