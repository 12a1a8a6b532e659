package depal_test

import (
	"fmt"

	"orderflow/providers/depal"
)

// The signature of a preview call. Checked independently with:
// printf '%s' '/openapi/1/app123/1688.order.create.preview1718000000000tok-abc{"outOrderId":"O-1"}' | openssl dgst -sha1 -hmac 'secret'
func ExampleSign() {
	body := []byte(`{"outOrderId":"O-1"}`)
	fmt.Println(depal.Sign("secret", "/openapi/1/app123/1688.order.create.preview", "1718000000000", "tok-abc", body))
	// Output: 4C9A73DD57D43364B5A10EC686EDA2ED0A3B2DD2
}
