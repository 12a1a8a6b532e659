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
