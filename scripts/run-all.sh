#!/usr/bin/env bash
# Start referral-api, directory-api and notifier on SQLite files under .data/; Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .data
UV=$(command -v uv 2>/dev/null || echo "python3 -m uv")

pids=()
stop() {
  trap - INT TERM EXIT
  echo; echo "stopping..."
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

# A synthetic demo directory (scripts/generate_demo_directory.py) loaded into directory-api;
# the import is idempotent, so it runs on every start. DEMO_DIRECTORY=0 turns it off.
if [ "${DEMO_DIRECTORY:-1}" != "0" ]; then
  [ -f .data/demo-directory.json ] || $UV run --frozen python scripts/generate_demo_directory.py --output .data/demo-directory.json
  $UV run --frozen directory-api import-hsds .data/demo-directory.json --source demo --no-progress \
    2>>.data/directory-api.log || echo "demo directory import failed (see .data/directory-api.log)"
fi

# Only referral-api may post events to the notifier: both get one shared secret, random per run
# unless NOTIFIER_EVENTS_TOKEN is set (REFERRAL_API_EVENT_SINK_TOKEN follows it).
export NOTIFIER_EVENTS_TOKEN="${NOTIFIER_EVENTS_TOKEN:-$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')}"
export REFERRAL_API_EVENT_SINK_TOKEN="${REFERRAL_API_EVENT_SINK_TOKEN:-$NOTIFIER_EVENTS_TOKEN}"

for svc in referral-api directory-api notifier; do
  $UV run --frozen "$svc" serve 2>>".data/$svc.log" &
  pids+=($!)
done

for port in 8081 8082 8083; do
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.2
  done
done

cat <<TXT
Closed Loop is running (logs in .data/*.log):
  referral-api   http://127.0.0.1:8081/fhir   (metadata: /fhir/metadata, API docs: /docs)
  directory-api  http://127.0.0.1:8082/fhir
  notifier       http://127.0.0.1:8083/fhir
Press Ctrl-C to stop.
TXT
wait
