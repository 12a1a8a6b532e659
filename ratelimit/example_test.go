package ratelimit_test

import (
	"context"
	"fmt"
	"time"

	"orderflow/ratelimit"
)

func ExampleNewLocal() {
	ctx := context.Background()
	lim := ratelimit.NewLocal(map[string]ratelimit.Quota{
		"xportcn": {Rate: 2, Burst: 2}, // 2 requests per second, 2 at once
	})
	for i := 0; i < 3; i++ {
		wait, err := lim.Take(ctx, "xportcn")
		if err != nil {
			panic(err)
		}
		fmt.Printf("take %d: wait %v\n", i+1, wait.Round(100*time.Millisecond))
	}

	// The provider answered "too many requests, retry in 5s".
	if err := lim.Throttle(ctx, "xportcn", 5*time.Second); err != nil {
		panic(err)
	}
	wait, _ := lim.Take(ctx, "xportcn")
	fmt.Printf("throttled: wait %v\n", wait.Round(time.Second))

	wait, _ = lim.Take(ctx, "depal") // no quota: unlimited
	fmt.Printf("depal: wait %v\n", wait)
	// Output:
	// take 1: wait 0s
	// take 2: wait 0s
	// take 3: wait 500ms
	// throttled: wait 5s
	// depal: wait 0s
}

// Workers sharing a provider quota of 50 requests/s with a burst of 10 run
// at the same rate with a smaller burst, so requests granted 20 ms apart
// but delivered unevenly never reach the provider over its bucket.
func ExampleHeadroom() {
	fmt.Printf("%+v\n", ratelimit.Headroom(ratelimit.Quota{Rate: 50, Burst: 10}))
	fmt.Printf("%+v\n", ratelimit.Headroom(ratelimit.Quota{Rate: 10, Burst: 4}))
	fmt.Printf("%+v\n", ratelimit.Headroom(ratelimit.Quota{Rate: 100, Burst: 5}))
	// Output:
	// {Rate:50 Burst:5}
	// {Rate:10 Burst:3}
	// {Rate:100 Burst:1}
}
