package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"orderflow/internal/orders"
	"orderflow/internal/pipeline"
	"orderflow/providers"
	"orderflow/tasks"
)

type orderData struct {
	Rec      *orders.Record
	Since    time.Time
	MaxTotal string
	// Over: the quote's total is above maxTotal.
	Over bool
	// Raw are the provider order ids with their last status word.
	Raw   []rawStatus
	Tasks []taskRow
	Form  decisionForm
	// Decided names the decision just recorded (after a confirm).
	Decided string
}

type rawStatus struct {
	ID   string
	Word string
}

type taskRow struct {
	Type    string
	Queue   string
	ID      string
	State   string
	Next    time.Time
	Retried int
	LastErr string
	Link    string
}

// decisionForm is the decision form's state.
type decisionForm struct {
	Key     orders.Key
	CSRF    string
	Actions []actionChoice
	Action  string
	By      string
	Reason  string
	IDs     string
	Error   string
	Enabled bool
}

type actionChoice struct {
	Name string
	Says string
}

// actions are the decisions the forms offer, with what each does.
var actions = []actionChoice{
	{string(pipeline.ActionRecheck), "look the order up at the provider now and adopt what it has"},
	{string(pipeline.ActionAttach), "adopt provider order ids you found (below) and follow them"},
	{string(pipeline.ActionRecreate), "create the order again, once a fresh lookup says the provider has none"},
	{string(pipeline.ActionClose), "end the order failed, code MANUAL (the reason becomes its message)"},
	{string(pipeline.ActionRetry), "re-run the order's archived tasks"},
	{string(pipeline.ActionCancel), "cancel the order (at the provider once placed)"},
}

func validAction(a string) bool {
	for _, c := range actions {
		if c.Name == a {
			return true
		}
	}
	return false
}

func keyOf(r *http.Request) (orders.Key, bool) {
	k := orders.Key{Provider: r.PathValue("provider"), OutOrderID: r.PathValue("outOrderId")}
	return k, providers.Known(k.Provider) && providers.ValidOutOrderID(k.OutOrderID)
}

// orderURL is the console page of an order.
func orderURL(k orders.Key) string {
	return "/console/orders/" + url.PathEscape(k.Provider) + "/" + url.PathEscape(k.OutOrderID)
}

func (c *Console) order(rw http.ResponseWriter, r *http.Request) {
	k, ok := keyOf(r)
	if !ok {
		c.fail(rw, http.StatusNotFound, "no such order: "+k.String())
		return
	}
	rec, err := c.cfg.Store.Get(r.Context(), k)
	if errors.Is(err, orders.ErrNotFound) {
		c.fail(rw, http.StatusNotFound, "no order "+k.String()+" (an ended order is kept for the retention only)")
		return
	}
	if err != nil {
		c.storeFailed(rw, err)
		return
	}
	form := decisionForm{Key: k, CSRF: c.csrfToken(rw, r), Actions: actions, Enabled: c.cfg.Decider != nil}
	if ck, err := r.Cookie(byCookie); err == nil {
		if by, err := url.QueryUnescape(ck.Value); err == nil {
			form.By = by
		}
	}
	d := c.orderData(rec, form)
	if a := r.URL.Query().Get("decided"); validAction(a) {
		d.Decided = a
	}
	c.render(rw, http.StatusOK, "order", page{Title: k.String(), Nav: "orders", Data: d})
}

func (c *Console) orderData(rec *orders.Record, form decisionForm) orderData {
	d := orderData{Rec: rec, Since: enteredAt(rec), Form: form, MaxTotal: rec.Request.MaxTotal}
	if rec.Quote != nil && rec.Request.MaxTotal != "" {
		if max, err := providers.ParseYuan(rec.Request.MaxTotal); err == nil && rec.Quote.Total > max {
			d.Over = true
		}
	}
	d.Raw = rawStatuses(rec)
	d.Tasks = c.orderTasks(rec)
	return d
}

// rawStatuses pairs the provider order ids with their last status words
// (RawStatus is "id=word,…" when split, else one word).
func rawStatuses(rec *orders.Record) []rawStatus {
	words := map[string]string{}
	single := ""
	if rec.RawStatus != "" {
		if len(rec.ProviderOrderIDs) > 1 {
			for _, part := range strings.Split(rec.RawStatus, ",") {
				if id, w, ok := strings.Cut(part, "="); ok {
					words[id] = w
				}
			}
		} else {
			single = rec.RawStatus
		}
	}
	out := make([]rawStatus, 0, len(rec.ProviderOrderIDs))
	for _, id := range rec.ProviderOrderIDs {
		w := words[id]
		if single != "" {
			w = single
		}
		out = append(out, rawStatus{ID: id, Word: w})
	}
	if len(out) == 0 && rec.RawStatus != "" {
		out = append(out, rawStatus{Word: rec.RawStatus})
	}
	return out
}

// orderTasks reads the order's tasks from asynq by their ids: the
// pipeline names each step's task after the order (and, for polls,
// tracks and deliveries, the step's place in its chain).
func (c *Console) orderTasks(rec *orders.Record) []taskRow {
	k := rec.Key()
	id := func(t string) string { return pipeline.TaskID(t, k) }
	type cand struct{ typ, queue, id string }
	cands := []cand{
		{tasks.TypePreview, tasks.Queue(k.Provider, tasks.KindPreview), id(tasks.TypePreview)},
		{tasks.TypeCreate, tasks.Queue(k.Provider, tasks.KindCreate), id(tasks.TypeCreate)},
		{tasks.TypeCancel, tasks.Queue(k.Provider, tasks.KindCreate), id(tasks.TypeCancel)},
		{tasks.TypeExpire, tasks.Queue(k.Provider, tasks.KindPoll), id(tasks.TypeExpire)},
	}
	for seq := max(0, rec.PollSeq-1); seq <= rec.PollSeq; seq++ {
		cands = append(cands, cand{tasks.TypePoll, tasks.Queue(k.Provider, tasks.KindPoll), fmt.Sprintf("%s:%d", id(tasks.TypePoll), seq)})
	}
	for seq := max(0, rec.TrackSeq-1); seq <= rec.TrackSeq; seq++ {
		cands = append(cands, cand{tasks.TypeTrack, tasks.Queue(k.Provider, tasks.KindPoll), fmt.Sprintf("%s:%d", id(tasks.TypeTrack), seq)})
	}
	if rec.Request.CallbackURL != "" {
		// One delivery task per history length not yet delivered (the
		// last few).
		for n := max(rec.Notified+1, len(rec.History)-4); n <= len(rec.History); n++ {
			cands = append(cands, cand{tasks.TypeNotify, tasks.QueueNotify, fmt.Sprintf("%s:%d", id(tasks.TypeNotify), n)})
		}
	}
	var out []taskRow
	for _, cd := range cands {
		info, err := c.cfg.Tasks.GetTaskInfo(cd.queue, cd.id)
		if err != nil {
			continue // not there (done, removed, never made)
		}
		out = append(out, taskRow{Type: cd.typ, Queue: cd.queue, ID: cd.id, State: info.State.String(),
			Next: info.NextProcessAt, Retried: info.Retried, LastErr: info.LastErr,
			Link: c.cfg.Monitoring + "/queues/" + url.PathEscape(cd.queue) + "/tasks/" + url.PathEscape(cd.id)})
	}
	return out
}

// decide is POST …/decide: without confirm, a dry run whose message the
// confirm page shows; with confirm, the decision, then back to the order.
func (c *Console) decide(rw http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(rw, r.Body, 64<<10)
	if err := c.checkPost(r); err != nil {
		c.fail(rw, http.StatusForbidden, err.Error())
		return
	}
	k, ok := keyOf(r)
	if !ok {
		c.fail(rw, http.StatusNotFound, "no such order: "+k.String())
		return
	}
	if c.cfg.Decider == nil {
		c.fail(rw, http.StatusNotFound, "this worker takes no decisions")
		return
	}
	form := decisionForm{Key: k, CSRF: c.csrfToken(rw, r), Actions: actions, Enabled: true,
		Action: r.PostFormValue("action"), By: strings.TrimSpace(r.PostFormValue("by")),
		Reason: strings.TrimSpace(r.PostFormValue("reason")), IDs: strings.TrimSpace(r.PostFormValue("ids"))}
	confirm := r.PostFormValue("confirm") == "1"
	again := func(status int, msg string) {
		rec, err := c.cfg.Store.Get(r.Context(), k)
		if err != nil {
			c.fail(rw, status, msg)
			return
		}
		form.Error = msg
		c.render(rw, status, "order", page{Title: k.String(), Nav: "orders", Data: c.orderData(rec, form)})
	}
	switch {
	case !validAction(form.Action):
		again(http.StatusBadRequest, "choose a decision")
		return
	case form.By == "":
		again(http.StatusBadRequest, "“by” is required: who decides (the console has no accounts)")
		return
	case form.Reason == "":
		again(http.StatusBadRequest, "a reason is required")
		return
	case form.Action == string(pipeline.ActionAttach) && form.IDs == "":
		again(http.StatusBadRequest, "attach needs the provider order ids")
		return
	}
	dec := pipeline.Decision{Action: pipeline.Action(form.Action), By: form.By, Reason: form.Reason, DryRun: !confirm}
	if form.IDs != "" {
		dec.IDs = strings.FieldsFunc(form.IDs, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
	}
	got, err := c.cfg.Decider.Decide(r.Context(), k, dec)
	switch {
	case errors.Is(err, orders.ErrNotFound):
		c.fail(rw, http.StatusNotFound, "no order "+k.String())
		return
	case errors.Is(err, pipeline.ErrDecision):
		again(http.StatusBadRequest, err.Error())
		return
	case err != nil:
		c.log.Warn("console: decision failed", "order", k.String(), "action", form.Action, "err", err)
		again(http.StatusServiceUnavailable, "the decision could not be carried out: "+err.Error())
		return
	}
	http.SetCookie(rw, &http.Cookie{Name: byCookie, Value: url.QueryEscape(form.By), Path: Path,
		MaxAge: 365 * 24 * 3600, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	if confirm && got.Done {
		c.log.Info("console: decision", "order", k.String(), "action", form.Action, "by", form.By)
		http.Redirect(rw, r, orderURL(k)+"?decided="+url.QueryEscape(form.Action), http.StatusSeeOther)
		return
	}
	status := http.StatusOK
	if !got.Done {
		status = http.StatusConflict
	}
	rec := got.Record
	if rec == nil {
		rec, _ = c.cfg.Store.Get(r.Context(), k)
	}
	c.render(rw, status, "confirm", page{Title: "Confirm " + form.Action, Nav: "orders",
		Data: confirmData{Form: form, Decided: got, Rec: rec, Confirmed: confirm}})
}

type confirmData struct {
	Form    decisionForm
	Decided pipeline.Decided
	Rec     *orders.Record
	// Confirmed: this was the confirm POST, refused.
	Confirmed bool
}
