package depal

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"strings"
)

// Sign computes Depal's request signature:
//
//	UPPER(hex(HMAC-SHA1(key=appSecret, msg=urlPath + timestamp + accessToken + body)))
//
// urlPath is the path rooted at "/openapi/" (never the base URL's own path
// prefix), timestamp is in milliseconds as sent in x-depal-timestamp, and
// body is the exact bytes sent.
func Sign(appSecret, urlPath, timestamp, accessToken string, body []byte) string {
	m := hmac.New(sha1.New, []byte(appSecret))
	m.Write([]byte(urlPath))
	m.Write([]byte(timestamp))
	m.Write([]byte(accessToken))
	m.Write(body)
	return strings.ToUpper(hex.EncodeToString(m.Sum(nil)))
}
