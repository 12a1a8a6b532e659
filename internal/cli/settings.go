package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"orderflow/internal/orders"
	"orderflow/internal/redact"
)

// DefaultRedisURL is the Redis used when REDIS_URL is unset: the embedded
// worker's.
const DefaultRedisURL = "redis://127.0.0.1:6380"

// Timeouts of the Redis connection: a command line tool should say soon
// that Redis cannot be reached rather than hang.
const (
	dialTimeout = 3 * time.Second
	ioTimeout   = 5 * time.Second
	pingTimeout = 5 * time.Second
)

// SettingError is a setting (an environment variable or its flag) that is
// wrong.
type SettingError struct {
	// Name is the variable, e.g. ORDER_DEADLINE.
	Name string
	// Reason says what is wrong; it never holds a password.
	Reason string
}

func (e *SettingError) Error() string { return e.Name + ": " + e.Reason }

// settings are the command's settings, validated.
type settings struct {
	// redisURL is the redacted URL, for messages.
	redisURL string
	redis    asynq.RedisConnOpt
}

// loadSettings reads the settings; flagRedis, when not empty, overrides
// REDIS_URL.
func loadSettings(getenv Getenv, flagRedis string) (settings, error) {
	var s settings
	raw, name := getenv("REDIS_URL"), "REDIS_URL"
	if flagRedis != "" {
		raw, name = flagRedis, "--redis"
	}
	if raw == "" {
		raw = DefaultRedisURL
	}
	s.redisURL = redact.URL(raw)
	opt, err := asynq.ParseRedisURI(raw)
	if err != nil {
		return s, &SettingError{Name: name, Reason: fmt.Sprintf("cannot use %s: %s", s.redisURL, redact.URLIn(err.Error(), raw))}
	}
	s.redis = withTimeouts(opt)

	return s, nil
}

// withTimeouts sets short dial and I/O timeouts on the options asynq parsed.
func withTimeouts(opt asynq.RedisConnOpt) asynq.RedisConnOpt {
	switch o := opt.(type) {
	case asynq.RedisClientOpt:
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = dialTimeout, ioTimeout, ioTimeout
		return o
	case asynq.RedisFailoverClientOpt:
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = dialTimeout, ioTimeout, ioTimeout
		return o
	case asynq.RedisClusterClientOpt:
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = dialTimeout, ioTimeout, ioTimeout
		return o
	}
	return opt
}

// conn is an open connection to Redis.
type conn struct {
	rdb    redis.UniversalClient
	store  *orders.Store
	client *asynq.Client
	insp   *asynq.Inspector
	url    string
}

// connect opens the connection and checks Redis answers PING; the error
// is the PING's.
func connect(ctx context.Context, s settings) (*conn, error) {
	rdb, ok := s.redis.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, errors.New("not a go-redis client")
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, err
	}
	return &conn{
		rdb:    rdb,
		store:  orders.NewStore(rdb, orders.Config{}),
		client: asynq.NewClientFromRedisClient(rdb),
		insp:   asynq.NewInspectorFromRedisClient(rdb),
		url:    s.redisURL,
	}, nil
}

// Close closes the connection.
func (c *conn) Close() {
	_ = c.client.Close()
	_ = c.rdb.Close()
}

// setup loads the settings and connects, reporting any problem; ok is
// false (and exit the status) when the command cannot go on.
func setup(ctx context.Context, s stdio, getenv Getenv, flagRedis string) (c *conn, cfg settings, exit int, ok bool) {
	cfg, err := loadSettings(getenv, flagRedis)
	if err != nil {
		s.errorf("%v", err)
		return nil, cfg, ExitUnavailable, false
	}
	c, err = connect(ctx, cfg)
	if err != nil && ctx.Err() != nil {
		s.errorf("interrupted")
		return nil, cfg, ExitFailed, false
	}
	if err != nil {
		s.errorf("cannot reach Redis at %s: %v", cfg.redisURL, err)
		return nil, cfg, ExitUnavailable, false
	}
	return c, cfg, 0, true
}
