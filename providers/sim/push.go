package sim

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"orderflow/providers"
)

// PushMessage is the JSON an Xportcn push POSTs: MessageBody is itself a
// JSON document (a string holding PushBody).
type PushMessage struct {
	MessageType     string `json:"messageType"`
	MessageBody     string `json:"messageBody"`
	MessagePlatform int    `json:"messagePlatform"`
	Timestamp       string `json:"timestamp"`
}

// PushBody is the document inside PushMessage.MessageBody. Amounts are fen.
type PushBody struct {
	OrderID       string `json:"orderId"`
	OrderNo       string `json:"orderNo"`
	OrderStatus   string `json:"orderStatus"`
	PayStatus     string `json:"payStatus"`
	TotalAmount   int64  `json:"totalAmount"`
	ShippingFee   int64  `json:"shippingFee"`
	ProductAmount int64  `json:"productAmount"`
	RefundAmount  int64  `json:"refundAmount"`
	RefundStatus  string `json:"refundStatus"`
	CloseReason   string `json:"closeReason"`
	PayTime       string `json:"payTime"`
}

// pushTypes maps a status change to its message type and push status word
// (upper case, as Xportcn's pushes spell them).
var pushTypes = map[string][2]string{
	statusWaitPay:     {"ORDER_CREATE", "WAITING_FOR_PAYMENT"},
	statusWaitSend:    {"ORDER_PAY_SUCCESS", "WAITING_FOR_SENT"},
	UnknownStatusWord: {"ORDER_PAY_SUCCESS", "WAITLOGISTICSTAKEIN"},
	statusWaitReceive: {"ORDER_BUYER_VIEW_ANNOUNCE_SENDGOODS", "WAITBUYERRECEIVE"},
	statusConfirm:     {"ORDER_BUYER_VIEW_ORDER_COMFIRM_RECEIVEGOODS", "CONFIRM_GOODS"},
	statusSuccess:     {"ORDER_BUYER_VIEW_ORDER_SUCCESS", "SUCCESS"},
	statusCancel:      {"ORDER_CANCEL", "CANCEL"},
	statusTerminated:  {"ORDER_BUYER_VIEW_ORDER_BUYER_REFUND", "TERMINATED"},
}

// PushPriceModify is the message type of a seller's price change before
// payment.
const PushPriceModify = "ORDER_BUYER_VIEW_ORDER_PRICE_MODIFY"

// pushTick is how often (wall time) the push loop looks at the clock.
const pushTick = 5 * time.Millisecond

// delivery is one push message and how many times it was tried.
type delivery struct {
	body    []byte
	attempt int
}

// pusher sends Xportcn push messages for every status change of every
// Xportcn order, on the sim clock. Lock order: store.mu before pusher.mu.
type pusher struct {
	s      *Sim
	client *http.Client

	mu      sync.Mutex
	changes timeHeap[*order]   // orders with a status change due
	queue   timeHeap[delivery] // deliveries due

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newPusher(s *Sim) *pusher {
	p := &pusher{s: s, client: &http.Client{Timeout: s.cfg.PushTimeout}}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	s.store.track = p.track
	return p
}

// track schedules o's next status change. Called under store.mu.
func (p *pusher) track(o *order) {
	if o.provider != providers.Xportcn {
		return
	}
	cs := o.changes(p.s.tl)
	if o.pushed >= len(cs) {
		return
	}
	next := cs[o.pushed].at
	if !o.pushDue.IsZero() && o.pushDue.Equal(next) {
		return
	}
	o.pushDue = next
	p.mu.Lock()
	heap.Push(&p.changes, timed[*order]{at: next, v: o})
	p.mu.Unlock()
}

func (p *pusher) start() {
	p.wg.Add(1)
	go p.loop()
}

func (p *pusher) stop() {
	p.cancel()
	p.wg.Wait()
}

func (p *pusher) loop() {
	defer p.wg.Done()
	t := time.NewTicker(pushTick)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
			p.step(p.s.cfg.Clock.Now())
		}
	}
}

// step turns due status changes into deliveries and sends due deliveries.
func (p *pusher) step(now time.Time) {
	p.mu.Lock()
	due := p.changes.popDue(now)
	p.mu.Unlock()
	var msgs [][]byte
	if len(due) > 0 {
		p.s.store.mu.Lock()
		for _, o := range due {
			cs := o.changes(p.s.tl)
			for o.pushed < len(cs) && !cs[o.pushed].at.After(now) {
				msgs = append(msgs, p.message(o, cs[o.pushed], now))
				o.pushed++
			}
			o.pushDue = time.Time{}
			p.track(o)
		}
		p.s.store.mu.Unlock()
	}
	f := p.s.faults.get()
	p.mu.Lock()
	for _, m := range msgs {
		at := now
		if p.s.faults.roll(f.ReorderPush) {
			p.s.counters.fault(FaultPushReorder)
			at = now.Add(p.s.cfg.PushRetry)
		}
		heap.Push(&p.queue, timed[delivery]{at: at, v: delivery{body: m}})
		if p.s.faults.roll(f.DuplicatePush) {
			p.s.counters.fault(FaultPushDuplicate)
			heap.Push(&p.queue, timed[delivery]{at: now, v: delivery{body: m}})
		}
	}
	send := p.queue.popDue(now)
	p.mu.Unlock()
	for _, d := range send {
		p.wg.Add(1)
		go p.deliver(d)
	}
}

// message renders o's change c. Called under store.mu.
func (p *pusher) message(o *order, c change, now time.Time) []byte {
	tw := pushTypes[c.status]
	if c.price {
		tw[0] = PushPriceModify
	}
	b := PushBody{
		OrderID: o.id, OrderNo: o.id, OrderStatus: tw[1], PayStatus: "UNPAID",
		TotalAmount: o.totalAt(p.s.tl, c.at), ShippingFee: o.freight, ProductAmount: o.goodsAt(p.s.tl, c.at),
		RefundStatus: "", PayTime: formatTime(o.payTime(p.s.tl, c.at)),
	}
	switch c.status {
	case statusCancel:
		b.CloseReason = "buyerCancel"
		if o.cancelledAt.IsZero() {
			b.CloseReason = "payTimeout"
		}
	case statusTerminated:
		b.PayStatus, b.RefundAmount, b.RefundStatus = "REFUNDED", o.totalAt(p.s.tl, c.at), "REFUND_SUCCESS"
	case statusWaitPay:
	default:
		b.PayStatus = "PAID"
	}
	inner, _ := json.Marshal(b)
	m, _ := json.Marshal(PushMessage{
		MessageType: tw[0], MessageBody: string(inner), MessagePlatform: 1,
		Timestamp: strconv.FormatInt(c.at.UnixMilli(), 10),
	})
	return m
}

// deliver POSTs one message; a failure (not 200, or slower than
// PushTimeout) is retried PushRetry later (sim time), at most
// PushMaxRetries times.
func (p *pusher) deliver(d delivery) {
	defer p.wg.Done()
	p.s.counters.push()
	ok := false
	req, err := http.NewRequestWithContext(p.ctx, http.MethodPost, p.s.cfg.PushURL, bytes.NewReader(d.body))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		var resp *http.Response
		resp, err = p.client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			_ = resp.Body.Close()
			ok = resp.StatusCode == http.StatusOK
		}
	}
	if ok || p.ctx.Err() != nil {
		return
	}
	p.s.cfg.Logger.Debug("sim: push failed", "attempt", d.attempt, "err", err)
	if d.attempt >= p.s.cfg.PushMaxRetries {
		p.s.cfg.Logger.Warn("sim: push dropped after retries", "retries", d.attempt)
		return
	}
	d.attempt++
	p.mu.Lock()
	heap.Push(&p.queue, timed[delivery]{at: p.s.cfg.Clock.Now().Add(p.s.cfg.PushRetry), v: d})
	p.mu.Unlock()
}

// timed is a value due at a time.
type timed[T any] struct {
	at time.Time
	v  T
}

// timeHeap is a min-heap of timed values (container/heap).
type timeHeap[T any] []timed[T]

func (h timeHeap[T]) Len() int           { return len(h) }
func (h timeHeap[T]) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timeHeap[T]) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timeHeap[T]) Push(x any)        { *h = append(*h, x.(timed[T])) }
func (h *timeHeap[T]) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// popDue removes and returns the values due at now, earliest first.
func (h *timeHeap[T]) popDue(now time.Time) []T {
	var out []T
	for h.Len() > 0 && !(*h)[0].at.After(now) {
		out = append(out, heap.Pop(h).(timed[T]).v)
	}
	return out
}
