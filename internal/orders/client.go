package orders

import "github.com/redis/go-redis/v9"

// Client is the store's Redis client, for the small helpers that keep
// their own short-lived keys next to the records (the callback delivery
// lock of package pipeline, the push budget of the admin listener).
func (s *Store) Client() redis.UniversalClient { return s.rdb }
