package xportcn

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The request headers of Xportcn's OpenAPI (docs/providers.md, "Xportcn:
// signing", confirmed).
const (
	headerAccessKey = "access-key"
	headerTimestamp = "timestamp"
	headerNonce     = "nonce-str"
	headerUserID    = "user-id"
	headerSignature = "signature"
)

// Sign computes Xportcn's request signature:
//
//	UPPER(hex(MD5(accessKey + timestamp + nonce + accessSecret)))
//
// timestamp is the exact text sent in the timestamp header (seconds or
// milliseconds, see Config.TimestampUnit). Neither the body, the path nor the
// user-id header is signed.
func Sign(accessKey, timestamp, nonce, accessSecret string) string {
	h := md5.New()
	h.Write([]byte(accessKey))
	h.Write([]byte(timestamp))
	h.Write([]byte(nonce))
	h.Write([]byte(accessSecret))
	return strings.ToUpper(hex.EncodeToString(h.Sum(nil)))
}

// nonceLen is the length of nonce-str the provider expects.
const nonceLen = 32

// newNonce returns 32 random lower-case hex characters from crypto/rand.
func newNonce() (string, error) {
	var b [nonceLen / 2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// formatTimestamp renders t in the configured unit: "ms" for milliseconds,
// anything else (validated to be "" or "s") for seconds.
func formatTimestamp(t time.Time, unit string) string {
	if unit == UnitMillis {
		return strconv.FormatInt(t.UnixMilli(), 10)
	}
	return strconv.FormatInt(t.Unix(), 10)
}

// sign sets the auth headers of one request.
func (c *Client) sign(h http.Header) error {
	nonce, err := newNonce()
	if err != nil {
		return err
	}
	ts := formatTimestamp(c.now(), c.cfg.TimestampUnit)
	h.Set(headerAccessKey, c.cfg.AccessKey)
	h.Set(headerTimestamp, ts)
	h.Set(headerNonce, nonce)
	h.Set(headerUserID, c.cfg.UserID)
	h.Set(headerSignature, Sign(c.cfg.AccessKey, ts, nonce, c.cfg.AccessSecret))
	return nil
}
