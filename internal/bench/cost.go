package bench

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"orderflow/internal/app"
	"orderflow/internal/gate"
	"orderflow/internal/testkit"
	"orderflow/providers"
	"orderflow/providers/sim"
	"orderflow/ratelimit"
)

// memoryOrders is how many orders each memory measurement writes (half
// per provider): enough that a few kilobytes of the server's own noise are
// under a byte per order.
const memoryOrders = 2000

// memoryWarmup is how many orders the memory scenario writes first, and
// does not count.
const memoryWarmup = 200

// ListpackValue is the hash-max-listpack-value the memory scenario
// measures against the server's default (64).
const ListpackValue = 4096

// MemoryResult is the Redis memory per order of one server configuration.
type MemoryResult struct {
	// ListpackValue is the server's hash-max-listpack-value.
	ListpackValue int
	// Orders measured in each state.
	Orders int
	// InFlight: bytes of used_memory per created order whose poll is
	// scheduled (an hour out), asynq's task included. Ended: per order
	// completed and retained, its events included.
	InFlight, Ended float64
	// RecordEncoding is the type and OBJECT ENCODING of an order record
	// ("string raw"; "hash hashtable" or "hash listpack" in the previous
	// release's form).
	RecordEncoding string
}

// memory: used_memory per order, in flight and ended, with the server's
// default hash-max-listpack-value and with ListpackValue.
func (e *env) memory(ctx context.Context, rep *Report) error {
	def, err := e.rdb.ConfigGet(ctx, "hash-max-listpack-value").Result()
	if err != nil {
		return err
	}
	orig := def["hash-max-listpack-value"]
	n, err := strconv.Atoi(orig)
	if err != nil {
		return fmt.Errorf("CONFIG GET hash-max-listpack-value: %q", orig)
	}
	defer e.rdb.ConfigSet(context.WithoutCancel(ctx), "hash-max-listpack-value", orig)
	// A server's first orders pay for what it allocates once (about
	// 600 KB on a fresh redis-server: 300 B more per order of the first
	// measurement when the scenario runs first, as with -only memory);
	// an order at scale does not.
	if _, _, err := e.memoryPerOrder(ctx, "mw", memoryWarmup, false); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	for _, lp := range []int{n, ListpackValue} {
		if err := e.rdb.ConfigSet(ctx, "hash-max-listpack-value", strconv.Itoa(lp)).Err(); err != nil {
			return err
		}
		r := MemoryResult{ListpackValue: lp, Orders: memoryOrders}
		if r.InFlight, r.RecordEncoding, err = e.memoryPerOrder(ctx, fmt.Sprintf("mi%d", lp), memoryOrders, false); err != nil {
			return fmt.Errorf("in flight, hash-max-listpack-value %d: %w", lp, err)
		}
		if r.Ended, _, err = e.memoryPerOrder(ctx, fmt.Sprintf("me%d", lp), memoryOrders, true); err != nil {
			return fmt.Errorf("ended, hash-max-listpack-value %d: %w", lp, err)
		}
		e.log.Info("memory per order", "hash_max_listpack_value", lp, "in_flight_bytes", r.InFlight, "ended_bytes", r.Ended,
			"record_encoding", r.RecordEncoding)
		rep.Memory = append(rep.Memory, r)
	}
	return nil
}

// memoryPerOrder writes n orders through the real pipeline on an emptied
// server and answers used_memory's growth per order: in flight (created,
// the next poll an hour out) or ended (completed, retained).
func (e *env) memoryPerOrder(ctx context.Context, prefix string, n int, ended bool) (float64, string, error) {
	if err := e.flush(ctx); err != nil {
		return 0, "", err
	}
	// In flight: the simulator's clock at wall speed, so the orders stay
	// created; ended: at 3600x, so they complete within seconds.
	cfg := sim.Config{Clock: sim.NewAccelClock(1)}
	if ended {
		cfg = sim.Config{}
	}
	s, err := startSim(cfg)
	if err != nil {
		return 0, "", err
	}
	defer s.Close()
	x, d, err := clients(s)
	if err != nil {
		return 0, "", err
	}
	before, err := e.stats(ctx)
	if err != nil {
		return 0, "", err
	}
	reqs := append(normalOrders(prefix, providers.Xportcn, n/2), normalOrders(prefix, providers.Depal, n/2)...)
	if err := e.submit(ctx, reqs); err != nil {
		return 0, "", err
	}
	poll := []time.Duration{time.Hour}
	if ended {
		poll = []time.Duration{100 * time.Millisecond, 300 * time.Millisecond}
	}
	cnt := &taskCounter{}
	w, err := e.startWorker(map[string]providers.Provider{
		providers.Xportcn: gate.Wrap(x, gate.Config{}), providers.Depal: gate.Wrap(d, gate.Config{})}, cnt, poll)
	if err != nil {
		return 0, "", err
	}
	done := func() bool { return cnt.xCreated.Load()+cnt.dCreated.Load() >= int64(len(reqs)) }
	if ended {
		done = func() bool { return cnt.completed.Load() >= int64(len(reqs)) }
	}
	err = testkit.Poll(ctx, 3*time.Minute, done)
	w.Shutdown() // its server keys go; its counters stay (a few keys per queue)
	if err != nil {
		return 0, "", fmt.Errorf("%d created, %d completed of %d: %w", cnt.xCreated.Load()+cnt.dCreated.Load(), cnt.completed.Load(), len(reqs), err)
	}
	after, err := e.stats(ctx)
	if err != nil {
		return 0, "", err
	}
	_, _, mem, _ := before.delta(after)
	shapes, err := e.keyShapes(ctx)
	if err != nil {
		return 0, "", err
	}
	enc := ""
	for _, sh := range shapes {
		if strings.HasPrefix(sh.Shape, "orderflow:order:") {
			enc = sh.Type + " " + sh.Encoding
		}
	}
	e.log.Info("memory by key shape", "ended", ended, "orders", len(reqs), "shapes", fmtShapes(shapes, len(reqs)))
	return float64(mem) / float64(len(reqs)), enc, nil
}

// keyShape is the keys of one shape (their name with every part holding a
// digit replaced by *): how many, their MEMORY USAGE, one's type and
// encoding.
type keyShape struct {
	Shape, Type, Encoding string
	Keys                  int
	Bytes                 int64
}

// keyShapes scans the server's keys and sums MEMORY USAGE by shape.
func (e *env) keyShapes(ctx context.Context) ([]keyShape, error) {
	by := map[string]*keyShape{}
	var cursor uint64
	for {
		keys, next, err := e.rdb.Scan(ctx, cursor, "*", 1000).Result()
		if err != nil {
			return nil, err
		}
		pipe := e.rdb.Pipeline()
		usage := make([]*redis.IntCmd, len(keys))
		for i, k := range keys {
			usage[i] = pipe.MemoryUsage(ctx, k, 0)
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, err
		}
		for i, k := range keys {
			sh := shapeOf(k)
			ks := by[sh]
			if ks == nil {
				ks = &keyShape{Shape: sh}
				ks.Type, _ = e.rdb.Type(ctx, k).Result()
				ks.Encoding, _ = e.rdb.ObjectEncoding(ctx, k).Result()
				by[sh] = ks
			}
			ks.Keys++
			ks.Bytes += usage[i].Val()
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	out := make([]keyShape, 0, len(by))
	for _, ks := range by {
		out = append(out, *ks)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Bytes > out[j].Bytes })
	return out, nil
}

// shapeOf replaces every part of a key name that holds a digit by *.
func shapeOf(key string) string {
	parts := strings.Split(key, ":")
	for i, p := range parts {
		if strings.ContainsAny(p, "0123456789") {
			parts[i] = "*"
		}
	}
	return strings.Join(parts, ":")
}

// fmtShapes lists the shapes holding at least a byte per order, in bytes
// per order.
func fmtShapes(shapes []keyShape, orders int) string {
	var b strings.Builder
	for _, s := range shapes {
		per := float64(s.Bytes) / float64(orders)
		if per < 1 {
			continue
		}
		fmt.Fprintf(&b, "%s (%s %s, %d keys): %.0f B; ", s.Shape, s.Type, s.Encoding, s.Keys, per)
	}
	return strings.TrimSuffix(b.String(), "; ")
}

// roundTripOrders is how many orders the round-trip scenario submits and
// creates; pollOrders how many it keeps in flight, polled every
// pollStep, through pollWindow.
const (
	roundTripOrders = 400
	pollOrders      = 200
	pollStep        = time.Second
	pollWindow      = 10 * time.Second
)

// RoundTripResult is what a step costs in Redis.
type RoundTripResult struct {
	// ToCreated: from submit to created, per order (the submitter's and
	// the worker's); PerPoll: per poll run of an order in flight, the
	// worker's dequeues (empty ones too), forwards and heartbeats of the
	// window included.
	ToCreated, PerPoll Cost
	// Top lists the commonest round trips from submit to created, per
	// order, for the log.
	Top []string
}

// Cost is one step's Redis cost.
type Cost struct {
	// RoundTrips: commands or pipelines a client sent and waited for.
	RoundTrips float64
	// Commands: commands the server ran (total_commands_processed), those
	// run by scripts included.
	Commands float64
	// CPU: the server's CPU time.
	CPU time.Duration
}

// roundTrips: Redis round trips, commands and server CPU from submit to
// created, and per poll run, counted on the clients (a go-redis hook on
// the submitter's and the worker's clients, and the Redis limiter's) and
// on the server (INFO). The Redis limiter is in place (quota far above
// the load) as in production; the simulator answers at once.
func (e *env) roundTrips(ctx context.Context, rep *Report) error {
	s, err := startSim(sim.Config{Clock: sim.NewAccelClock(1)}) // nothing moves after created
	if err != nil {
		return err
	}
	defer s.Close()

	var res RoundTripResult
	// Submit to created.
	sub, wrk := newRoundTrips(), newRoundTrips()
	cnt := &taskCounter{}
	before, err := e.stats(ctx)
	if err != nil {
		return err
	}
	calls0, err := e.commandCalls(ctx)
	if err != nil {
		return err
	}
	if err := e.countedSubmit(ctx, sub, normalOrders("rt", providers.Xportcn, roundTripOrders/2), normalOrders("rt", providers.Depal, roundTripOrders/2)); err != nil {
		return err
	}
	w, err := e.countedWorker(s, wrk, cnt, []time.Duration{time.Hour})
	if err != nil {
		return err
	}
	err = testkit.Poll(ctx, 2*time.Minute, func() bool { return cnt.xCreated.Load()+cnt.dCreated.Load() >= roundTripOrders })
	w.Shutdown()
	if err != nil {
		return fmt.Errorf("to created: %d of %d: %w", cnt.xCreated.Load()+cnt.dCreated.Load(), roundTripOrders, err)
	}
	calls1, err := e.commandCalls(ctx)
	if err != nil {
		return err
	}
	after, err := e.stats(ctx)
	if err != nil {
		return err
	}
	cmds, cpu, _, _ := before.delta(after)
	cmds -= 2 // the two INFO commandstats
	e.log.Info("server commands to created", "top_per_order", topCalls(calls0, calls1, roundTripOrders, "/order", 16))
	// The first polls run while other orders are still being created:
	// their round trips are not the cost to created (the per-poll figure
	// below is theirs), and are left out; their commands and CPU on the
	// server cannot be told apart and stay in.
	res.ToCreated = Cost{
		RoundTrips: float64(sub.count()+wrk.count()-wrk.polling.Load()) / roundTripOrders,
		Commands:   float64(cmds) / roundTripOrders,
		CPU:        time.Duration(cpu / roundTripOrders * float64(time.Second)),
	}
	res.Top = append(perOrder(sub.top(8), "submit ", roundTripOrders), perOrder(wrk.top(12), "worker ", roundTripOrders)...)
	e.log.Info("round trips to created", "per_order", res.ToCreated.RoundTrips, "commands", res.ToCreated.Commands,
		"submit", sub.count(), "worker", wrk.count(), "first_polls_left_out", wrk.polling.Load(), "polls", cnt.poll.Load(),
		"top", strings.Join(res.Top, "; "))

	// Per poll run: orders in flight polled every pollStep.
	if err := e.flush(ctx); err != nil {
		return err
	}
	sub, wrk, cnt = newRoundTrips(), newRoundTrips(), &taskCounter{}
	if err := e.countedSubmit(ctx, sub, normalOrders("rp", providers.Xportcn, pollOrders/2), normalOrders("rp", providers.Depal, pollOrders/2)); err != nil {
		return err
	}
	w, err = e.countedWorker(s, wrk, cnt, []time.Duration{pollStep})
	if err != nil {
		return err
	}
	defer w.Shutdown()
	if err := testkit.Poll(ctx, 2*time.Minute, func() bool { return cnt.xCreated.Load()+cnt.dCreated.Load() >= pollOrders }); err != nil {
		return fmt.Errorf("poll: %d of %d created: %w", cnt.xCreated.Load()+cnt.dCreated.Load(), pollOrders, err)
	}
	if err := sleep(ctx, 2*pollStep); err != nil { // every order in its poll loop
		return err
	}
	rt0, polls0, names0 := wrk.count(), cnt.poll.Load(), wrk.snapshot()
	before, err = e.stats(ctx)
	if err != nil {
		return err
	}
	if err := sleep(ctx, pollWindow); err != nil {
		return err
	}
	rt1, polls1 := wrk.count(), cnt.poll.Load()
	after, err = e.stats(ctx)
	if err != nil {
		return err
	}
	polls := polls1 - polls0
	if polls == 0 {
		return errors.New("poll: no poll ran in the window")
	}
	cmds, cpu, _, _ = before.delta(after)
	res.PerPoll = Cost{
		RoundTrips: float64(rt1-rt0) / float64(polls),
		Commands:   float64(cmds) / float64(polls),
		CPU:        time.Duration(cpu / float64(polls) * float64(time.Second)),
	}
	e.log.Info("round trips per poll", "polls", polls, "per_poll", res.PerPoll.RoundTrips, "commands", res.PerPoll.Commands,
		"top", strings.Join(perOrder(wrk.topSince(names0, 12), "", int(polls)), "; "))
	rep.RoundTrips = &res
	return nil
}

// perOrder turns top's counts into counts per n, with a prefix.
func perOrder(top []string, prefix string, n int) []string {
	out := make([]string, len(top))
	for i, t := range top {
		k := strings.LastIndexByte(t, ' ')
		c, _ := strconv.ParseFloat(t[k+1:], 64)
		out[i] = fmt.Sprintf("%s%s %.2f", prefix, t[:k], c/float64(n))
	}
	return out
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// countedSubmit submits orders through a client counting its round trips.
func (e *env) countedSubmit(ctx context.Context, rt *roundTrips, batches ...[]providers.OrderRequest) error {
	rdb := countedConn{addr: e.addr, rt: rt}.MakeRedisClient().(*redis.Client)
	defer rdb.Close()
	var reqs []providers.OrderRequest
	for _, b := range batches {
		reqs = append(reqs, b...)
	}
	return submitOn(ctx, rdb, reqs)
}

// countedWorker starts an in-process worker whose Redis client (the
// worker's, which its Redis limiter shares) counts its round trips in rt.
func (e *env) countedWorker(s *sim.Sim, rt *roundTrips, cnt *taskCounter, poll []time.Duration) (*app.Worker, error) {
	x, d, err := clients(s)
	if err != nil {
		return nil, err
	}
	// The limiter runs on the worker's client, as in the worker command;
	// rt counts what it sends: its hook goes after the worker's own
	// (which answer some dequeues and completions without sending them,
	// and coalesce the rest).
	rdb := redis.NewClient(&redis.Options{Addr: e.addr})
	q := ratelimit.Quota{Rate: 1000, Burst: 10_000}
	lim := ratelimit.NewRedis(rdb, map[string]ratelimit.Quota{providers.Xportcn: q, providers.Depal: q})
	g := gate.Config{Limiter: lim}
	w, err := e.startWorkerOn(rdb, []redis.Hook{rt}, map[string]providers.Provider{
		providers.Xportcn: gate.Wrap(x, g), providers.Depal: gate.Wrap(d, g)}, cnt, poll)
	if err != nil {
		rdb.Close()
		return nil, err
	}
	return w, nil
}
