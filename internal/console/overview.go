package console

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"orderflow/internal/orders"
	"orderflow/providers"
	"orderflow/tasks"
)

// Overview bounds.
const (
	// inboxSize is how many parked orders the overview lists.
	inboxSize = 50
	// failureWindow is the overview's "failures of the last day".
	failureWindow = 24 * time.Hour
	// failureSample is how many of those failures are read to group them
	// by code (the totals come from the indexes).
	failureSample = 1000
	// overviewRefresh reloads the overview (seconds).
	overviewRefresh = 30
)

// endedBad are the ended states the overview counts as failures.
var endedBad = []providers.State{providers.StateFailed, providers.StateRejected, providers.StateExpired}

type overviewData struct {
	States    []providers.State
	Providers []countRow
	Inbox     []inboxRow
	// Failures are the last day's failures by provider, state and code.
	Failures      []failureRow
	FailuresTotal int64
	// FailuresSampled: the codes are those of the latest failureSample.
	FailuresSampled int
	Health          []healthRow
	Oldest          *inboxRow
}

type countRow struct {
	Provider string
	Counts   []int64
	Total    int64
}

type inboxRow struct {
	Key     orders.Key
	State   providers.State
	Code    string
	Message string
	Since   time.Time
}

type failureRow struct {
	Provider string
	State    providers.State
	Code     string
	Count    int
}

type healthRow struct {
	Provider string
	Breaker  string
	// Quota: nil when no reader is configured or it failed.
	Quota *quotaView
	// Queues are the provider's queues with their size and latency.
	Queues []queueView
}

type quotaView struct {
	Rate      float64
	Burst     int
	InUse     float64
	Throttled time.Duration
	Unlimited bool
}

type queueView struct {
	Name    string
	Size    int
	Latency time.Duration
	Known   bool
}

// liveStates are the columns of the counts table.
var liveStates = func() []providers.State {
	var out []providers.State
	for _, s := range providers.States {
		if !s.Terminal() {
			out = append(out, s)
		}
	}
	return out
}()

func (c *Console) overview(rw http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	st := c.cfg.Store
	now := st.Now()
	d := overviewData{States: liveStates}

	counts, err := st.LiveCounts(ctx)
	if err != nil {
		c.storeFailed(rw, err)
		return
	}
	for _, p := range providers.Names {
		row := countRow{Provider: p}
		for _, s := range liveStates {
			n := counts[p][string(s)]
			row.Counts = append(row.Counts, n)
			row.Total += n
		}
		d.Providers = append(d.Providers, row)
	}

	parked, err := st.Oldest(ctx, providers.StateNeedsReview, inboxSize)
	if err != nil {
		c.storeFailed(rw, err)
		return
	}
	for _, e := range parked {
		d.Inbox = append(d.Inbox, inboxOf(e.Record, e.At))
	}

	if err := c.failures(ctx, now, &d); err != nil {
		c.storeFailed(rw, err)
		return
	}
	d.Health = c.health(ctx)

	oldest, err := st.ReceivedBefore(ctx, now.Add(time.Second), 1)
	if err != nil {
		c.storeFailed(rw, err)
		return
	}
	if len(oldest) == 1 {
		rec, err := st.Get(ctx, oldest[0])
		switch {
		case errors.Is(err, orders.ErrNotFound):
		case err != nil:
			c.storeFailed(rw, err)
			return
		default:
			row := inboxOf(rec, rec.ReceivedAt)
			d.Oldest = &row
		}
	}
	c.render(rw, http.StatusOK, "overview", page{Title: "Overview", Nav: "overview", Refresh: overviewRefresh, Data: d})
}

func inboxOf(rec *orders.Record, since time.Time) inboxRow {
	row := inboxRow{Key: rec.Key(), State: rec.State, Since: since}
	if rec.Error != nil {
		row.Code, row.Message = rec.Error.Code, rec.Error.Message
	}
	return row
}

// failures fills the last day's failures: totals from the indexes, codes
// from the latest failureSample records.
func (c *Console) failures(ctx context.Context, now time.Time, d *overviewData) error {
	since := now.Add(-failureWindow)
	for _, p := range providers.Names {
		for _, s := range endedBad {
			n, err := c.cfg.Store.CountEntered(ctx, p, s, since)
			if err != nil {
				return err
			}
			d.FailuresTotal += n
		}
	}
	if d.FailuresTotal == 0 {
		return nil
	}
	page, err := c.cfg.Store.List(ctx, orders.ListQuery{States: endedBad, Since: since, Limit: failureSample})
	if err != nil {
		return err
	}
	type k struct {
		p    string
		s    providers.State
		code string
	}
	by := map[k]int{}
	for _, rec := range page.Orders {
		code := ""
		if rec.Error != nil {
			code = rec.Error.Code
		}
		by[k{rec.Provider, rec.State, code}]++
	}
	for key, n := range by {
		d.Failures = append(d.Failures, failureRow{Provider: key.p, State: key.s, Code: key.code, Count: n})
	}
	slices.SortFunc(d.Failures, func(a, b failureRow) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Provider, b.Provider),
			cmp.Compare(a.State, b.State), cmp.Compare(a.Code, b.Code))
	})
	if page.Next != "" {
		d.FailuresSampled = len(page.Orders)
	}
	return nil
}

// health reads each served provider's breaker, quota use and queues.
func (c *Console) health(ctx context.Context) []healthRow {
	var out []healthRow
	for _, p := range providers.Names {
		prov, served := c.cfg.Providers[p]
		if !served {
			continue
		}
		row := healthRow{Provider: p, Breaker: "—"}
		if b, ok := prov.(interface{ BreakerState() string }); ok {
			row.Breaker = b.BreakerState()
		}
		if c.cfg.Quota != nil {
			u, err := c.cfg.Quota.Use(ctx, p)
			if err != nil {
				c.log.Warn("console: quota use", "provider", p, "err", err)
			} else {
				row.Quota = &quotaView{Rate: u.Quota.Rate, Burst: u.Quota.Burst, InUse: u.InUse,
					Throttled: u.Throttled, Unlimited: u.Quota.Rate <= 0}
			}
		}
		for _, kind := range []string{tasks.KindCreate, tasks.KindPreview, tasks.KindPoll} {
			q := tasks.Queue(p, kind)
			v := queueView{Name: q}
			if info, err := c.cfg.Tasks.GetQueueInfo(q); err == nil {
				v.Known, v.Size, v.Latency = true, info.Size, info.Latency
			}
			row.Queues = append(row.Queues, v)
		}
		out = append(out, row)
	}
	return out
}
