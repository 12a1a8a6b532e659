package depal

import "testing"

// The vectors were computed with openssl, independently of Sign; the
// command is beside each one (openssl prints lower-case hex, Sign upper).
func TestSign(t *testing.T) {
	tests := []struct {
		name                        string
		secret, path, ts, tok, body string
		want                        string
	}{
		{
			// printf '%s' '/openapi/1/app123/1688.order.create.preview1718000000000tok-abc{"outOrderId":"O-1"}' | openssl dgst -sha1 -hmac 'secret'
			name: "preview", secret: "secret", path: "/openapi/1/app123/1688.order.create.preview",
			ts: "1718000000000", tok: "tok-abc", body: `{"outOrderId":"O-1"}`,
			want: "4C9A73DD57D43364B5A10EC686EDA2ED0A3B2DD2",
		},
		{
			// printf '%s' '/openapi/1/simapp/1688.order.detail1700000000123T0K3N{}' | openssl dgst -sha1 -hmac 'sim-secret-d'
			name: "detail with the simulator's credentials", secret: "sim-secret-d", path: "/openapi/1/simapp/1688.order.detail",
			ts: "1700000000123", tok: "T0K3N", body: `{}`,
			want: "70290FAE55B5A4BDA0502357E6B25D97E98A59C2",
		},
		{
			// printf '%s' '/openapi/1/k/logistics.tracking0tok' | openssl dgst -sha1 -hmac 'secret'
			name: "empty body", secret: "secret", path: "/openapi/1/k/logistics.tracking",
			ts: "0", tok: "tok", body: "",
			want: "C3684761AA736F7A30AA8BF299E9D5DA7562B850",
		},
		{
			// printf '%s' '/openapi/1/app123/1688.order.create.order1718000000001tok-abc{"outOrderId":"O-1","address":{"userName":"李雷"},"previewId":"pv-9"}' | openssl dgst -sha1 -hmac 'secret'
			name: "utf-8 body bytes", secret: "secret", path: "/openapi/1/app123/1688.order.create.order",
			ts: "1718000000001", tok: "tok-abc", body: `{"outOrderId":"O-1","address":{"userName":"李雷"},"previewId":"pv-9"}`,
			want: "8BE6A26DEC95363C8B8A83B37DAB64DDEC5212FB",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Sign(tt.secret, tt.path, tt.ts, tt.tok, []byte(tt.body))
			if got != tt.want {
				t.Errorf("Sign = %s, want %s", got, tt.want)
			}
		})
	}
}
