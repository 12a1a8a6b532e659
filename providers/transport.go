package providers

import "net/http"

// MaxIdleConnsPerHost is how many idle connections to a provider a client
// keeps for the next calls (NewTransport).
const MaxIdleConnsPerHost = 256

// NewTransport returns the HTTP transport of a provider client given no
// http.Client: http.DefaultTransport's settings, but keeping up to
// MaxIdleConnsPerHost idle connections to the provider. The default keeps
// two per host, so a worker with twenty calls in flight closed most
// connections after one call and dialled anew for the next: against a
// real provider, a TLS handshake across the border per call.
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 0 // no limit across hosts: a client talks to one
	t.MaxIdleConnsPerHost = MaxIdleConnsPerHost
	return t
}
