package faults

import (
	"maps"
	"slices"
	"sync"
	"time"
)

// record is what the server received. Its methods take the server's mutex.
type record struct {
	answered    map[Mode]int
	answers     []Answer       // the first maxAnswers
	samples     map[string]int // identity -> times ingested
	profiles    map[string]int
	ids         map[string]int // profile ID -> times ingested
	rejSamples  map[string]int // identity -> times answered 400
	rejProfiles map[string]int
	requests    int   // requests ingested
	wireBytes   int64 // body bytes of the requests ingested
	errs        []string
}

func newRecord() record {
	return record{
		answered: map[Mode]int{}, samples: map[string]int{}, profiles: map[string]int{}, ids: map[string]int{},
		rejSamples: map[string]int{}, rejProfiles: map[string]int{},
	}
}

// maxErrors bounds the decoding errors kept; maxAnswers the answers.
const (
	maxErrors  = 100
	maxAnswers = 100000
)

// Answer is how one request was answered.
type Answer struct {
	At   time.Time // when its body had been read and its mode taken
	Mode Mode
	Push bool // a push API request (else remote-write)
}

func (r *record) answer(a Answer) {
	r.answered[a.Mode]++
	if len(r.answers) < maxAnswers {
		r.answers = append(r.answers, a)
	}
}

func (r *record) addError(mu *sync.Mutex, err error) {
	mu.Lock()
	defer mu.Unlock()
	if len(r.errs) < maxErrors {
		r.errs = append(r.errs, err.Error())
	}
}

// ingest records one accepted request: remote-write sample identities,
// profile identities and profile IDs.
func (r *record) ingest(mu *sync.Mutex, samples, profiles, ids []string, bytes int) {
	mu.Lock()
	defer mu.Unlock()
	count(r.samples, samples)
	count(r.profiles, profiles)
	for _, id := range ids {
		if id != "" {
			r.ids[id]++
		}
	}
	r.requests++
	r.wireBytes += int64(bytes)
}

// reject records the content of a request answered 400.
func (r *record) reject(mu *sync.Mutex, samples, profiles []string) {
	mu.Lock()
	defer mu.Unlock()
	count(r.rejSamples, samples)
	count(r.rejProfiles, profiles)
}

// count adds one to m[k] for each of keys.
func count(m map[string]int, keys []string) {
	for _, k := range keys {
		m[k]++
	}
}

// Counts is a summary of what the server received.
type Counts struct {
	// Answered counts requests by the mode that answered them.
	Answered map[Mode]int
	// Samples and Profiles are the distinct identities ingested;
	// SampleDups and ProfileDups the ingestions beyond each one's first.
	Samples, SampleDups   int
	Profiles, ProfileDups int
	// IDDups counts profile IDs ingested more than once (beyond the first).
	IDDups int
	// RejectedSamples and RejectedProfiles are the distinct identities in
	// requests answered 400; RejectedAgain counts identities rejected more
	// than once or rejected and also ingested (a client that retried a 400).
	RejectedSamples, RejectedProfiles, RejectedAgain int
	// Requests and WireBytes are the requests ingested and their body bytes
	// (compressed, as on the wire).
	Requests  int
	WireBytes int64
	// Errors are requests that did not decode or validate (answered 400).
	Errors []string
}

// Counts summarises what the server received so far.
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &s.rec
	c := Counts{
		Answered: maps.Clone(r.answered), Samples: len(r.samples), Profiles: len(r.profiles),
		RejectedSamples: len(r.rejSamples), RejectedProfiles: len(r.rejProfiles),
		Requests: r.requests, WireBytes: r.wireBytes, Errors: append([]string(nil), r.errs...),
	}
	for _, n := range r.samples {
		c.SampleDups += n - 1
	}
	for _, n := range r.profiles {
		c.ProfileDups += n - 1
	}
	for _, n := range r.ids {
		c.IDDups += n - 1
	}
	for k, n := range r.rejSamples {
		c.RejectedAgain += n - 1 + r.samples[k]
	}
	for k, n := range r.rejProfiles {
		c.RejectedAgain += n - 1 + r.profiles[k]
	}
	return c
}

// Answers returns how each request was answered, in order (the first
// 100,000).
func (s *Server) Answers() []Answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.rec.answers)
}

// Received returns copies of the ingested identities (samples, then
// profiles) with how many times each was ingested.
func (s *Server) Received() (samples, profiles map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.rec.samples), maps.Clone(s.rec.profiles)
}
