package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"orderflow/internal/fakeprovider"
	"orderflow/internal/orders"
	"orderflow/internal/redistest"
	"orderflow/providers"
	"orderflow/tasks"
)

// okTransport answers every callback 204 without a network.
type okTransport struct{}

func (okTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	return &http.Response{StatusCode: http.StatusNoContent, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
}

// fuzzHandlers builds Handlers on one miniredis with fake providers and
// an asynq client on the same Redis: built once per fuzz process, reused by
// every input (a miniredis per input would be far too slow).
func fuzzHandlers(tb testing.TB) (*Handlers, *orders.Store) {
	tb.Helper()
	srv := redistest.Mini(tb)
	st := orders.NewStore(srv.Client(tb), orders.Config{})
	client := asynq.NewClient(asynq.RedisClientOpt{Addr: srv.Addr})
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: srv.Addr})
	tb.Cleanup(func() { _ = client.Close(); _ = insp.Close() })
	h, err := New(Config{
		Store: st,
		Providers: map[string]providers.Provider{
			providers.Xportcn: fakeprovider.New(providers.Xportcn),
			providers.Depal:   fakeprovider.New(providers.Depal),
		},
		Enqueuer:   client,
		Inspector:  insp,
		HTTPClient: &http.Client{Transport: okTransport{}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return h, st
}

// FuzzProcessTask feeds fuzzed payloads, under every task type and under a
// fuzzed type string, to Handlers.ProcessTask. No input may panic the
// worker or be dropped silently: a type no handler knows, a payload that
// does not decode, or one that names no valid order is archived with a
// reason (an error wrapping asynq.SkipRetry, never nil); a preview of an
// invalid order is archived naming the invalid field; a preview that
// succeeds has stored its order.
func FuzzProcessTask(f *testing.F) {
	valid := `{"provider":"depal","outOrderId":"UP-1","address":{"fullName":"Li Lei","mobile":"13800138000","address":"1 Example Road"},"items":[{"productId":623456789012,"skuId":"b5f2","quantity":2}]}`
	seeds := []struct {
		sel     uint8
		typ     string
		payload string
	}{
		{0, "", valid},
		{0, "", strings.Replace(valid, `"depal"`, `"xportcn"`, 1)},
		{0, "", strings.Replace(valid, `"quantity":2`, `"quantity":0`, 1)},
		{0, "", strings.Replace(valid, `"UP-1"`, `"bad id with spaces"`, 1)},
		{0, "", strings.Replace(valid, `}]}`, `}],"maxTotal":"0.01","callbackUrl":"https://up.example/cb"}`, 1)},
		{0, "", strings.Replace(valid, `}]}`, `}],"callbackUrl":"ftp://x"}`, 1)},
		{0, "", `{"provider":"sim","outOrderId":"UP-1"}`},
		{0, "", `{"items":null}`},
		{0, "", `{"items":[{"productId":"1"}]}`},
		{0, "", ``}, {0, "", `null`}, {0, "", `[]`}, {0, "", `{`}, {0, "", `"x"`},
		{1, "", `{"provider":"depal","outOrderId":"UP-1"}`},
		{1, "", `{"provider":"depal","outOrderId":"never-seen"}`},
		{2, "", `{"provider":"xportcn","outOrderId":"UP-1"}`},
		{3, "", `{"provider":"depal","outOrderId":""}`},
		{4, "", `{"provider":"nope","outOrderId":"UP-1"}`},
		{5, "", `{"provider":"depal","outOrderId":"UP-1","extra":[1,2]}`},
		{1, "", `{"provider":1}`},
		{2, "", `null`},
		{6, "", `{"provider":"depal","outOrderId":"UP-1","upto":1}`},
		{6, "", `{"provider":"depal","outOrderId":"UP-1","upto":0}`},
		{6, "", `{"provider":"depal","outOrderId":"UP-1","upto":-3}`},
		{6, "", `{"provider":"x y","outOrderId":"../../","upto":9}`},
		{6, "", `{"upto":"1"}`},
		{7, "order:unknown", `{}`},
		{7, "", `{}`},
		{7, "ORDER:PREVIEW", valid},
	}
	for _, s := range seeds {
		f.Add(s.sel, s.typ, []byte(s.payload))
	}
	h, st := fuzzHandlers(f)
	f.Fuzz(func(t *testing.T, sel uint8, typ string, payload []byte) {
		if int(sel)%(len(tasks.Types)+1) < len(tasks.Types) {
			typ = tasks.Types[int(sel)%(len(tasks.Types)+1)]
		}
		ctx := context.Background()
		err := h.ProcessTask(ctx, asynq.NewTask(typ, payload))
		archived := errors.Is(err, asynq.SkipRetry)
		mustArchive := func(why string) {
			t.Helper()
			if !archived {
				t.Fatalf("%s %q: %s, want an error wrapping asynq.SkipRetry, got %v", typ, payload, why, err)
			}
			if strings.TrimSpace(strings.TrimSuffix(err.Error(), asynq.SkipRetry.Error())) == "" {
				t.Fatalf("%s %q: archived without a reason: %v", typ, payload, err)
			}
		}
		switch typ {
		case tasks.TypePreview:
			var req providers.OrderRequest
			if json.Unmarshal(payload, &req) != nil {
				mustArchive("payload does not decode")
				return
			}
			if verr := req.Validate(); verr != nil {
				mustArchive("invalid order")
				var fe *providers.FieldError
				if errors.As(verr, &fe) && !strings.Contains(err.Error(), fe.Field) {
					t.Fatalf("invalid order archived without naming field %q: %v", fe.Field, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("preview of a valid order failed: %v", err)
			}
			r, gerr := st.Get(ctx, orders.Key{Provider: req.Provider, OutOrderID: req.OutOrderID})
			if gerr != nil {
				t.Fatalf("preview of %s/%s succeeded but the order is not stored: %v", req.Provider, req.OutOrderID, gerr)
			}
			if r.State == providers.StateReceived {
				t.Fatalf("preview succeeded but the order is still %s", r.State)
			}
		case tasks.TypeCreate, tasks.TypePoll, tasks.TypeTrack, tasks.TypeCancel, tasks.TypeExpire:
			var r ref
			if json.Unmarshal(payload, &r) != nil {
				mustArchive("payload does not decode")
				return
			}
			if !providers.Known(r.Provider) || !providers.ValidOutOrderID(r.OutOrderID) {
				mustArchive("payload names no valid order")
				return
			}
			if _, gerr := st.Get(ctx, r.key()); errors.Is(gerr, orders.ErrNotFound) {
				mustArchive("no such order")
			}
		case tasks.TypeNotify:
			var n notifyRef
			if json.Unmarshal(payload, &n) != nil || n.Upto < 1 {
				mustArchive("payload does not decode")
				return
			}
			if !providers.Known(n.Provider) || !providers.ValidOutOrderID(n.OutOrderID) {
				mustArchive("payload names no valid order")
				return
			}
			if _, gerr := st.Get(ctx, n.key()); errors.Is(gerr, orders.ErrNotFound) && err == nil {
				t.Fatalf("notify for no order answered nil: dropped silently")
			}
		default:
			mustArchive("unknown task type")
		}
	})
}
