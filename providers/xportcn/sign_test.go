package xportcn

import (
	"crypto/md5"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

func TestSign(t *testing.T) {
	// Expected values were computed outside Go with openssl, by the command
	// beside each vector (printf '%s' a b c d prints the four concatenated),
	// then upper-cased.
	tests := []struct {
		name                   string
		key, ts, nonce, secret string
		want                   string
	}{
		{
			// printf '%s' 'ak_test_001' '1700000000' 'abcdefghijklmnopqrstuvwxyz012345' 'sk_secret_xyz' | openssl dgst -md5
			name: "seconds", key: "ak_test_001", ts: "1700000000", nonce: "abcdefghijklmnopqrstuvwxyz012345", secret: "sk_secret_xyz",
			want: "250D58C056942FA25F75F28BAE61094A",
		},
		{
			// printf '%s' 'AK' '1700000000123' '0123456789abcdef0123456789abcdef' 'SECRET' | openssl dgst -md5
			name: "milliseconds", key: "AK", ts: "1700000000123", nonce: "0123456789abcdef0123456789abcdef", secret: "SECRET",
			want: "C7A150F1FFC1C6F9ADC7C9D4AC67C55E",
		},
		{
			// printf '%s' 'k' '1' 'n' 's' | openssl dgst -md5
			name: "short", key: "k", ts: "1", nonce: "n", secret: "s",
			want: "0AA1BBBA5D95C0A97DF04176A1A20BFA",
		},
		{
			// printf '%s' '访问' '1700000000' 'ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ' '密钥' | openssl dgst -md5
			name: "utf-8", key: "访问", ts: "1700000000", nonce: "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ", secret: "密钥",
			want: "59B16AA221446DC8AC5F4C0B998B6673",
		},
		{
			// printf '%s' '' | openssl dgst -md5
			name: "empty", want: "D41D8CD98F00B204E9800998ECF8427E",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Sign(tt.key, tt.ts, tt.nonce, tt.secret); got != tt.want {
				t.Errorf("Sign(%q, %q, %q, secret) = %s, want %s", tt.key, tt.ts, tt.nonce, got, tt.want)
			}
		})
	}
}

func TestSignIsConcatenation(t *testing.T) {
	// The four parts are concatenated with nothing between them: moving a
	// character from one part to the next keeps the signature.
	a := Sign("ab", "12", "cd", "ef")
	b := Sign("a", "b12", "c", "def")
	if a != b {
		t.Errorf("Sign should depend only on the concatenation: %s != %s", a, b)
	}
	sum := md5.Sum([]byte("ab12cdef"))
	if want := strings.ToUpper(hex.EncodeToString(sum[:])); a != want {
		t.Errorf("Sign = %s, want %s", a, want)
	}
}

func TestNewNonce(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		n, err := newNonce()
		if err != nil {
			t.Fatal(err)
		}
		if len(n) != 32 {
			t.Fatalf("nonce %q has %d characters, want 32", n, len(n))
		}
		if strings.Trim(n, "0123456789abcdef") != "" {
			t.Fatalf("nonce %q is not lower-case hex", n)
		}
		if seen[n] {
			t.Fatalf("nonce %q repeated", n)
		}
		seen[n] = true
	}
}

func TestFormatTimestamp(t *testing.T) {
	at := time.Unix(1700000000, 123_456_789)
	tests := []struct{ unit, want string }{
		{UnitSeconds, "1700000000"},
		{UnitMillis, "1700000000123"},
	}
	for _, tt := range tests {
		t.Run(tt.unit, func(t *testing.T) {
			if got := formatTimestamp(at, tt.unit); got != tt.want {
				t.Errorf("formatTimestamp(%s) = %s, want %s", tt.unit, got, tt.want)
			}
		})
	}
}
