package app

import (
	"encoding/json"
	"errors"
	"net/http"

	"orderflow/internal/orders"
	"orderflow/internal/pipeline"
	"orderflow/providers"
)

// maxDecisionBody bounds a decision's body.
const maxDecisionBody = 16 << 10

// reviewHandler is POST /v1/orders/{provider}/{outOrderId}/review: a
// person's decision (the body is a pipeline.Decision: action recheck,
// attach, recreate, close, retry or cancel, with by, reason, ids and
// dryRun), carried out at once by this worker. It answers the
// pipeline.Decided: 200 when the decision took effect (or, a dry run,
// would), 409 when it was refused in the order's present state (message
// says why), 400 for a malformed decision, 404 for an unknown order, 502
// when the provider did not answer, 503 when Redis failed.
func reviewHandler(w *Worker) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		k := orders.Key{Provider: r.PathValue("provider"), OutOrderID: r.PathValue("outOrderId")}
		if !providers.Known(k.Provider) || !providers.ValidOutOrderID(k.OutOrderID) {
			writeJSON(rw, http.StatusNotFound, map[string]string{"error": "no order " + k.String()})
			return
		}
		var d pipeline.Decision
		dec := json.NewDecoder(http.MaxBytesReader(rw, r.Body, maxDecisionBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&d); err != nil {
			writeJSON(rw, http.StatusBadRequest, map[string]string{"error": "decision: " + err.Error()})
			return
		}
		res, err := w.Handlers().Decide(r.Context(), k, d)
		switch {
		case errors.Is(err, pipeline.ErrDecision):
			writeJSON(rw, http.StatusBadRequest, map[string]string{"error": err.Error()})
		case errors.Is(err, orders.ErrNotFound):
			writeJSON(rw, http.StatusNotFound, map[string]string{"error": "no order " + k.String()})
		case errors.Is(err, pipeline.ErrProvider):
			writeJSON(rw, http.StatusBadGateway, map[string]string{"error": err.Error()})
		case err != nil:
			writeJSON(rw, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		case !res.Done:
			writeJSON(rw, http.StatusConflict, res)
		default:
			writeJSON(rw, http.StatusOK, res)
		}
	})
}
