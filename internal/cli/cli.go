// Package cli is the `enqueue` command: the producer side of orderflow.
// Main runs one subcommand with its arguments, standard streams and
// environment passed in, and returns the exit status, so tests run it in
// process.
//
//	enqueue submit [-f FILE] [--json] [--redis URL]
//	enqueue status [--json] [--provider P] [--redis URL] OUTORDERID...
//	enqueue watch  [--interval D] [--provider P] [--redis URL] [OUTORDERID...]
//	enqueue cancel [--provider P] [--by NAME] [--reason TEXT] [--redis URL] OUTORDERID
//	enqueue list   [--state S]... [--provider P] [--since D] [--limit N] [--json] [--redis URL]
//	enqueue find   [--json] [--redis URL] ID
//	enqueue review (--recheck | --attach ID[,ID...] | --recreate | --close REASON) [--by NAME] [--reason TEXT] [--dry-run] [--wait D] [--provider P] [--redis URL] OUTORDERID
//	enqueue retry  [--by NAME] [--reason TEXT] [--dry-run] [--wait D] [--provider P] [--redis URL] OUTORDERID
//
// Flags may come before or after the arguments; "--" ends the flags. An
// OUTORDERID may be written PROVIDER/OUTORDERID instead of using --provider.
// Without a provider, an id is looked up at every provider; one known at
// both must be named with one (status, watch and cancel then fail).
//
// # submit
//
// Reads orders from FILE ("-" or no -f: standard input) in any format of
// package intake (a JSON array, NDJSON, or one object), at most
// intake.DefaultLimit of them. Standard output gets exactly one line per
// order, in input order, and nothing else:
//
//	<id>\taccepted
//	<id>\tduplicate (<state>)
//	<id>\tinvalid: <field>: <reason>
//
// where <id> is the order's outOrderId when it has a valid one, else "#N",
// N being the order's 1-based position in the input, and <state> the state
// the order already known is in. A decode problem without a field reads
// "invalid: malformed JSON at byte 40: …". For example:
//
//	UP-2026-000123	accepted
//	UP-2026-000124	duplicate (awaiting_payment)
//	UP-2026-000125	invalid: items[0].quantity: expected a number, got string
//	#4	invalid: malformed JSON at byte 12: invalid character '}' looking for beginning of value
//
// With --json each line is instead a JSON object (see SubmitLine):
//
//	{"n":1,"provider":"depal","outOrderId":"UP-1","outcome":"accepted","state":"received"}
//	{"n":3,"provider":"depal","outOrderId":"UP-3","outcome":"invalid","field":"items[0].quantity","error":"items[0].quantity: expected a number, got string"}
//
// A summary ("submit: 4 orders: 2 accepted, 1 duplicate, 1 invalid") goes
// to standard error. A batch that cannot be read as a whole (a syntax error
// in an array, too many orders) is refused before anything is submitted.
//
// # status
//
// Prints each order's record: state, provider order ids, quote and price
// guard in yuan, error, cancel request, parcel, and the history of states
// with their times (RFC 3339, UTC, milliseconds); records are separated by
// a blank line. With --json, each record as one line of JSON (the
// orders.Record document). An id not found, or known at both providers
// without --provider, is reported on standard error.
//
// # watch
//
// Follows the named orders (default: every order live when watch starts)
// until all have ended or wait for a person (needs_review: watching cannot
// change them), showing a bar done/total and the count of orders per
// state on standard error: redrawn in place when standard error is a
// terminal, else one line each time the counts change. It reads the
// orders once, then follows the event stream (never the whole live index
// per interval). When all are done (or watch is interrupted) the final
// counts go to standard output, one "<state>\t<count>" line per state in
// flow order, then "total\t<n>". An order whose record has gone
// (retention) counts as ended, as "gone".
//
// # review
//
// Carries a person's decision on a parked order to a worker (which may ask
// the provider) and prints its answer, "<provider>/<id>: <what happened>":
// exactly one of --recheck (look the order up now and adopt what the
// provider has), --attach ID[,ID...] (adopt provider orders a person
// found), --recreate (create again; refused unless a fresh lookup finds
// nothing), --close REASON (end it failed, code MANUAL). --by NAME (default
// $USER) and --reason TEXT are recorded in the order's history;
// --dry-run says what would happen and does nothing; --wait D (default
// 30s) bounds the wait for a worker, after which the decision is dropped
// unanswered. Exit 0 when it took effect, 1 when refused (the answer says
// why), 2 for a usage error, no worker answering, or Redis trouble.
//
// # retry
//
// Re-runs an order's archived tasks (every step is idempotent), recorded
// like a review decision: same flags but the action.
//
// # cancel
//
// Asks the provider to cancel an order, possible only before payment:
// prints "<provider>/<id>: cancel requested", or
// "<provider>/<id>: not cancellable: <state>" for an order that is paid,
// shipped, delivered or ended.
//
// # list
//
// Prints the orders in the states asked for (--state, repeatable or
// comma-separated; default every state), newest entry into the state
// first, at most --limit (default 50): one line per order, "provider
// outOrderId state age error-code" (age: since it entered the state; "-"
// for no error). --since D keeps orders that entered their state within D.
// With --json, each record as one line of JSON. Answered from the
// per-state index, never a scan.
//
// # find
//
// Prints the order that owns a provider order id or a parcel tracking
// number, at either provider, as status does (--json likewise); an id no
// order owns exits 1.
//
// # Settings
//
// REDIS_URL (redis://, rediss:// or redis-sentinel://; unset:
// redis://127.0.0.1:6380, the embedded worker's Redis), overridden by
// --redis; ORDER_DEADLINE (a Go duration, default 720h), used by submit.
// The Redis password is never printed: URLs in messages are redacted.
//
// # Exit status
//
//	0  success: every order accepted or duplicate; status found every id;
//	   watch saw every order end; cancel requested
//	1  an order was invalid or the batch unreadable; an id was not found or
//	   ambiguous (find: no order owns it); not cancellable; interrupted
//	2  Redis could not be reached, or failed mid-way; a bad setting
//	   (REDIS_URL, ORDER_DEADLINE) or a usage error
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit statuses of Main.
const (
	// ExitOK: everything asked was done.
	ExitOK = 0
	// ExitFailed: some order was invalid, not found, not cancellable, or
	// the command was interrupted.
	ExitFailed = 1
	// ExitUnavailable: Redis could not be reached or failed, a setting is
	// invalid, or the command line is wrong.
	ExitUnavailable = 2
)

// Getenv reads an environment variable (os.Getenv in production).
type Getenv func(string) string

// io bundles a command's standard streams.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

func (s stdio) errorf(format string, a ...any) {
	fmt.Fprintf(s.err, "enqueue: "+format+"\n", a...)
}

const usage = `usage:
  enqueue submit [-f FILE] [--json] [--redis URL]
  enqueue status [--json] [--provider P] [--redis URL] OUTORDERID...
  enqueue watch  [--interval D] [--provider P] [--redis URL] [OUTORDERID...]
  enqueue cancel [--provider P] [--by NAME] [--reason TEXT] [--redis URL] OUTORDERID
  enqueue list   [--state S]... [--provider P] [--since D] [--limit N] [--json] [--redis URL]
  enqueue find   [--json] [--redis URL] ID
  enqueue review (--recheck | --attach ID[,ID...] | --recreate | --close REASON) [--by NAME] [--reason TEXT] [--dry-run] OUTORDERID
  enqueue retry  [--by NAME] [--reason TEXT] [--dry-run] OUTORDERID
  enqueue cancel also takes --by NAME and --reason TEXT (recorded).
An OUTORDERID may be written PROVIDER/OUTORDERID.
Settings: REDIS_URL (default redis://127.0.0.1:6380), ORDER_DEADLINE (default 720h).
Exit status: 0 done, 1 invalid/not found/not cancellable/interrupted, 2 Redis or settings trouble.
`

// Main runs the enqueue command with args (without the program name) and
// returns its exit status (ExitOK, ExitFailed, ExitUnavailable). Settings
// are read with getenv. ctx ends the command early (an interrupt).
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	s := stdio{in: stdin, out: stdout, err: stderr}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return ExitUnavailable
	}
	cmd, rest := args[0], args[1:]
	var run func(context.Context, stdio, []string, Getenv) int
	switch cmd {
	case "submit":
		run = runSubmit
	case "status":
		run = runStatus
	case "watch":
		run = runWatch
	case "cancel":
		run = runCancel
	case "list":
		run = runList
	case "find":
		run = runFind
	case "review":
		run = runReview
	case "retry":
		run = runRetry
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return ExitOK
	default:
		s.errorf("unknown command %q", cmd)
		fmt.Fprint(stderr, usage)
		return ExitUnavailable
	}
	return run(ctx, s, rest, getenv)
}

// errHelp is returned by parseFlags when -h was asked for.
var errHelp = flag.ErrHelp

// newFlags returns a flag set for a subcommand, with the --redis flag every
// subcommand has.
func newFlags(s stdio, name, synopsis string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(s.err)
	fs.Usage = func() {
		fmt.Fprintf(s.err, "usage: enqueue %s %s\n", name, synopsis)
		fs.PrintDefaults()
	}
	redisURL := fs.String("redis", "", "Redis URL (overrides REDIS_URL)")
	return fs, redisURL
}

// parseFlags parses args, allowing flags after positional arguments, and
// returns the positional ones. The status to exit with is set when parsing
// fails (ExitOK for -h).
func parseFlags(fs *flag.FlagSet, args []string) (pos []string, exit int, ok bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, errHelp) {
				return nil, ExitOK, false
			}
			return nil, ExitUnavailable, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, 0, true
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), 0, true
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// oneLine makes a message safe for a line-oriented output.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '\n', '\r', '\t':
			return ' '
		}
		return r
	}, s)
}
