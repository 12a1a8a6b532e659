package sim

import (
	"fmt"
	"math"

	"golang.org/x/time/rate"

	"orderflow/providers"
)

// Quota is a provider's request quota: a token bucket refilled at Rate
// requests per wall second holding at most Burst. Rate 0 means unlimited;
// Burst 0 means max(1, ceil(Rate)).
type Quota struct {
	Rate  float64
	Burst int
}

// quotas holds one limiter per limited provider; a provider absent from it
// is unlimited and costs nothing.
type quotas map[string]*rate.Limiter

func newQuotas(cfg map[string]Quota) (quotas, error) {
	q := quotas{}
	for name, c := range cfg {
		if !providers.Known(name) {
			return nil, fmt.Errorf("sim: Config.Quota[%q]: unknown provider (one of %v)", name, providers.Names)
		}
		if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
			return nil, fmt.Errorf("sim: Config.Quota[%q].Rate: must be a finite number >= 0, got %v", name, c.Rate)
		}
		if c.Burst < 0 {
			return nil, fmt.Errorf("sim: Config.Quota[%q].Burst: must be >= 0, got %d", name, c.Burst)
		}
		if c.Rate == 0 {
			continue
		}
		b := c.Burst
		if b == 0 {
			b = max(1, int(math.Ceil(c.Rate)))
		}
		q[name] = rate.NewLimiter(rate.Limit(c.Rate), b)
	}
	return q, nil
}

// allow takes one request from provider's bucket (wall time).
func (q quotas) allow(provider string) bool {
	l := q[provider]
	return l == nil || l.Allow()
}
