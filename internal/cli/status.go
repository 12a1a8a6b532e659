package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"orderflow/internal/orders"
	"orderflow/internal/redact"
	"orderflow/providers"
)

// timeFormat is how status shows times: RFC 3339 in UTC with milliseconds.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

func runStatus(ctx context.Context, s stdio, args []string, getenv Getenv) int {
	fs, redisURL := newFlags(s, "status", "[--json] [--provider P] [--redis URL] OUTORDERID...")
	asJSON := fs.Bool("json", false, "print each record as one line of JSON")
	provider := fs.String("provider", "", "the provider of the orders (needed when an id exists at both)")
	ids, exit, ok := parseFlags(fs, args)
	if !ok {
		return exit
	}
	if len(ids) == 0 {
		s.errorf("status: name at least one OUTORDERID")
		fs.Usage()
		return ExitUnavailable
	}
	c, _, exit, ok := setup(ctx, s, getenv, *redisURL)
	if !ok {
		return exit
	}
	defer c.Close()

	status, shown := ExitOK, 0
	for _, id := range ids {
		r, err := find(ctx, c.store, *provider, id)
		if err != nil {
			if code := lookupFailed(s, c, err); code == ExitUnavailable {
				return code
			}
			status = ExitFailed
			continue
		}
		if !showRecord(s, "status", r, *asJSON, shown) {
			return ExitFailed
		}
		shown++
	}
	return status
}

// showRecord prints the n-th record of a command's answer: one JSON line,
// or the record for people with a blank line before all but the first. It
// reports false (having said why) when the record cannot be encoded.
func showRecord(s stdio, cmd string, r *orders.Record, asJSON bool, n int) bool {
	if asJSON {
		b, err := json.Marshal(r)
		if err != nil {
			s.errorf("%s: %v", cmd, err)
			return false
		}
		fmt.Fprintf(s.out, "%s\n", b)
		return true
	}
	if n > 0 {
		fmt.Fprintln(s.out)
	}
	writeRecord(s.out, r)
	return true
}

// writeRecord prints a record for people.
func writeRecord(w io.Writer, r *orders.Record) {
	fmt.Fprintln(w, r.Key())
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	row := func(name, value string) { fmt.Fprintf(tw, "  %s:\t%s\n", name, redact.Terminal(value)) }
	row("state", string(r.State))
	if len(r.ProviderOrderIDs) > 0 {
		row("provider orders", strings.Join(r.ProviderOrderIDs, ", "))
	}
	if q := r.Quote; q != nil {
		row("quote", fmt.Sprintf("%s CNY (goods %s, freight %s, service %s)",
			providers.FormatYuan(q.Total), providers.FormatYuan(q.Goods),
			providers.FormatYuan(q.Freight), providers.FormatYuan(q.Service)))
	}
	if fen, ok := r.Request.MaxTotalFen(); ok {
		row("price guard", providers.FormatYuan(fen)+" CNY")
	}
	if r.Error != nil {
		row("error", r.Error.Code+": "+r.Error.Message)
	}
	if r.RawStatus != "" {
		row("provider status", r.RawStatus)
	}
	for _, t := range r.Totals {
		row("total seen", fmt.Sprintf("%s CNY (%s, %s)", providers.FormatYuan(t.Total), t.Source, formatTime(t.At)))
	}
	for _, pc := range r.Parcels {
		p := pc.Carrier + " " + pc.BillNo
		if pc.Status != "" {
			p += " (" + pc.Status + ")"
		}
		if len(r.Parcels) > 1 {
			p += " of " + pc.OrderID
		}
		row("parcel", p)
	}
	switch {
	case r.CancelRefused != "":
		row("cancel", "refused: "+r.CancelRefused)
	case r.CancelDone:
		row("cancel", "done at the provider"+cancelFor(r))
	case r.CancelRequested:
		row("cancel", "requested"+cancelFor(r))
	}
	row("received", formatTime(r.ReceivedAt))
	row("updated", formatTime(r.UpdatedAt))
	row("deadline", formatTime(r.Deadline))
	_ = tw.Flush()
	fmt.Fprintln(w, "  history:")
	width := 0
	for _, h := range r.History {
		width = max(width, len(h.State))
	}
	for _, h := range r.History {
		line := formatTime(h.At) + "  " + string(h.State)
		note := h.Note
		if h.Event != "" {
			note = h.Event + ": " + note
		}
		if h.Actor != "" {
			note += " (" + h.Action + " by " + h.Actor
			if h.Reason != "" {
				note += ": " + h.Reason
			}
			note += ")"
		}
		if note != "" {
			line += strings.Repeat(" ", width-len(h.State)) + "  " + redact.Terminal(note)
		}
		fmt.Fprintln(w, "    "+line)
	}
}

// cancelFor says why orderflow itself cancels an order, when it does.
func cancelFor(r *orders.Record) string {
	if r.CancelFor == "" {
		return ""
	}
	return " (" + r.CancelFor + ")"
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(timeFormat)
}
