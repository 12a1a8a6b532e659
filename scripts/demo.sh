#!/usr/bin/env bash
# make run: start the embedded worker, submit the demo orders, watch them
# until every one is terminal, then keep serving until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
admin=${ADMIN_ADDR:-127.0.0.1:8080}
unset REDIS_URL
# make run means the embedded default (in-memory Redis, simulator): say so,
# so provider settings left in this shell do not stop it (they are ignored).
export EMBEDDED=1
export ADMIN_ADDR=$admin

./bin/worker &
pid=$!
stop() { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
trap stop EXIT
trap 'exit 130' INT TERM

for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/${admin%:*}/${admin##*:}") 2>/dev/null; then break; fi
  kill -0 "$pid" 2>/dev/null || { echo "worker exited" >&2; exit 1; }
  sleep 0.1
done

start=$(date +%s)
# the demo has no invalid order; every line is shown, and watch follows the orders taken
ids=$(./bin/enqueue submit -f examples/demo-orders.json | tee /dev/stderr | awk -F'\t' '$2 == "accepted" || $2 ~ /^duplicate/ {print $1}') || true
# shellcheck disable=SC2086 # one id per word
./bin/enqueue watch $ids
echo
echo "all demo orders ended or wait for a person, in $(( $(date +%s) - start ))s"
echo "console (orders, review): http://$admin/console/"
echo "web UI (queues, tasks):   http://$admin/monitoring/   metrics: http://$admin/metrics"
echo "status of one order:    ./bin/enqueue status DEMO-0003"
echo "serving until Ctrl-C"
wait "$pid"
