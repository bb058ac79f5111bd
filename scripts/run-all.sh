#!/usr/bin/env bash
# Start referral-api, directory-api, notifier, auth and the web app on SQLite files under .data/
# (CLOSEDLOOP_DATA_DIR); Ctrl-C stops all. Authorization is on: the script registers (once)
# referral-api and the notifier as clients of auth, for their calls to each other, and a `dev`
# client (role admin) whose key stays in .data/keys/, and prints how to get a token with it. Each service listens on its *_PORT (8081-8084 by
# default); the URLs the services use to reach each other follow those ports unless set explicitly.
set -euo pipefail
cd "$(dirname "$0")/.."
UV="${UV:-$(command -v uv 2>/dev/null || echo "python3 -m uv")}"  # uv run sets UV to itself

DATA="${CLOSEDLOOP_DATA_DIR:-.data}"
mkdir -p "$DATA"
export REFERRAL_API_PORT="${REFERRAL_API_PORT:-8081}"
export DIRECTORY_API_PORT="${DIRECTORY_API_PORT:-8082}"
export NOTIFIER_PORT="${NOTIFIER_PORT:-8083}"
export AUTH_PORT="${AUTH_PORT:-8084}"
export WEB_PORT="${WEB_PORT:-8080}"
export REFERRAL_API_DATABASE_URL="${REFERRAL_API_DATABASE_URL:-sqlite:///$DATA/referral-api.db}"
export DIRECTORY_API_DATABASE_URL="${DIRECTORY_API_DATABASE_URL:-sqlite:///$DATA/directory-api.db}"
export NOTIFIER_DATABASE_URL="${NOTIFIER_DATABASE_URL:-sqlite:///$DATA/notifier.db}"
export AUTH_DATABASE_URL="${AUTH_DATABASE_URL:-sqlite:///$DATA/auth.db}"
# the token server: its own URL, and the FHIR bases its access tokens are for
export AUTH_ISSUER="${AUTH_ISSUER:-http://127.0.0.1:$AUTH_PORT}"
export AUTH_AUDIENCES="${AUTH_AUDIENCES:-http://127.0.0.1:$REFERRAL_API_PORT/fhir,http://127.0.0.1:$DIRECTORY_API_PORT/fhir,http://127.0.0.1:$NOTIFIER_PORT/fhir}"
# the FHIR services trust that token server (they check tokens unless <PREFIX>AUTH_ENABLED=false)
export REFERRAL_API_AUTH_ISSUER="${REFERRAL_API_AUTH_ISSUER:-$AUTH_ISSUER}"
export DIRECTORY_API_AUTH_ISSUER="${DIRECTORY_API_AUTH_ISSUER:-$AUTH_ISSUER}"
export NOTIFIER_AUTH_ISSUER="${NOTIFIER_AUTH_ISSUER:-$AUTH_ISSUER}"
# the clients' private keys (made by `auth clients ensure`, read by `auth token` and the services)
export AUTH_CLIENT_KEYS_DIR="${AUTH_CLIENT_KEYS_DIR:-$DATA/keys}"
export REFERRAL_API_CLIENT_ID="${REFERRAL_API_CLIENT_ID:-referral-api}"
export REFERRAL_API_CLIENT_KEY_FILE="${REFERRAL_API_CLIENT_KEY_FILE:-$AUTH_CLIENT_KEYS_DIR/$REFERRAL_API_CLIENT_ID.json}"
export NOTIFIER_CLIENT_ID="${NOTIFIER_CLIENT_ID:-notifier}"
export NOTIFIER_CLIENT_KEY_FILE="${NOTIFIER_CLIENT_KEY_FILE:-$AUTH_CLIENT_KEYS_DIR/$NOTIFIER_CLIENT_ID.json}"
export REFERRAL_API_DIRECTORY_URL="${REFERRAL_API_DIRECTORY_URL:-http://127.0.0.1:$DIRECTORY_API_PORT/fhir}"
export REFERRAL_API_EVENT_SINK_URL="${REFERRAL_API_EVENT_SINK_URL-http://127.0.0.1:$NOTIFIER_PORT/events}"
export NOTIFIER_REFERRAL_URL="${NOTIFIER_REFERRAL_URL:-http://127.0.0.1:$REFERRAL_API_PORT/fhir}"
# the web app: a client of the three others over HTTP, with a service client of its own (for
# the patient status page) that people also sign in to (redirect URI <WEB_PUBLIC_URL>/auth/callback)
export WEB_PUBLIC_URL="${WEB_PUBLIC_URL:-http://127.0.0.1:$WEB_PORT}"
export WEB_REFERRAL_URL="${WEB_REFERRAL_URL:-http://127.0.0.1:$REFERRAL_API_PORT/fhir}"
export WEB_DIRECTORY_URL="${WEB_DIRECTORY_URL:-http://127.0.0.1:$DIRECTORY_API_PORT/fhir}"
export WEB_AUTH_URL="${WEB_AUTH_URL:-$AUTH_ISSUER}"
export WEB_CLIENT_ID="${WEB_CLIENT_ID:-web}"
export WEB_CLIENT_KEY_FILE="${WEB_CLIENT_KEY_FILE:-$AUTH_CLIENT_KEYS_DIR/$WEB_CLIENT_ID.json}"
export WEB_COOKIE_SECURE="${WEB_COOKIE_SECURE:-false}"  # plain http on this machine
# the notifier's messages link to the web app; the patient's links are signed with a secret
# the two share, and the web app's cookies with another (both made once, kept in $DATA)
export NOTIFIER_APP_URL="${NOTIFIER_APP_URL:-$WEB_PUBLIC_URL}"
secret() { [ -s "$1" ] || (umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(32))' >"$1"); cat "$1"; }
export WEB_LINK_SECRET="${WEB_LINK_SECRET:-$(secret "$DATA/link-secret")}"
export NOTIFIER_LINK_SECRET="${NOTIFIER_LINK_SECRET:-$WEB_LINK_SECRET}"
export WEB_SESSION_SECRET="${WEB_SESSION_SECRET:-$(secret "$DATA/web-session-secret")}"
# Only referral-api may post events to the notifier: it sends its access token (client
# referral-api, role service). A shared secret instead, if you set NOTIFIER_EVENTS_TOKEN
# (REFERRAL_API_EVENT_SINK_TOKEN follows it).
if [ -n "${NOTIFIER_EVENTS_TOKEN:-}" ]; then
  export REFERRAL_API_EVENT_SINK_TOKEN="${REFERRAL_API_EVENT_SINK_TOKEN:-$NOTIFIER_EVENTS_TOKEN}"
fi

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
  [ -f "$DATA/demo-directory.json" ] || $UV run --frozen python scripts/generate_demo_directory.py --output "$DATA/demo-directory.json"
  $UV run --frozen directory-api import-hsds "$DATA/demo-directory.json" --source demo --no-progress \
    2>>"$DATA/directory-api.log" || echo "demo directory import failed (see $DATA/directory-api.log)"
fi

# The clients, registered once (idempotent: nothing happens when they are): the services'
# own, with the scopes their calls need, and `dev` for you.
ensure() { $UV run --frozen auth clients ensure "$@" 2>>"$DATA/auth.log" >/dev/null || echo "registering $2 failed (see $DATA/auth.log)"; }
ensure --client-id "$REFERRAL_API_CLIENT_ID" --name referral-api --role service \
  --scopes "system/HealthcareService.r system/Organization.r" --key-file "$REFERRAL_API_CLIENT_KEY_FILE"
ensure --client-id "$NOTIFIER_CLIENT_ID" --name notifier --role service \
  --scopes "system/Patient.r" --key-file "$NOTIFIER_CLIENT_KEY_FILE"
ensure --client-id "$WEB_CLIENT_ID" --name "Closed Loop web" --role service \
  --scopes "system/Task.r system/ServiceRequest.r system/Patient.r system/Procedure.r system/QuestionnaireResponse.crs system/Questionnaire.r system/HealthcareService.r system/Organization.r system/Location.rs openid fhirUser online_access user/*.cruds launch launch/patient" \
  --redirect-uri "$WEB_PUBLIC_URL/auth/callback" --key-file "$WEB_CLIENT_KEY_FILE"
ensure --client-id dev --name "Local developer" --role admin --scopes "system/*.cruds"

for svc in auth referral-api directory-api notifier web; do
  $UV run --frozen "$svc" serve 2>>"$DATA/$svc.log" &
  pids+=($!)
done

for svc_port in "auth:$AUTH_PORT" "referral-api:$REFERRAL_API_PORT" "directory-api:$DIRECTORY_API_PORT" "notifier:$NOTIFIER_PORT" "web:$WEB_PORT"; do
  svc="${svc_port%%:*}" port="${svc_port##*:}"
  ready=0
  for _ in $(seq 1 150); do
    if curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then ready=1; break; fi
    sleep 0.2
  done
  [ "$ready" = 1 ] || echo "$svc is not answering on port $port yet (see $DATA/$svc.log)"
done

# `auth token` reads AUTH_* like the script: name those that differ from the defaults
token_env=""
[ "$AUTH_DATABASE_URL" = "sqlite:///.data/auth.db" ] || token_env+="AUTH_DATABASE_URL=$AUTH_DATABASE_URL "
[ "$AUTH_CLIENT_KEYS_DIR" = ".data/keys" ] || token_env+="AUTH_CLIENT_KEYS_DIR=$AUTH_CLIENT_KEYS_DIR "
[ "$AUTH_ISSUER" = "http://127.0.0.1:8084" ] || token_env+="AUTH_ISSUER=$AUTH_ISSUER "

cat <<TXT
Closed Loop is running (logs in $DATA/*.log):
  referral-api   http://127.0.0.1:$REFERRAL_API_PORT/fhir   (metadata: /fhir/metadata, API docs: /docs)
  directory-api  http://127.0.0.1:$DIRECTORY_API_PORT/fhir
  notifier       http://127.0.0.1:$NOTIFIER_PORT/fhir
  auth           $AUTH_ISSUER/token   (SMART Backend Services; discovery: /.well-known/smart-configuration)
  web            $WEB_PUBLIC_URL   (CBO inbox: add a sign-in with \`uv run auth users add\`; patients' status links)
Every FHIR call needs an access token. Get one for the local dev client (role admin,
system/*.cruds, good for 5 minutes; its key is in $AUTH_CLIENT_KEYS_DIR/dev.json):
  TOKEN=\$(${token_env}uv run auth token --client-id dev)
  curl -s http://127.0.0.1:$REFERRAL_API_PORT/fhir/Patient -H "Authorization: Bearer \$TOKEN"
Press Ctrl-C to stop.
TXT
wait
