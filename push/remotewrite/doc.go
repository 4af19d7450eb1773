// Package remotewrite sends series to a Prometheus remote-write 1.0 receiver
// (Prometheus with --web.enable-remote-write-receiver, VictoriaMetrics,
// Mimir, Thanos receive, ...).
//
// Wire format, as the 1.0 specification asks: one prompb.WriteRequest per
// HTTP POST, protobuf-encoded, compressed with snappy's block format (not the
// framed one), with the headers Content-Encoding: snappy, Content-Type:
// application/x-protobuf, X-Prometheus-Remote-Write-Version: 0.1.0 and a
// User-Agent. Every series carries a __name__ label; label names match
// [a-zA-Z_][a-zA-Z0-9_]* (metric names [a-zA-Z_:][a-zA-Z0-9_:]*), are unique
// and sorted by name; label values are UTF-8 and never empty (an empty value
// means the label is absent, so such labels are dropped); samples of a series
// are in timestamp order (milliseconds since the epoch). Metadata, exemplars
// and native histograms are not part of 1.0 and are never sent.
//
// The queue's items are marshalled prompb.TimeSeries made by EncodeSeries;
// Client.Send merges one batch into one WriteRequest, joining the items of
// one series into one series with its samples in time order, and adds the
// external labels that a series does not already have (Prometheus semantics:
// a series' own label wins).
package remotewrite
