package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"orderflow/internal/redistest"
)

// stableNames are the figures issue 13 names; scripts read them.
var stableNames = []string{"overhead_ratio", "latency_p50_ms", "latency_p99_ms", "memory_inflight_bytes",
	"memory_ended_bytes", "roundtrips_to_created", "roundtrips_per_poll", "quota_use", "quota_violations",
	"isolation_ratio", "idle_redis_cmds_per_s"}

// TestJSONStableNames: -json prints one object holding every stable name,
// the figures of the scenarios that ran, and null for the others.
func TestJSONStableNames(t *testing.T) {
	r := &Report{
		Ran:         map[string]bool{"overhead": true, "latency": true, "memory": true, "roundtrips": true, "idle": true},
		PipelineTPS: 3000, NoopTPS: 6000,
		Latency:    Percentiles{N: 100, P50: 12 * time.Millisecond, P99: 40 * time.Millisecond},
		Memory:     []MemoryResult{{ListpackValue: 64, InFlight: 1900, Ended: 1400}, {ListpackValue: 4096, InFlight: 1200, Ended: 900}},
		RoundTrips: &RoundTripResult{ToCreated: Cost{RoundTrips: 9.5}, PerPoll: Cost{RoundTrips: 2.5}},
		Idle:       []IdleResult{{TaskCheckInterval: 20 * time.Millisecond, CmdsPerSec: 420, RedisCPU: 0.009}},
	}
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != 1 {
		t.Fatalf("%d lines, want one object on one line:\n%s", n, buf.String())
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	for _, name := range stableNames {
		if _, ok := got[name]; !ok {
			t.Errorf("no %q in %s", name, buf.String())
		}
	}
	want := map[string]any{"overhead_ratio": 0.5, "latency_p50_ms": 12.0, "latency_p99_ms": 40.0,
		"memory_inflight_bytes": 1900.0, "memory_ended_bytes": 1400.0, "memory_ended_bytes_listpack4096": 900.0,
		"roundtrips_to_created": 9.5, "roundtrips_per_poll": 2.5, "idle_redis_cmds_per_s": 420.0,
		"quota_use": nil, "quota_violations": nil, "isolation_ratio": nil}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

// TestTargets: each figure is judged against issue 13's goal.
func TestTargets(t *testing.T) {
	r := &Report{
		Ran:     map[string]bool{"latency": true, "memory": true},
		Latency: Percentiles{P50: 20 * time.Millisecond, P99: 101 * time.Millisecond},
		Memory:  []MemoryResult{{InFlight: 2048, Ended: 1537}},
	}
	met := map[string]bool{}
	for _, tg := range r.Targets() {
		met[tg.Name] = tg.Met
	}
	want := map[string]bool{"latency_p50_ms": true, "latency_p99_ms": false, "memory_inflight_bytes": true, "memory_ended_bytes": false}
	if len(met) != len(want) {
		t.Errorf("targets %v, want only those of the scenarios run: %v", met, want)
	}
	for k, v := range want {
		if met[k] != v {
			t.Errorf("%s met = %v, want %v", k, met[k], v)
		}
	}
}

// TestRoundTripsCounted: the hook counts what a client waits for: a
// command once, a pipeline or a transaction once whatever its length.
func TestRoundTripsCounted(t *testing.T) {
	m := miniredis.RunT(t)
	rt := newRoundTrips()
	rdb := countedConn{addr: m.Addr(), rt: rt}.MakeRedisClient().(*redis.Client)
	defer rdb.Close()
	ctx := context.Background()
	rdb.Set(ctx, "a", 1, 0)
	rdb.Get(ctx, "a")
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for range 5 {
			p.Incr(ctx, "b")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, "c")
		p.Incr(ctx, "c")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n := rt.count(); n != 4 {
		t.Errorf("%d round trips, want 4 (set, get, a pipeline, a transaction): %v", n, rt.top(10))
	}
}

// TestProcessCPU: a process's CPU time grows while it computes.
func TestProcessCPU(t *testing.T) {
	c0, err := processCPU(os.Getpid())
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	// Compute until the reading has grown by a tenth of a second (on a
	// busy machine this process gets a fraction of the wall time).
	var c1 float64
	for end := time.Now().Add(20 * time.Second); c1-c0 < 0.1 && time.Now().Before(end); {
		for spin := time.Now().Add(50 * time.Millisecond); time.Now().Before(spin); {
		}
		if c1, err = processCPU(os.Getpid()); err != nil {
			t.Fatal(err)
		}
	}
	if c1-c0 < 0.1 {
		t.Errorf("CPU grew %.2fs over 20s of computing, want at least 0.1s", c1-c0)
	}
}

func TestShapeOf(t *testing.T) {
	for in, want := range map[string]string{
		"orderflow:order:xportcn:ov-0001":        "orderflow:order:xportcn:*",
		"asynq:{orderflow:depal:poll}:t:4f1c-a2": "asynq:{orderflow:depal:poll}:t:*",
		"orderflow:events":                       "orderflow:events",
	} {
		if got := shapeOf(in); got != want {
			t.Errorf("shapeOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestServerStats: the readings of a real server count the commands run
// between them (a script's own included, the reading's INFO left out) and
// the memory they took; keyShapes sums MEMORY USAGE by key shape.
func TestServerStats(t *testing.T) {
	srv := redistest.Real(t)
	e := &env{rdb: redis.NewClient(&redis.Options{Addr: srv.Addr})}
	defer e.rdb.Close()
	ctx := context.Background()
	before, err := e.stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		e.rdb.HSet(ctx, fmt.Sprintf("orderflow:order:depal:o-%d", i), "v", 1, "doc", strings.Repeat("x", 1000))
	}
	e.rdb.Eval(ctx, "redis.call('SET', KEYS[1], 1); return redis.call('GET', KEYS[1])", []string{"k"})
	after, err := e.stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cmds, _, mem, _ := before.delta(after)
	if cmds != 13 {
		t.Errorf("%d commands, want 13 (10 HSET, EVAL, its SET and GET)", cmds)
	}
	if mem < 10_000 {
		t.Errorf("memory grew %d B, want at least the 10 kB written", mem)
	}
	shapes, err := e.keyShapes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range shapes {
		if s.Shape == "orderflow:order:depal:*" {
			found = true
			if s.Keys != 10 || s.Bytes < 10_000 || s.Type != "hash" || s.Encoding != "hashtable" {
				t.Errorf("shape %+v, want 10 hashtable hashes of at least 10 kB", s)
			}
		}
	}
	if !found {
		t.Errorf("no shape orderflow:order:depal:* in %+v", shapes)
	}
}

// TestOnlyUnknownScenario: -only with a name that is no scenario is
// refused before anything starts, naming it and the scenarios there are.
func TestOnlyUnknownScenario(t *testing.T) {
	_, err := Run(context.Background(), Options{Only: "memory,bogus"})
	if err == nil || !strings.Contains(err.Error(), `no scenario "bogus" (have quota,overhead,latency,isolation,memory,roundtrips,idle)`) {
		t.Fatalf("Run = %v, want the refusal of bogus", err)
	}
}
