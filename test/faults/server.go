package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
)

// Mode is how the server answers requests; see the package documentation.
type Mode string

// The modes.
const (
	OK         Mode = "ok"
	Status500  Mode = "500"
	Status503  Mode = "503"
	TooMany    Mode = "429"
	BadRequest Mode = "400"
	Hang       Mode = "hang"
	Reset      Mode = "reset"
	Down       Mode = "down"
)

// WritePath is the remote-write path; the push API lives under
// pushv1connect.PusherServiceName.
const WritePath = "/api/v1/write"

// maxBody bounds one request body.
const maxBody = 64 << 20

// relistenFor bounds how long coming back up may wait for the port, and
// drainFor how long going down waits for requests being answered.
const (
	relistenFor = 5 * time.Second
	drainFor    = 5 * time.Second
)

// Server is the fault-injecting receiver. Its methods are safe for
// concurrent use.
type Server struct {
	// URL is the base URL (a Pyroscope client's URL); it stays the same
	// across Down and back up.
	URL string
	// WriteURL is the remote-write endpoint, URL + WritePath.
	WriteURL string

	addr    string
	connect http.Handler

	switchMu sync.Mutex // serialises SetMode and Close

	mu         sync.Mutex
	mode       Mode
	script     []Mode
	retryAfter string
	up         *listening // nil while down
	closed     bool
	rec        record
}

// listening is the server while it is up.
type listening struct {
	srv    *http.Server
	done   chan struct{} // closed when going down: releases hung requests
	served chan struct{} // closed when Serve returned
}

// Start starts a server on a free 127.0.0.1 port in mode OK and closes it
// when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := New("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// New starts a server listening on addr (a 127.0.0.1 address; port 0
// picks a free one) in mode OK.
func New(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("faults: listen on %s: %w", addr, err)
	}
	s := &Server{addr: ln.Addr().String(), mode: OK, retryAfter: "1", rec: newRecord()}
	s.URL = "http://" + s.addr
	s.WriteURL = s.URL + WritePath
	path, h := pushv1connect.NewPusherServiceHandler(&pusher{s: s}, connect.WithReadMaxBytes(maxBody))
	mux := http.NewServeMux()
	mux.Handle(path, h)
	s.connect = mux
	s.serve(ln)
	return s, nil
}

// serve starts serving ln; s.up must be nil.
func (s *Server) serve(ln net.Listener) {
	l := &listening{
		srv:    &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second},
		done:   make(chan struct{}),
		served: make(chan struct{}),
	}
	go func() {
		defer close(l.served)
		_ = l.srv.Serve(ln)
	}()
	s.mu.Lock()
	s.up = l
	s.mu.Unlock()
}

// SetMode switches how the following requests are answered. Switching to
// Down closes the listener and every open connection (hung requests end
// unanswered); switching from Down to another mode listens again on the
// same port.
func (s *Server) SetMode(m Mode) error {
	s.switchMu.Lock()
	defer s.switchMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("faults: server closed")
	}
	s.mode = m
	l := s.up
	s.mu.Unlock()
	switch {
	case m == Down && l != nil:
		s.goDown(l)
	case m != Down && l == nil:
		ln, err := listenAgain(s.addr)
		if err != nil {
			return err
		}
		s.serve(ln)
	}
	return nil
}

// Mode returns the current mode.
func (s *Server) Mode() Mode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mode
}

// Script makes the next len(modes) requests take these modes, in order,
// before the current mode applies again. Down in a script resets the
// connection of that request.
func (s *Server) Script(modes ...Mode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, modes...)
}

// SetRetryAfter sets the Retry-After header of TooMany answers ("" for none).
func (s *Server) SetRetryAfter(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retryAfter = v
}

// Close stops the server for good.
func (s *Server) Close() error {
	s.switchMu.Lock()
	defer s.switchMu.Unlock()
	s.mu.Lock()
	s.closed = true
	l := s.up
	s.mu.Unlock()
	if l != nil {
		s.goDown(l)
	}
	return nil
}

// goDown closes l's listener and connections and waits for Serve to return.
// Requests being answered OK or with a status finish first, so that no
// request is ingested whose answer is then cut off (which would look like
// a lost answer to the client, and make its retry a duplicate); hung
// requests are released unanswered, and requests read from now on are
// reset.
func (s *Server) goDown(l *listening) {
	s.mu.Lock()
	s.up = nil
	s.mu.Unlock()
	close(l.done)
	ctx, cancel := context.WithTimeout(context.Background(), drainFor)
	_ = l.srv.Shutdown(ctx)
	cancel()
	_ = l.srv.Close()
	<-l.served
}

// listenAgain listens on addr, waiting (bounded) while the port is still
// held by the previous listener's sockets.
func listenAgain(addr string) (net.Listener, error) {
	deadline := time.Now().Add(relistenFor)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			return ln, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return nil, fmt.Errorf("faults: listen again on %s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// take returns the mode for a request that has just been read and records
// it, and the channel that closes when the server goes down.
func (s *Server) take(push bool) (Mode, string, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.mode
	if len(s.script) > 0 {
		m, s.script = s.script[0], s.script[1:]
	}
	s.rec.answer(Answer{At: time.Now(), Mode: m, Push: push})
	var done <-chan struct{}
	if s.up != nil {
		done = s.up.done
	} else {
		done = closedChan()
	}
	return m, s.retryAfter, done
}

func closedChan() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// ServeHTTP answers one request per the mode.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return // the client went away while sending: nothing to answer
	}
	if len(body) > maxBody {
		http.Error(w, fmt.Sprintf("body larger than %d bytes", maxBody), http.StatusRequestEntityTooLarge)
		return
	}
	isPush := strings.HasPrefix(r.URL.Path, "/"+pushv1connect.PusherServiceName+"/")
	if !isPush && r.URL.Path != WritePath {
		http.NotFound(w, r)
		return
	}
	mode, retryAfter, done := s.take(isPush)
	switch mode {
	case OK, BadRequest:
		reject := mode == BadRequest
		if isPush {
			r = r.WithContext(context.WithValue(r.Context(), requestKey{}, requestInfo{reject: reject, bytes: len(body)}))
			r.Body = io.NopCloser(bytes.NewReader(body))
			s.connect.ServeHTTP(w, r)
			return
		}
		s.write(w, r, body, reject)
	case Status500:
		fail(w, isPush, http.StatusInternalServerError, "", "injected internal error")
	case Status503:
		fail(w, isPush, http.StatusServiceUnavailable, "", "injected unavailability")
	case TooMany:
		fail(w, isPush, http.StatusTooManyRequests, retryAfter, "injected rate limit")
	case Hang:
		select {
		case <-r.Context().Done(): // the client gave up
		case <-done: // the server went down
		}
	default: // Reset, or Down for a request that raced the switch
		reset(w)
	}
}

// write handles a remote-write request: decode it whole, then record it as
// ingested or rejected.
func (s *Server) write(w http.ResponseWriter, r *http.Request, body []byte, reject bool) {
	keys, err := decodeWrite(r.Header, body)
	if err != nil {
		s.rec.addError(&s.mu, err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if reject {
		s.rec.reject(&s.mu, keys, nil)
		http.Error(w, "injected rejection: bad request", http.StatusBadRequest)
		return
	}
	s.rec.ingest(&s.mu, keys, nil, nil, len(body))
	w.WriteHeader(http.StatusNoContent)
}

// fail answers status; push requests get a connect error body as the real
// server sends.
func fail(w http.ResponseWriter, isPush bool, status int, retryAfter, msg string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	if !isPush {
		http.Error(w, msg, status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"code": connectCode(status), "message": msg})
}

// connectCode is the connect error code a server answers with for status.
func connectCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_argument"
	case http.StatusTooManyRequests:
		return "resource_exhausted"
	case http.StatusServiceUnavailable:
		return "unavailable"
	}
	return "internal"
}

// reset closes the request's connection with a TCP RST, answering nothing.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler) // HTTP/2: abort the stream
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}
