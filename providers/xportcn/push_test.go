package xportcn

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"orderflow/providers"
)

// A push as the provider documents it: messageBody is a JSON string.
const samplePush = `{"messageType":"ORDER_PAY_SUCCESS","messageBody":"{\"orderId\":\"3391234567890123456\",\"orderNo\":\"XP-1\",\"orderStatus\":\"WAITING_FOR_SENT\",\"payStatus\":\"PAID\",\"totalAmount\":2496,\"shippingFee\":600,\"productAmount\":1896,\"refundAmount\":0,\"refundStatus\":\"\",\"closeReason\":\"\",\"payTime\":\"2026-01-02 10:11:12\"}","messagePlatform":1,"timestamp":"1767319872000"}`

func TestParsePush(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    *Push
		wantErr bool
	}{
		{
			name: "documented shape",
			in:   samplePush,
			want: &Push{
				MessageType: PushOrderPaySuccess, MessagePlatform: PushPlatform1688,
				Timestamp: time.UnixMilli(1767319872000).UTC(),
				Body: PushBody{
					OrderID: "3391234567890123456", OrderNo: "XP-1", OrderStatus: "WAITING_FOR_SENT", PayStatus: "PAID",
					TotalAmount: 2496, ShippingFee: 600, ProductAmount: 1896, PayTime: "2026-01-02 10:11:12",
				},
			},
		},
		{
			name: "numeric order id keeps all its digits, numbers as strings",
			in:   `{"messageType":"ORDER_CREATE","messageBody":"{\"orderId\":3391234567890123456,\"totalAmount\":\"100\",\"orderStatus\":\"WAITING_FOR_PAYMENT\"}","messagePlatform":"0","timestamp":1767319872001}`,
			want: &Push{
				MessageType: PushOrderCreate, MessagePlatform: PushPlatformTaobao,
				Timestamp: time.UnixMilli(1767319872001).UTC(),
				Body:      PushBody{OrderID: "3391234567890123456", OrderStatus: "WAITING_FOR_PAYMENT", TotalAmount: 100},
			},
		},
		{
			name: "body as an object, no timestamp",
			in:   `{"messageType":"ORDER_CANCEL","messageBody":{"orderId":"42","orderStatus":"CANCEL","closeReason":"buyerCancel"}}`,
			want: &Push{MessageType: PushOrderCancel, Body: PushBody{OrderID: "42", OrderStatus: "CANCEL", CloseReason: "buyerCancel"}},
		},
		{
			name: "unknown fields ignored",
			in:   `{"messageType":"SOMETHING_NEW","extra":[1,2],"messageBody":"{\"orderId\":\"7\",\"new\":{}}"}`,
			want: &Push{MessageType: "SOMETHING_NEW", Body: PushBody{OrderID: "7"}},
		},
		{name: "empty", in: ``, wantErr: true},
		{name: "not json", in: `orderId=1`, wantErr: true},
		{name: "json null", in: `null`, wantErr: true},
		{name: "array", in: `[{"messageType":"ORDER_CREATE"}]`, wantErr: true},
		{name: "truncated", in: samplePush[:len(samplePush)-10], wantErr: true},
		{name: "no messageType", in: `{"messageBody":"{\"orderId\":\"1\"}"}`, wantErr: true},
		{name: "no messageBody", in: `{"messageType":"ORDER_CREATE"}`, wantErr: true},
		{name: "messageBody null", in: `{"messageType":"ORDER_CREATE","messageBody":null}`, wantErr: true},
		{name: "messageBody string not json", in: `{"messageType":"ORDER_CREATE","messageBody":"orderId=1"}`, wantErr: true},
		{name: "messageBody string holds a string", in: `{"messageType":"ORDER_CREATE","messageBody":"\"{}\""}`, wantErr: true},
		{name: "messageBody truncated json", in: `{"messageType":"ORDER_CREATE","messageBody":"{\"orderId\":\"1\""}`, wantErr: true},
		{name: "messageBody a number", in: `{"messageType":"ORDER_CREATE","messageBody":12}`, wantErr: true},
		{name: "no orderId", in: `{"messageType":"ORDER_CREATE","messageBody":"{\"orderStatus\":\"CANCEL\"}"}`, wantErr: true},
		{name: "orderId an object", in: `{"messageType":"ORDER_CREATE","messageBody":"{\"orderId\":{}}"}`, wantErr: true},
		{name: "amount not a number", in: `{"messageType":"ORDER_CREATE","messageBody":"{\"orderId\":\"1\",\"totalAmount\":\"abc\"}"}`, wantErr: true},
		{name: "amount with exponent", in: `{"messageType":"ORDER_CREATE","messageBody":"{\"orderId\":\"1\",\"totalAmount\":1e999999999}"}`, wantErr: true},
		{name: "bad timestamp", in: `{"messageType":"ORDER_CREATE","timestamp":"yesterday","messageBody":"{\"orderId\":\"1\"}"}`, wantErr: true},
		{name: "negative timestamp", in: `{"messageType":"ORDER_CREATE","timestamp":"-5","messageBody":"{\"orderId\":\"1\"}"}`, wantErr: true},
		{name: "platform not a number", in: `{"messageType":"ORDER_CREATE","messagePlatform":"x","messageBody":"{\"orderId\":\"1\"}"}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePush([]byte(tt.in))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParsePush = %+v, want an error", got)
				}
				if !errors.Is(err, ErrBadPush) {
					t.Errorf("error %v does not wrap ErrBadPush", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePush: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParsePush =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestPushState(t *testing.T) {
	p, err := ParsePush([]byte(samplePush))
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := p.State(); !ok || st != providers.StatePaid {
		t.Errorf("State = %q, %v; want %q, true", st, ok, providers.StatePaid)
	}
}

func FuzzParsePush(f *testing.F) {
	for _, s := range []string{
		samplePush,
		`{"messageType":"ORDER_CANCEL","messageBody":{"orderId":"42"}}`,
		`{"messageType":"ORDER_CREATE","messageBody":"{\"orderId\":1,\"totalAmount\":12.5}","timestamp":"1"}`,
		`{"messageType":"X","messageBody":"\"\\\"\\\"\""}`,
		`{"messageType":"ORDER_CREATE","messageBody":"{\"orderId\":\"1\",\"totalAmount\":\"-0.5\"}"}`,
		`{}`, `null`, `[]`, `"x"`, ``, `{"messageBody":"{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePush(b)
		if err != nil {
			if p != nil {
				t.Errorf("ParsePush returned a message and an error")
			}
			if !errors.Is(err, ErrBadPush) {
				t.Errorf("error %v does not wrap ErrBadPush", err)
			}
			return
		}
		if p == nil || p.MessageType == "" || p.Body.OrderID == "" {
			t.Errorf("ParsePush accepted a message without type or order id: %+v", p)
		}
	})
}
