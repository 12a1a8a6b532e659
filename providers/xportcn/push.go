package xportcn

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"orderflow/providers"
)

// The push message types seen (docs/providers.md, "Xportcn: push
// messages"). Others may come; ParsePush
// accepts any non-empty type.
const (
	PushOrderCreate      = "ORDER_CREATE"
	PushOrderCancel      = "ORDER_CANCEL"
	PushOrderPaySuccess  = "ORDER_PAY_SUCCESS"
	PushOrderPriceModify = "ORDER_BUYER_VIEW_ORDER_PRICE_MODIFY"
	PushOrderBuyerRefund = "ORDER_BUYER_VIEW_ORDER_BUYER_REFUND"
)

// The values of Push.MessagePlatform.
const (
	PushPlatformTaobao = 0
	PushPlatform1688   = 1
)

// Push is one message of Xportcn's message callback. It is not signed: a
// receiver uses it only as a hint to re-fetch Body.OrderID, never as the
// order's state.
type Push struct {
	// MessageType is the message's type (ORDER_CREATE, ORDER_PAY_SUCCESS…).
	MessageType string
	// MessagePlatform is 0 for Taobao, 1 for 1688.
	MessagePlatform int
	// Timestamp is when the provider sent the message; zero when absent.
	Timestamp time.Time
	// Body is the decoded messageBody.
	Body PushBody
}

// PushBody is the order part of a push message. Amounts are fen.
type PushBody struct {
	OrderID       string
	OrderNo       string
	OrderStatus   string
	PayStatus     string
	TotalAmount   int64
	ShippingFee   int64
	ProductAmount int64
	RefundAmount  int64
	RefundStatus  string
	CloseReason   string
	// PayTime is the payment time as the provider wrote it.
	PayTime string
}

// State maps Body.OrderStatus with providers.MapStatus (ok false: a word it
// does not know, or none).
func (p *Push) State() (providers.State, bool) { return providers.MapStatus(p.Body.OrderStatus) }

// pushWire is a push message as sent.
type pushWire struct {
	MessageType     flexString      `json:"messageType"`
	MessageBody     json.RawMessage `json:"messageBody"`
	MessagePlatform flexInt         `json:"messagePlatform"`
	Timestamp       flexString      `json:"timestamp"`
}

// pushBodyWire is the JSON inside messageBody.
type pushBodyWire struct {
	OrderID       flexString `json:"orderId"`
	OrderNo       flexString `json:"orderNo"`
	OrderStatus   flexString `json:"orderStatus"`
	PayStatus     flexString `json:"payStatus"`
	TotalAmount   fen        `json:"totalAmount"`
	ShippingFee   fen        `json:"shippingFee"`
	ProductAmount fen        `json:"productAmount"`
	RefundAmount  fen        `json:"refundAmount"`
	RefundStatus  flexString `json:"refundStatus"`
	CloseReason   flexString `json:"closeReason"`
	PayTime       flexString `json:"payTime"`
}

// ErrBadPush is wrapped by every error of ParsePush.
var ErrBadPush = errors.New("xportcn: malformed push message")

// ParsePush decodes a push message: {messageType, messageBody, messagePlatform,
// timestamp}. messageBody is a JSON string holding the order's JSON (an
// object in its place is accepted too); timestamp is epoch milliseconds as a
// string (or a number). A message without a messageType, without a body or
// without an orderId is malformed. Every error wraps ErrBadPush; it never
// panics.
func ParsePush(body []byte) (*Push, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBadPush, fmt.Sprintf(format, a...))
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, bad("not a JSON object")
	}
	var w pushWire
	if err := json.Unmarshal(trimmed, &w); err != nil {
		return nil, bad("%v", err)
	}
	p := &Push{MessageType: strings.TrimSpace(string(w.MessageType)), MessagePlatform: int(w.MessagePlatform)}
	if p.MessageType == "" {
		return nil, bad("no messageType")
	}
	if ts := strings.TrimSpace(string(w.Timestamp)); ts != "" {
		ms, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || ms < 0 {
			return nil, bad("timestamp %.40q is not epoch milliseconds", ts)
		}
		p.Timestamp = time.UnixMilli(ms).UTC()
	}
	inner := bytes.TrimSpace(w.MessageBody)
	if len(inner) > 0 && inner[0] == '"' {
		var s string
		if err := json.Unmarshal(inner, &s); err != nil {
			return nil, bad("messageBody: %v", err)
		}
		inner = bytes.TrimSpace([]byte(s))
	}
	if len(inner) == 0 || inner[0] != '{' {
		return nil, bad("messageBody is not a JSON object")
	}
	var b pushBodyWire
	if err := json.Unmarshal(inner, &b); err != nil {
		return nil, bad("messageBody: %v", err)
	}
	p.Body = PushBody{
		OrderID:       strings.TrimSpace(string(b.OrderID)),
		OrderNo:       string(b.OrderNo),
		OrderStatus:   string(b.OrderStatus),
		PayStatus:     string(b.PayStatus),
		TotalAmount:   int64(b.TotalAmount),
		ShippingFee:   int64(b.ShippingFee),
		ProductAmount: int64(b.ProductAmount),
		RefundAmount:  int64(b.RefundAmount),
		RefundStatus:  string(b.RefundStatus),
		CloseReason:   string(b.CloseReason),
		PayTime:       string(b.PayTime),
	}
	if p.Body.OrderID == "" {
		return nil, bad("messageBody has no orderId")
	}
	return p, nil
}
