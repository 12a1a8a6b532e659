package app

import (
	"errors"
	"net/http"

	"orderflow/internal/intake"
	"orderflow/internal/pipeline"
)

// submitHandler is POST /v1/orders: a JSON array, one object, or NDJSON,
// answered with an array of intake.Result (the objects of `enqueue submit
// --json`). 200 when every order was accepted or a duplicate, 422 when any
// was invalid (the others are still taken), 400 for a body that cannot be
// read as orders, 413 when too large, 503 when Redis failed.
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
		status := http.StatusOK
		out := make([]intake.Result, 0, len(entries))
		for _, e := range entries {
			res, err := intake.Submit(r.Context(), w.Store(), w.Client(), w.Inspector(), e)
			if err != nil {
				writeJSON(rw, http.StatusServiceUnavailable, map[string]string{"error": "redis unavailable"})
				return
			}
			if res.Outcome == pipeline.Invalid || res.Outcome == pipeline.Conflict {
				status = http.StatusUnprocessableEntity
			}
			out = append(out, res)
		}
		writeJSON(rw, status, out)
	})
}
