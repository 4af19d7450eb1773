// Package pyroscope sends pprof profiles to Grafana Pyroscope through its
// push API, push.v1.PusherService/Push over connect (the official generated
// types: pushv1, pushv1connect, typesv1), or through the legacy /ingest
// endpoint (format=pprof, multipart field "profile") for older servers.
//
// The queue's items are marshalled pushv1.RawProfileSeries made by
// EncodeSeries: one label set and one or more gzip-compressed pprof
// profiles (EncodeProfile). Client.Send packs one batch into as few
// PushRequests as fit under Options.MaxRequestBytes.
//
// Labels. Every series carries service_name (the application) and __name__
// (the profile type name, e.g. "goroutines"); goroscope adds state and
// wait_reason where a profile is split by them, and target labels (pid,
// host, ...). Label names follow [a-zA-Z_][a-zA-Z0-9_]*; "__" names other
// than __name__ are reserved by the server.
//
// What the server does with a profile (facts to design labels around):
//   - It derives the profile's name from its sample types, whatever
//     __name__ says for the series: a "wall" sample type gives "wall"; a
//     type containing "cpu" gives "process_cpu"; "alloc_*"/"inuse_*" types
//     give "memory"; a display name containing "goroutines" (the goroutine
//     profile's "goroutines"/"count" type) gives "goroutines"; anything else
//     is kept as is ("raw" naming).
//   - It splits each profile into one series per distinct set of string
//     sample labels (pprof Sample.Label, not NumLabel), added to the series'
//     labels. So string sample labels must stay low-cardinality (a state, a
//     wait reason): never put goroutine ids, addresses or timestamps there;
//     use numeric labels (NumLabel) or leave them out.
package pyroscope
