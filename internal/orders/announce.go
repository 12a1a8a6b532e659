package orders

import (
	"context"

	"orderflow/internal/wake"
)

// Announce tells idle workers that queue has a task pending (package
// wake), on the store's Redis.
func (s *Store) Announce(ctx context.Context, queue string) error {
	return wake.Announce(ctx, s.rdb, queue)
}
