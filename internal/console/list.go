package console

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"orderflow/internal/orders"
	"orderflow/providers"
)

// List bounds.
const (
	// listPage is the orders a list page shows.
	listPage = 50
	// reasonReads bounds the index pages read for a reason filter (the
	// reason is in the records, not in an index): at most
	// reasonReads*reasonPage records a page.
	reasonReads = 10
	reasonPage  = 200
)

// filter is the list page's query.
type filter struct {
	State    string
	Provider string
	Reason   string
	// Older and Newer bound the time in the order's state (Go durations).
	Older  string
	Newer  string
	Search string
	Cursor string
}

func (f filter) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"state": f.State, "provider": f.Provider, "reason": f.Reason,
		"older": f.Older, "newer": f.Newer, "q": f.Search} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

type listData struct {
	F         filter
	States    []providers.State
	Providers []string
	Rows      []listRow
	// Next is the next page's URL ("": the last page).
	Next string
	// Read is how many records a reason filter read for this page.
	Read     int
	Searched bool
	Error    string
}

type listRow struct {
	Key        orders.Key
	State      providers.State
	Code       string
	Since      time.Time
	ReceivedAt time.Time
	IDs        []string
	BillNo     string
}

func rowOf(rec *orders.Record) listRow {
	row := listRow{Key: rec.Key(), State: rec.State, ReceivedAt: rec.ReceivedAt, IDs: rec.ProviderOrderIDs,
		Since: enteredAt(rec)}
	if rec.Error != nil {
		row.Code = rec.Error.Code
	}
	for _, p := range rec.Parcels {
		if row.BillNo != "" {
			row.BillNo += ","
		}
		row.BillNo += p.BillNo
	}
	return row
}

// enteredAt is when the record entered its state: its last move.
func enteredAt(rec *orders.Record) time.Time {
	for i := len(rec.History) - 1; i >= 0; i-- {
		if h := rec.History[i]; h.Event == "" {
			return h.At
		}
	}
	return rec.ReceivedAt
}

func (c *Console) list(rw http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	f := filter{State: v.Get("state"), Provider: v.Get("provider"), Reason: strings.TrimSpace(v.Get("reason")),
		Older: strings.TrimSpace(v.Get("older")), Newer: strings.TrimSpace(v.Get("newer")),
		Search: strings.TrimSpace(v.Get("q")), Cursor: v.Get("cursor")}
	d := listData{F: f, States: providers.States, Providers: providers.Names}
	bad := func(msg string) {
		d.Error = msg
		c.render(rw, http.StatusBadRequest, "list", page{Title: "Orders", Nav: "orders", Data: d})
	}
	if f.Search != "" {
		c.search(rw, r, d)
		return
	}
	st := c.cfg.Store
	now := st.Now()
	q := orders.ListQuery{Provider: f.Provider, Cursor: f.Cursor, Limit: listPage}
	if f.State != "" {
		s := providers.State(f.State)
		if !s.Valid() {
			bad("unknown state " + strconv.Quote(f.State))
			return
		}
		q.States = []providers.State{s}
	}
	if f.Provider != "" && !providers.Known(f.Provider) {
		bad("unknown provider " + strconv.Quote(f.Provider))
		return
	}
	if f.Newer != "" {
		dur, err := time.ParseDuration(f.Newer)
		if err != nil || dur <= 0 {
			bad("“in state for less than” must be a duration such as 30m or 2h")
			return
		}
		q.Since = now.Add(-dur)
	}
	if f.Older != "" {
		dur, err := time.ParseDuration(f.Older)
		if err != nil || dur < 0 {
			bad("“in state for more than” must be a duration such as 30m or 2h")
			return
		}
		if q.Cursor == "" {
			q.Cursor = orders.CursorBefore(now.Add(-dur))
		}
	}
	var (
		recs []*orders.Record
		next string
	)
	if f.Reason == "" {
		p, err := st.List(r.Context(), q)
		if errors.Is(err, orders.ErrCursor) {
			bad("this page's cursor is not one the console made: start again from the first page")
			return
		}
		if err != nil {
			c.storeFailed(rw, err)
			return
		}
		recs, next = p.Orders, p.Next
	} else {
		// The reason is in the records: read index pages, keep matches.
		q.Limit = reasonPage
		for range reasonReads {
			p, err := st.List(r.Context(), q)
			if errors.Is(err, orders.ErrCursor) {
				bad("this page's cursor is not one the console made: start again from the first page")
				return
			}
			if err != nil {
				c.storeFailed(rw, err)
				return
			}
			d.Read += len(p.Orders)
			for _, rec := range p.Orders {
				if rec.Error != nil && strings.EqualFold(rec.Error.Code, f.Reason) {
					recs = append(recs, rec)
				}
			}
			next = p.Next
			if next == "" || len(recs) >= listPage {
				break
			}
			q.Cursor = next
		}
	}
	for _, rec := range recs {
		d.Rows = append(d.Rows, rowOf(rec))
	}
	if next != "" {
		nv := f.values()
		nv.Set("cursor", next)
		d.Next = "/console/orders?" + nv.Encode()
	}
	c.render(rw, http.StatusOK, "list", page{Title: "Orders", Nav: "orders", Data: d})
}

// search answers the orders whose outOrderId, provider order id or
// parcel tracking number is f.Search: point reads, no scan.
func (c *Console) search(rw http.ResponseWriter, r *http.Request, d listData) {
	st := c.cfg.Store
	ctx := r.Context()
	d.Searched = true
	var found []*orders.Record
	seen := map[orders.Key]bool{}
	add := func(rec *orders.Record) {
		if !seen[rec.Key()] && (d.F.Provider == "" || rec.Provider == d.F.Provider) {
			seen[rec.Key()] = true
			found = append(found, rec)
		}
	}
	if providers.ValidOutOrderID(d.F.Search) {
		for _, p := range providers.Names {
			rec, err := st.Get(ctx, orders.Key{Provider: p, OutOrderID: d.F.Search})
			if errors.Is(err, orders.ErrNotFound) {
				continue
			}
			if err != nil {
				c.storeFailed(rw, err)
				return
			}
			add(rec)
		}
	}
	owners, err := st.Find(ctx, d.F.Search)
	if err != nil {
		c.storeFailed(rw, err)
		return
	}
	for _, rec := range owners {
		add(rec)
	}
	slices.SortFunc(found, func(a, b *orders.Record) int { return strings.Compare(a.Key().String(), b.Key().String()) })
	for _, rec := range found {
		d.Rows = append(d.Rows, rowOf(rec))
	}
	c.render(rw, http.StatusOK, "list", page{Title: "Search", Nav: "orders", Data: d})
}
