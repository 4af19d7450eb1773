// Package pyroscope sends pprof profiles to Grafana Pyroscope through its
// push API, push.v1.PusherService/Push over connect (the official generated
// types: pushv1, pushv1connect, typesv1), or through the legacy /ingest
// endpoint for older servers: a multipart form with the profile as file
// "profile" and no format parameter (with format=pprof the server reads the
// whole body as one raw pprof message and refuses the form).
//
// The queue's items are marshalled pushv1.RawProfileSeries made by
// EncodeSeries: one label set and one or more gzip-compressed pprof
// profiles (EncodeProfile). Client.Send packs one batch into as few
// PushRequests as fit under Options.MaxRequestBytes.
//
// Labels. Every series carries service_name (the application) and __name__
// (the profile type name, e.g. "goroutine"); goroscope adds state and
// wait_reason where a profile is split by them, and target labels (pid,
// host, ...). Label names follow [a-zA-Z_][a-zA-Z0-9_]*; "__" names other
// than __name__ and __delta__ are reserved by the server.
//
// What the server does with a profile (facts to design labels around; see
// test/receivers/pyroscoperules.go, which mirrors the server's source):
//   - Grafana lists a series under the ID
//     <__name__>:<sample type>:<unit>:<period type>:<period unit>, one per
//     sample type of the profile.
//   - Through the push API, __name__ is kept. Through /ingest the server
//     derives the name from the sample types instead: a "wall" sample type
//     gives "wall"; otherwise the sample types' display names (the form's
//     sample_type_config, else the server's defaults) decide: "cpu" in it
//     gives "process_cpu", "alloc_"/"inuse_" "memory", "mutex_" "mutex",
//     "block_" "block", "goroutines" "goroutines", anything else is kept.
//     The legacy client sends a sample_type_config for the goroutine and
//     block profiles so that they keep their names; goroutine_wall arrives
//     as "wall".
//   - It splits each profile into one series per distinct set of string
//     sample labels (pprof Sample.Label, not NumLabel), added to the series'
//     labels. So string sample labels must stay low-cardinality (a state, a
//     wait reason): never put goroutine ids, addresses or timestamps there;
//     use numeric labels (NumLabel) or leave them out.
//   - A profile with more than 16000 samples, 100 labels on one sample or
//     4 MiB uncompressed is refused (the server's default limits).
package pyroscope
