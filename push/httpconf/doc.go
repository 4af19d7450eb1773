// Package httpconf holds what every push endpoint shares: the endpoint's HTTP
// options (URL, tenant, basic or bearer auth read from files, extra headers,
// TLS, timeout), the *http.Client built from them, and the classification of
// a send's outcome into a *SendError that tells the queue whether to retry.
package httpconf
