package app

import (
	"errors"
	"net/http"

	"orderflow/internal/intake"
	"orderflow/internal/pipeline"
)

// submitHandler is POST /v1/orders: a JSON array, one object, or NDJSON,
// answered with an array of intake.Result (the objects of `enqueue submit
// --json`), one per order. 200 when every order was accepted or a
// duplicate, 422 when any was invalid or a conflict (the others are still
// taken), 400 for a body that cannot be read as orders, 413 when too
// large. When Redis fails, the order it failed on and every later one are
// answered "unavailable" (submit them again; the ones before keep their
// answers): then 503 when no order was recorded, else 207, both with
// Retry-After. Submitting the batch again is safe: the recorded orders
// answer duplicate.
func submitHandler(w *Worker) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		entries, err := intake.Decode(http.MaxBytesReader(rw, r.Body, maxOrdersBody), maxOrders)
		var tooBig *http.MaxBytesError
		switch {
		case errors.Is(err, intake.ErrTooMany) || errors.Is(err, intake.ErrTooLarge) || errors.As(err, &tooBig):
			writeJSON(rw, http.StatusRequestEntityTooLarge, map[string]string{"error": err.Error()})
			return
		case err != nil:
			writeJSON(rw, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		case len(entries) == 0:
			writeJSON(rw, http.StatusBadRequest, map[string]string{"error": "no orders in the body"})
			return
		}
		var (
			out                   = make([]intake.Result, 0, len(entries))
			unavailable, recorded int
			refused               bool
			pol                   = w.CallbackPolicy()
		)
		for _, e := range entries {
			var res intake.Result
			if unavailable == 0 {
				res, err = intake.Submit(r.Context(), w.Store(), w.Client(), w.Inspector(), e, pol)
			}
			if unavailable > 0 || err != nil {
				res = intake.UnavailableResult(e, "redis unavailable")
				unavailable++
			}
			switch res.Outcome {
			case pipeline.Accepted, pipeline.Duplicate:
				recorded++
			case pipeline.Invalid, pipeline.Conflict:
				refused = true
			}
			out = append(out, res)
		}
		status := http.StatusOK
		switch {
		case unavailable > 0 && recorded == 0:
			status = http.StatusServiceUnavailable
		case unavailable > 0:
			status = http.StatusMultiStatus
		case refused:
			status = http.StatusUnprocessableEntity
		}
		if unavailable > 0 {
			rw.Header().Set("Retry-After", "1")
		}
		writeJSON(rw, status, out)
	})
}
