// Package redact hides the password of a Redis URL in what the worker and
// the command line tools print.
package redact

import (
	"net/url"
	"strings"
)

// URL returns raw with any password replaced by "xxxxx", also when raw
// does not parse as a URL. A user name without a password is kept.
func URL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		if _, has := u.User.Password(); !has {
			return raw // nothing to hide: not re-encoded either
		}
		return u.Redacted()
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	auth := rest
	if i := strings.IndexAny(auth, "/?#"); i >= 0 {
		auth = auth[:i]
	}
	at := strings.LastIndex(auth, "@")
	if at < 0 {
		return raw
	}
	user, _, hasPass := strings.Cut(auth[:at], ":")
	if !hasPass {
		return raw
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}

// URLIn returns msg (an error's text, say) with the URL raw in it
// replaced by URL(raw).
func URLIn(msg, raw string) string {
	return strings.ReplaceAll(msg, raw, URL(raw))
}
