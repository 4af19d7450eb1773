package httpconf

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// MaxRedirects bounds the same-origin redirects a GET or HEAD follows.
const MaxRedirects = 3

// RedirectError is a redirect the client refused to follow: to another
// origin (scheme, host and port; https to http is one), of a request that
// is not a GET or HEAD, or beyond MaxRedirects. The fix is to configure the
// URL the server redirects to. http.Client.Do returns it wrapped in a
// *url.Error.
type RedirectError struct {
	// Status is the redirect's HTTP status; From the URL that answered it;
	// Location the URL it pointed to.
	Status   int
	From     string
	Location string
	// Reason says why the redirect was not followed.
	Reason string
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("%s answered %d %s redirecting to %s; not followed: %s; configure the final URL instead",
		e.From, e.Status, http.StatusText(e.Status), e.Location, e.Reason)
}

// origin is the scheme, host and port of u, lowercased, the port made
// explicit, as in "https://host:443".
func origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		switch scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// sameOrigin reports whether a and b have the same scheme, host and port.
func sameOrigin(a, b *url.URL) bool { return origin(a) == origin(b) }

// firstRequest is the request that started req's chain of redirects.
func firstRequest(req *http.Request) *http.Request {
	for req.Response != nil && req.Response.Request != nil {
		req = req.Response.Request
	}
	return req
}

// checkRedirect is the http.Client's CheckRedirect: it follows a redirect
// of a GET or HEAD to the same origin as home (nil: the first request's),
// at most MaxRedirects times, and refuses every other one, so neither the
// credentials nor the request itself go where the configuration did not
// say.
func checkRedirect(home *url.URL) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		first, prev := via[0], via[len(via)-1]
		want := home
		if want == nil {
			want = first.URL
		}
		e := &RedirectError{From: prev.URL.Redacted(), Location: req.URL.Redacted()}
		if req.Response != nil {
			e.Status = req.Response.StatusCode
		}
		switch {
		case first.Method != http.MethodGet && first.Method != http.MethodHead:
			e.Reason = fmt.Sprintf("a %s is never redirected (its body and credentials would go along)", first.Method)
		case !sameOrigin(want, req.URL):
			e.Reason = fmt.Sprintf("%s is not the configured origin %s, and credentials never leave it", origin(req.URL), origin(want))
		case len(via) > MaxRedirects:
			e.Reason = fmt.Sprintf("more than %d redirects", MaxRedirects)
		default:
			return nil
		}
		return e
	}
}
