package bench

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"orderflow/tasks"
)

// roundTrips is a go-redis hook counting round trips: a command, or a
// pipeline (or MULTI/EXEC transaction) of commands, sent and answered. A
// script is one round trip (EVALSHA), two when Redis did not know it yet
// (EVALSHA answered NOSCRIPT, then EVAL). The handshake of a new
// connection (HELLO and CLIENT commands; orderflow sends no CLIENT
// command of its own) is not counted: a pool makes it once per connection,
// not per step.
//
// Round trips of polling (an order poll's or parcel trace's: sent by its
// handler, or asynq's scripts on a poll queue) are also counted apart, so
// that the cost to created can leave out the first polls that run while
// other orders are still being created.
type roundTrips struct {
	n, polling atomic.Int64
	mu         sync.Mutex
	byName     map[string]int64
}

func newRoundTrips() *roundTrips { return &roundTrips{byName: map[string]int64{}} }

func (c *roundTrips) add(ctx context.Context, name string) {
	c.n.Add(1)
	if id, ok := asynq.GetTaskID(ctx); ok && (strings.HasPrefix(id, tasks.TypePoll+":") || strings.HasPrefix(id, tasks.TypeTrack+":")) ||
		strings.Contains(name, ":"+tasks.KindPoll+"}:") {
		c.polling.Add(1)
	}
	c.mu.Lock()
	c.byName[name]++
	c.mu.Unlock()
}

// DialHook implements redis.Hook.
func (c *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (c *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() != "hello" && cmd.Name() != "client" {
			c.add(ctx, scriptName(cmd))
		}
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook.
func (c *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		names := make([]string, len(cmds))
		handshake := true
		for i, cmd := range cmds {
			names[i] = scriptName(cmd)
			handshake = handshake && names[i] == "client"
		}
		if !handshake {
			c.add(ctx, "pipeline("+strings.Join(names, ",")+")")
		}
		return next(ctx, cmds)
	}
}

// scriptName names a command for the log; a script by its first key's
// shape (ids and numbers as #), so that the log tells asynq's dequeue
// from orderflow's record write.
func scriptName(cmd redis.Cmder) string {
	name := cmd.Name()
	args := cmd.Args()
	if (name != "evalsha" && name != "eval") || len(args) < 4 || fmt.Sprint(args[2]) == "0" {
		return name
	}
	return name + "[" + keyIDs.ReplaceAllString(fmt.Sprint(args[3]), "#") + "]"
}

// keyIDs matches the parts of a key that differ between orders and tasks.
var keyIDs = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f-]{27}|[0-9]+`)

// count is the round trips so far.
func (c *roundTrips) count() int64 { return c.n.Load() }

// snapshot is the counts by name so far.
func (c *roundTrips) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]int64, len(c.byName))
	for k, v := range c.byName {
		m[k] = v
	}
	return m
}

// top lists the most frequent round trips, "name count" each, for the
// log: which commands an order costs.
func (c *roundTrips) top(n int) []string { return c.topSince(nil, n) }

// topSince is top counting from snapshot before.
func (c *roundTrips) topSince(before map[string]int64, n int) []string {
	counts := c.snapshot()
	names := make([]string, 0, len(counts))
	for k := range counts {
		if counts[k] -= before[k]; counts[k] > 0 {
			names = append(names, k)
		}
	}
	sort.Slice(names, func(i, j int) bool {
		if counts[names[i]] != counts[names[j]] {
			return counts[names[i]] > counts[names[j]]
		}
		return names[i] < names[j]
	})
	out := make([]string, 0, n)
	for _, k := range names[:min(n, len(names))] {
		out = append(out, fmt.Sprintf("%s %d", k, counts[k]))
	}
	return out
}

// countedConn is an asynq.RedisConnOpt whose clients count their round
// trips in rt: the submitter's. (The worker's client, shared by its asynq
// servers, client, inspector and Redis limiter, gets rt through
// app.Config.RedisHooks, after its own hooks.)
type countedConn struct {
	addr string
	rt   *roundTrips
}

// MakeRedisClient implements asynq.RedisConnOpt.
func (o countedConn) MakeRedisClient() any {
	rdb := redis.NewClient(&redis.Options{Addr: o.addr})
	rdb.AddHook(o.rt)
	return rdb
}

// serverStats is a reading of the redis-server's own counters.
type serverStats struct {
	// Commands is total_commands_processed: every command the server ran,
	// those a script ran included.
	Commands int64
	// CPU is used_cpu_user + used_cpu_sys, seconds of the server process.
	CPU float64
	// Memory is used_memory, bytes.
	Memory int64
	At     time.Time
}

// stats reads INFO stats, cpu and memory (one command: the next reading's
// Commands counts it, see since).
func (e *env) stats(ctx context.Context) (serverStats, error) {
	txt, err := e.rdb.Info(ctx, "stats", "cpu", "memory").Result()
	if err != nil {
		return serverStats{}, err
	}
	f := infoFields(txt)
	st := serverStats{At: time.Now()}
	var errs []string
	num := func(name string) float64 {
		v, err := strconv.ParseFloat(f[name], 64)
		if err != nil {
			errs = append(errs, name)
		}
		return v
	}
	st.Commands = int64(num("total_commands_processed"))
	st.CPU = num("used_cpu_user") + num("used_cpu_sys")
	st.Memory = int64(num("used_memory"))
	if len(errs) > 0 {
		return st, fmt.Errorf("INFO: no number in %s", strings.Join(errs, ", "))
	}
	return st, nil
}

// delta is what the server did from s to later: commands (without the
// reading's own INFO), CPU seconds, memory bytes, wall time.
func (s serverStats) delta(later serverStats) (cmds int64, cpu float64, mem int64, wall time.Duration) {
	return later.Commands - s.Commands - 1, later.CPU - s.CPU, later.Memory - s.Memory, later.At.Sub(s.At)
}

// infoFields parses INFO's "name:value" lines.
func infoFields(txt string) map[string]string {
	f := map[string]string{}
	for _, l := range strings.Split(txt, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok && !strings.HasPrefix(k, "#") {
			f[k] = v
		}
	}
	return f
}

// processCPU is the CPU seconds (user + system) process pid used so far,
// from /proc (Linux; USER_HZ is 100 on every Linux ABI).
func processCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	fs := strings.Fields(string(b[i+1:]))
	if len(fs) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fs))
	}
	// fs[0] is field 3 (state): utime is field 14, stime 15.
	utime, err1 := strconv.ParseInt(fs[11], 10, 64)
	stime, err2 := strconv.ParseInt(fs[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q, stime %q", pid, fs[11], fs[12])
	}
	return float64(utime+stime) / 100, nil
}

// commandCalls reads INFO commandstats: calls by command (scripts' own
// included).
func (e *env) commandCalls(ctx context.Context) (map[string]int64, error) {
	txt, err := e.rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for name, v := range infoFields(txt) {
		cmd, ok := strings.CutPrefix(name, "cmdstat_")
		calls, ok2 := strings.CutPrefix(v, "calls=")
		if !ok || !ok2 {
			continue
		}
		calls, _, _ = strings.Cut(calls, ",")
		if n, err := strconv.ParseInt(calls, 10, 64); err == nil {
			out[cmd] = n
		}
	}
	return out, nil
}

// topCalls lists the n commands called most from before to after, their
// calls divided by per and followed by unit, for the log.
func topCalls(before, after map[string]int64, per float64, unit string, n int) string {
	type kv struct {
		k string
		v int64
	}
	var d []kv
	for k, v := range after {
		if v-before[k] > 0 {
			d = append(d, kv{k, v - before[k]})
		}
	}
	sort.Slice(d, func(i, j int) bool { return d[i].v > d[j].v })
	var b strings.Builder
	for _, x := range d[:min(n, len(d))] {
		fmt.Fprintf(&b, "%s %.2f%s; ", x.k, float64(x.v)/per, unit)
	}
	return strings.TrimSuffix(b.String(), "; ")
}
