package providers

import "context"

type beforeSendKey struct{}

// WithBeforeSend returns a context that carries fn: whatever stands between
// a caller and the provider (a rate limit, a breaker) calls it through
// BeforeSend once the call is let out, right before the request is sent,
// and sends nothing when fn fails. The pipeline records a create attempt
// this way, after its quota and breaker wait and not before.
func WithBeforeSend(ctx context.Context, fn func(context.Context) error) context.Context {
	return context.WithValue(ctx, beforeSendKey{}, fn)
}

// BeforeSend calls the function WithBeforeSend put in ctx, if any.
func BeforeSend(ctx context.Context) error {
	if fn, ok := ctx.Value(beforeSendKey{}).(func(context.Context) error); ok && fn != nil {
		return fn(ctx)
	}
	return nil
}
