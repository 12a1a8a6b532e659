package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/redis/go-redis/v9"

	"orderflow/internal/orders"
)

// notifyLockPrefix + provider + ":" + outOrderId is the key held while one
// callback of the order is being delivered: two notify tasks of one order
// (one per history length) never POST at the same time, from any pod.
const notifyLockPrefix = "orderflow:notify:lock:"

// notifyLockTTL bounds how long a delivery holds the lock if its worker
// dies mid-POST: above the callback client's timeout.
const notifyLockTTL = 15 * time.Second

// notifyBusyWait is how long a delivery that found the lock held waits
// before it tries again (a deferral: not a failed attempt).
const notifyBusyWait = time.Second

// unlockScript deletes the lock only if it still holds our token.
var unlockScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0`)

// lockNotify takes the order's delivery lock (SET NX PX). ok is false
// when another delivery holds it; release gives it back (compare and
// delete, so a lock that expired and was taken by another is left alone).
func lockNotify(ctx context.Context, rdb redis.UniversalClient, k orders.Key) (release func(), ok bool, err error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	key := notifyLockPrefix + k.Provider + ":" + k.OutOrderID
	ok, err = rdb.SetNX(ctx, key, token, notifyLockTTL).Result()
	if err != nil || !ok {
		return nil, false, err
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = unlockScript.Run(ctx, rdb, []string{key}, token).Err()
	}, true, nil
}
