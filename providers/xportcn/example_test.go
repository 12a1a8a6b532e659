package xportcn_test

import (
	"fmt"

	"orderflow/providers/xportcn"
)

func ExampleSign() {
	// printf '%s' 'ak_test_001' '1700000000' 'abcdefghijklmnopqrstuvwxyz012345' 'sk_secret_xyz' | openssl dgst -md5
	fmt.Println(xportcn.Sign("ak_test_001", "1700000000", "abcdefghijklmnopqrstuvwxyz012345", "sk_secret_xyz"))
	// Output: 250D58C056942FA25F75F28BAE61094A
}

func ExampleParsePush() {
	p, err := xportcn.ParsePush([]byte(`{"messageType":"ORDER_PAY_SUCCESS",
		"messageBody":"{\"orderId\":\"3391234567890123456\",\"orderStatus\":\"WAITING_FOR_SENT\",\"totalAmount\":2496}",
		"messagePlatform":1,"timestamp":"1767319872000"}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	state, _ := p.State()
	fmt.Println(p.MessageType, p.Body.OrderID, p.Body.TotalAmount, state, p.Timestamp.Format("2006-01-02T15:04:05Z07:00"))
	// Output: ORDER_PAY_SUCCESS 3391234567890123456 2496 paid 2026-01-02T02:11:12Z
}
