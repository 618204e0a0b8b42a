#!/usr/bin/env bash
# A local Layer fleet, as docs/deploy.md lays out a production one, on this machine:
#   - a Redis Cluster of three masters (the shared document cache, --cache redis-cluster://...),
#   - a PostgreSQL server (the shared job store, --job-store postgresql://...),
#   - the local Turbopuffer-compatible origin (`layer origin --api-key`), standing in for
#     Turbopuffer,
#   - two gateway replicas (`layer serve`) on all three.
#
#   scripts/fleet.sh up       start everything (a previous fleet's state is wiped), print the URLs
#   scripts/fleet.sh status   which parts run, and their URLs
#   scripts/fleet.sh check    end to end: a write through replica A fetched through B, a warm job
#                             started through A seen through B, a namespace delete through B seen
#                             by A
#   scripts/fleet.sh down     stop everything (the state dir and its logs stay)
#
# Environment: LAYER_FLEET_DIR (state dir, default /tmp/layer-fleet), LAYER_BIN (default
# build/layer), LAYER_FLEET_KEY (the origin's API key, default fleet-key). Needs redis-server,
# redis-cli, PostgreSQL's server binaries, curl and python3 (scripts/setup.sh installs them).
# PostgreSQL refuses to run as root: as root, its part runs as the `postgres` user.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${LAYER_FLEET_DIR:-/tmp/layer-fleet}"
LAYER_BIN="${LAYER_BIN:-$ROOT/build/layer}"
KEY="${LAYER_FLEET_KEY:-fleet-key}"
REDIS_SERVER="${LAYER_REDIS_SERVER:-$(command -v redis-server || echo /usr/bin/redis-server)}"
REDIS_CLI="${LAYER_REDIS_CLI:-$(command -v redis-cli || echo /usr/bin/redis-cli)}"

die() { echo "fleet: $*" >&2; exit 1; }
say() { echo "fleet: $*"; }

pg_bin() {
  if [[ -n "${LAYER_PG_BIN:-}" ]]; then echo "$LAYER_PG_BIN"; return; fi
  local found
  found="$(printf '%s\n' /usr/lib/postgresql/*/bin | grep -v '\*' | sort -V | tail -1)"
  [[ -n "$found" ]] || die "no PostgreSQL under /usr/lib/postgresql (apt-get install postgresql)"
  echo "$found"
}

# Runs a PostgreSQL tool as the postgres user when we are root.
as_pg() {
  if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# N free TCP ports on 127.0.0.1 whose port + 10000 is a port too (Redis Cluster's bus port).
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks, ports = [], []
while len(ports) < int(sys.argv[1]):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
    p = s.getsockname()[1]
    if p + 10000 <= 65535:
        ports.append(p)
print(" ".join(map(str, ports)))
PY
}

# Polls a command until it succeeds (a readiness check), at most $1 seconds.
wait_for() {
  local bound="$1" what="$2"; shift 2
  local deadline=$((SECONDS + bound))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out waiting for $what"
    sleep 0.1
  done
}

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Starts a layer process in the background: name, then its arguments.
start_layer() {
  local name="$1"; shift
  mkdir -p "$DIR/$name"
  rm -f "$DIR/$name/port"
  nohup "$LAYER_BIN" "$@" --port-file "$DIR/$name/port" >"$DIR/$name/log" 2>&1 </dev/null &
  echo $! >"$DIR/$name/pid"
}

cluster_ok() {
  local p
  for p in $REDIS_PORTS; do
    "$REDIS_CLI" -p "$p" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
  done
}

ready() { curl -fsS "$1/ready" >/dev/null; }

up() {
  [[ -x "$LAYER_BIN" ]] || die "no layer binary at $LAYER_BIN (build it, or set LAYER_BIN)"
  [[ -x "$REDIS_SERVER" && -x "$REDIS_CLI" ]] || die "redis-server and redis-cli are needed"
  if [[ -f "$DIR/fleet.env" ]] && status >/dev/null 2>&1; then
    die "a fleet is running in $DIR: scripts/fleet.sh down first"
  fi
  if [[ -f "$DIR/fleet.env" ]]; then down >/dev/null 2>&1 || true; fi
  rm -rf "$DIR"
  mkdir -p "$DIR"
  chmod 755 "$DIR"
  local ports
  read -r -a ports <<<"$(free_ports 4)"
  REDIS_PORTS="${ports[0]} ${ports[1]} ${ports[2]}"
  PG_PORT="${ports[3]}"
  cat >"$DIR/fleet.env" <<ENV
REDIS_PORTS="$REDIS_PORTS"
PG_PORT="$PG_PORT"
ENV

  # Redis Cluster: three masters, each with an append-only file (a restarted master keeps its
  # tombstones and epochs: docs/deploy.md), a memory bound and the eviction policy the cache
  # needs (docs/design.md §3.11).
  local p seeds=""
  for p in $REDIS_PORTS; do
    mkdir -p "$DIR/redis-$p"
    "$REDIS_SERVER" --port "$p" --bind 127.0.0.1 --daemonize yes \
      --pidfile "$DIR/redis-$p/pid" --logfile "$DIR/redis-$p/log" --dir "$DIR/redis-$p" \
      --cluster-enabled yes --cluster-config-file nodes.conf --appendonly yes \
      --maxmemory 256mb --maxmemory-policy volatile-lru --save ""
    seeds="$seeds${seeds:+,}127.0.0.1:$p"
  done
  for p in $REDIS_PORTS; do wait_for 10 "redis-server :$p" "$REDIS_CLI" -p "$p" ping; done
  local nodes=()
  for p in $REDIS_PORTS; do nodes+=("127.0.0.1:$p"); done
  "$REDIS_CLI" --cluster create "${nodes[@]}" \
    --cluster-replicas 0 --cluster-yes >"$DIR/redis-create.log" 2>&1 </dev/null \
    || die "redis-cli --cluster create failed: see $DIR/redis-create.log"
  wait_for 60 "cluster_state:ok" cluster_ok
  say "redis cluster up: redis-cluster://$seeds"

  # PostgreSQL: a throwaway server in the state dir.
  local pg
  pg="$(pg_bin)"
  mkdir -p "$DIR/pg"
  [[ "$(id -u)" == 0 ]] && chown postgres:postgres "$DIR/pg"
  as_pg "$pg/initdb" -D "$DIR/pg/data" -A trust -U postgres --no-sync -E UTF8 --locale=C \
    >"$DIR/pg/initdb.log" 2>&1 || die "initdb failed: see $DIR/pg/initdb.log"
  cat >>"$DIR/pg/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$DIR/pg'
CONF
  as_pg "$pg/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/log" -w -t 120 start >/dev/null \
    || die "PostgreSQL did not start: see $DIR/pg/log"
  as_pg "$pg/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -qc "CREATE DATABASE layer" \
    >/dev/null
  say "postgresql up: postgresql://postgres@127.0.0.1:$PG_PORT/layer"

  # The origin (strict: it takes only $KEY), then the two replicas.
  start_layer origin origin --listen 127.0.0.1:0 --data-dir "$DIR/origin/data" --api-key "$KEY"
  wait_for 30 "the origin's port" test -s "$DIR/origin/port"
  local origin
  origin="http://127.0.0.1:$(cat "$DIR/origin/port")"
  local r
  for r in a b; do
    start_layer "replica-$r" serve --listen 127.0.0.1:0 --data-dir "$DIR/replica-$r/data" \
      --upstream "$origin" --upstream-api-key "$KEY" \
      --cache "redis-cluster://$seeds" \
      --job-store "postgresql://postgres@127.0.0.1:$PG_PORT/layer"
  done
  for r in a b; do
    wait_for 30 "replica $r's port" test -s "$DIR/replica-$r/port"
    wait_for 30 "replica $r to be ready" ready "http://127.0.0.1:$(cat "$DIR/replica-$r/port")"
  done
  status
}

load_env() {
  [[ -f "$DIR/fleet.env" ]] || die "no fleet in $DIR (scripts/fleet.sh up)"
  # shellcheck disable=SC1091
  source "$DIR/fleet.env"
}

url_of() { echo "http://127.0.0.1:$(cat "$DIR/$1/port")"; }

status() {
  load_env
  local down=0 p r
  for p in $REDIS_PORTS; do
    if alive "$DIR/redis-$p/pid"; then
      echo "redis     127.0.0.1:$p  up"
    else
      echo "redis     127.0.0.1:$p  down"; down=1
    fi
  done
  if as_pg "$(pg_bin)/pg_ctl" -D "$DIR/pg/data" status >/dev/null 2>&1; then
    echo "postgres  postgresql://postgres@127.0.0.1:$PG_PORT/layer  up"
  else
    echo "postgres  127.0.0.1:$PG_PORT  down"; down=1
  fi
  for r in origin replica-a replica-b; do
    if alive "$DIR/$r/pid" && [[ -s "$DIR/$r/port" ]]; then
      printf '%-9s %s  up\n' "$r" "$(url_of "$r")"
    else
      printf '%-9s down (log: %s)\n' "$r" "$DIR/$r/log"; down=1
    fi
  done
  echo "cache     redis-cluster://$(echo "$REDIS_PORTS" | sed 's/\([0-9]*\)/127.0.0.1:\1/g; s/ /,/g')"
  echo "API key   $KEY (Authorization: Bearer $KEY)"
  return $down
}

stop_pid() {
  local pidfile="$1"
  alive "$pidfile" || return 0
  local pid
  pid="$(cat "$pidfile")"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 40))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

down() {
  load_env
  local r p
  for r in replica-a replica-b origin; do stop_pid "$DIR/$r/pid"; done
  if [[ -d "$DIR/pg/data" ]]; then
    as_pg "$(pg_bin)/pg_ctl" -D "$DIR/pg/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  for p in $REDIS_PORTS; do
    "$REDIS_CLI" -p "$p" shutdown nosave >/dev/null 2>&1 || true
    stop_pid "$DIR/redis-$p/pid"
  done
  say "stopped (state and logs stay in $DIR)"
}

# Prints one field of the JSON object on stdin (a path such as .attributes.v), "" when absent.
json() {
  python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].strip(".").split("."):
    v = v.get(k) if isinstance(v, dict) else None
print("" if v is None else v)' "$1"
}

# One request: method, URL, optional JSON body; prints the body, fails on a non-2xx status.
call() {
  local method="$1" url="$2" body="${3:-}"
  if [[ -n "$body" ]]; then
    curl -fsS -X "$method" "$url" -H "Authorization: Bearer $KEY" \
      -H 'Content-Type: application/json' -d "$body"
  else
    curl -fsS -X "$method" "$url" -H "Authorization: Bearer $KEY"
  fi
}

check() {
  load_env
  status >/dev/null || die "not every part is up (scripts/fleet.sh status)"
  local a b ns="fleet-check-$$-$RANDOM" got
  a="$(url_of replica-a)"
  b="$(url_of replica-b)"
  call POST "$a/v2/namespaces/$ns" '{"upsert_rows":[{"id":1,"v":"one"},{"id":2,"v":"two"}]}' \
    >/dev/null
  got="$(call GET "$b/v2/namespaces/$ns/documents/1")"
  [[ "$(json .attributes.v <<<"$got")" == one ]] || die "B fetched $got, not A's write"
  call POST "$a/v2/namespaces/$ns" '{"upsert_rows":[{"id":1,"v":"one-v2"}]}' >/dev/null
  got="$(call GET "$b/v2/namespaces/$ns/documents/1")"
  [[ "$(json .attributes.v <<<"$got")" == one-v2 ]] || die "B served a stale row: $got"
  say "ok: a write through A is fetched through B"

  local job id status
  job="$(call POST "$a/v2/namespaces/$ns/warm")"
  id="$(json .id <<<"$job")"
  [[ -n "$id" && "$id" != null ]] || die "no warm job id in $job"
  call GET "$b/v2/namespaces/$ns/warm-jobs" | grep -q "\"id\":\"$id\"" \
    || die "B does not list job $id"
  local deadline=$((SECONDS + 60))
  while :; do
    status="$(call GET "$b/v2/namespaces/$ns/warm-jobs/$id" | json .status)"
    [[ "$status" == running || "$status" == queued ]] || break
    ((SECONDS < deadline)) || die "warm job $id still $status"
    sleep 0.1
  done
  [[ "$status" == completed ]] || die "warm job $id ended $status"
  [[ "$(call GET "$a/v2/namespaces/$ns/warm-jobs/$id" | json .status)" == completed ]] \
    || die "A does not see job $id completed"
  say "ok: a warm job started through A is seen through B (completed)"

  call DELETE "$b/v2/namespaces/$ns" >/dev/null
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEY" \
    "$a/v2/namespaces/$ns/documents/1")"
  [[ "$code" == 404 ]] || die "A answered $code for a document of a namespace B deleted"
  say "ok: a namespace deleted through B is gone for A"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  check) check ;;
  *) echo "usage: $0 up|down|status|check" >&2; exit 2 ;;
esac
