#!/usr/bin/env bash
# Room events (contract 1.1, 6.1) on the read paths: wrk against a running
# parley (--url, loopback only), after seeding it through its REST API.
#
#   1. history of a room whose messages were edited, reacted to, replied to
#      and some deleted: `GET /api/v1/rooms/{id}/messages?limit=50` (events
#      are folded on write, so this should cost what a plain page costs);
#   2. a reader who is a member of --rooms rooms (default 500), each with
#      --unread unread messages after a read cursor: `GET /api/v1/rooms?limit=100`
#      (a page of rooms with their unread counts) and `GET /api/v1/rooms/unread`
#      (the badge over every room).
#
# Seeding is parallel (python3, standard library, --workers keep-alive
# connections) and bounded; it checks what it seeded before measuring.
# Prints one table. It does not start parley: run one with the limits out
# of the way, e.g.
#
#   PARLEY_RATE_API_PER_MIN=100000000 PARLEY_RATE_AUTH_PER_MIN=1000 \
#     PARLEY_HTTP_ADDR=127.0.0.1:8080 scripts/dev/serve.sh
#
# usage: loadtest/events.sh --url http://127.0.0.1:8080 [--messages N] [--rooms R]
#          [--unread U] [--duration S] [--connections C] [--workers W] [--seed-only]
#   --messages N    messages in the history room (default 2000, at most 100000)
#   --rooms R       rooms the reader is a member of (default 500, at most 5000)
#   --unread U      unread messages per room (default 5, at most 100)
#   --duration S    seconds per wrk run (default 10, at most 120)
#   --connections C wrk connections (default 64); wrk runs one thread
#   --workers W     parallel seeding connections (default 8, at most 32)
#   --seed-only     seed and check, print the ids and the reader's token, skip wrk
#   --plain         only what a server before contract 1.1 can do (the "before" of
#                   a before/after): plain messages, no edits, reactions, deletes,
#                   replies or read cursors, and no GET /rooms/unread run
set -euo pipefail

SCRIPT_NAME=events.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

URL=
MESSAGES=2000
ROOMS=500
UNREAD=5
DURATION=10
CONNECTIONS=64
WORKERS=8
SEED_ONLY=0
PLAIN=0
while [[ $# -gt 0 ]]; do
    case $1 in
    --url) URL=${2%/}; shift 2 ;;
    --messages) MESSAGES=$2; shift 2 ;;
    --rooms) ROOMS=$2; shift 2 ;;
    --unread) UNREAD=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --seed-only) SEED_ONLY=1; shift ;;
    --plain) PLAIN=1; shift ;;
    -h | --help) sed -n '2,32p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
    esac
done

# in_range OPTION VALUE MIN MAX
in_range() {
    [[ $2 =~ ^[0-9]+$ ]] || die "$1 must be a number, got $2"
    (($2 >= $3 && $2 <= $4)) || die "$1 must be $3 to $4, got $2"
}
in_range --messages "$MESSAGES" 20 100000
in_range --rooms "$ROOMS" 1 5000
in_range --unread "$UNREAD" 1 100
in_range --duration "$DURATION" 1 120
in_range --connections "$CONNECTIONS" 1 1024
in_range --workers "$WORKERS" 1 32
[[ -n "$URL" ]] || die "--url is required (the running parley, e.g. http://127.0.0.1:8080)"
# Loopback only: this floods what it points at.
[[ $URL =~ ^http://(127\.[0-9]+\.[0-9]+\.[0-9]+|localhost)(:[0-9]+)?$ ]] ||
    die "--url must be http://127.x.x.x[:PORT] or http://localhost[:PORT], nothing else: got $URL"
have python3 || die "python3 is not installed"
if ((!SEED_ONLY)); then
    have wrk || die "wrk is not installed (apt-get install wrk), or pass --seed-only"
fi
curl -sf -o /dev/null "$URL/healthz" || die "no parley answers at $URL/healthz"

seed_out=$(mktemp)
on_exit "rm -f '$seed_out'"
log "seeding $URL: a room of $MESSAGES messages, $ROOMS rooms x $UNREAD unread ($WORKERS connections)"
python3 - "$URL" "$MESSAGES" "$ROOMS" "$UNREAD" "$WORKERS" "$PLAIN" >"$seed_out" <<'PY'
"""Seeds parley through its REST API; prints KEY=VALUE lines on stdout."""
import http.client
import json
import random
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

url, messages, rooms, unread, workers, plain = sys.argv[1], *map(int, sys.argv[2:7])
parsed = urllib.parse.urlsplit(url)
HOST, PORT = parsed.hostname, parsed.port or 80
RUN = f"{random.getrandbits(32):08x}"
EMOJI = ["👍", "🎉", "😂", "🚀"]
REACTORS = 3
CHUNK = 200
local = threading.local()
sent = [0]
count_lock = threading.Lock()
# One pool for the whole run: each thread keeps its connection alive.
pool = ThreadPoolExecutor(max_workers=workers)


def log(msg):
    print(f"events.sh: {msg}", file=sys.stderr, flush=True)


class Refused(Exception):
    pass


def call(method, path, body=None, token=None, expect=(200, 201, 204)):
    """One request on this thread's keep-alive connection (reopened once if
    the server closed it). Returns (status, headers, JSON body or None)."""
    headers = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    for attempt in (0, 1):
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(HOST, PORT, timeout=30)
        try:
            conn.request(method, "/api/v1" + path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            break
        except (http.client.HTTPException, OSError):
            conn.close()
            local.conn = None
            if attempt:
                raise
    with count_lock:
        sent[0] += 1
    if resp.status == 429:
        raise Refused(
            f"{method} {path}: 429 rate limited; start parley with "
            "PARLEY_RATE_API_PER_MIN=100000000 PARLEY_RATE_AUTH_PER_MIN=1000"
        )
    if resp.status not in expect:
        raise Refused(f"{method} {path}: {resp.status} {raw[:300]!r}")
    return resp.status, resp.headers, (json.loads(raw) if raw else None)


def parallel(label, tasks):
    """Runs the callables in `tasks` on `workers` threads; stops at the first failure."""
    start = time.monotonic()
    before = sent[0]
    futures = [pool.submit(t) for t in tasks]
    try:
        results = [f.result() for f in futures]
    except BaseException:
        for f in futures:
            f.cancel()
        raise
    took = time.monotonic() - start
    n = sent[0] - before
    if label:
        log(f"  {label}: {n} requests in {took:.1f} s ({n / max(took, 1e-9):,.0f} req/s)")
    return results


def register(name):
    body = {
        "username": f"ev{RUN}{name}",
        "email": f"ev{RUN}{name}@example.com",
        "password": f"lantern {RUN} quiet harbour {name}",
    }
    _, _, user = call("POST", "/auth/register", body)
    return user["access_token"], user["user"]["id"]


try:
    author, _ = register("author")
    reader, reader_id = register("reader")
    reactors = [register(f"r{i}") for i in range(REACTORS)]
    _, headers, _ = call("GET", "/users/me", token=author)
    limit = int(headers.get("X-RateLimit-Limit") or 0)
    if limit < 1_000_000:
        raise Refused(
            f"the API rate limit is {limit} per minute: wrk would measure 429s; start "
            "parley with PARLEY_RATE_API_PER_MIN=100000000 PARLEY_RATE_AUTH_PER_MIN=1000"
        )

    # 1. The history room: private, the reader and reactors are members.
    _, _, room = call("POST", "/rooms", {"name": f"events {RUN}", "kind": "private"}, author)
    hist = room["id"]
    for _, uid in [(reader, reader_id), *reactors]:
        call("POST", f"/rooms/{hist}/members", {"user_id": uid}, author)
    # Messages in chunks, so a reply can name any message of an earlier chunk;
    # every 5th message replies to one.
    log(f"history room {hist}")
    start, posted = time.monotonic(), 0

    def post(i, reply_to):
        body = {"body": f"message {i} of the events benchmark, with some words in it", "client_id": f"m{i}"}
        if reply_to:
            body["reply_to"] = reply_to
        return call("POST", f"/rooms/{hist}/messages", body, author)[2]["seq"]

    seqs = []
    for chunk in range(0, messages, CHUNK):
        tasks = []
        for i in range(chunk, min(chunk + CHUNK, messages)):
            reply_to = random.randint(1, posted) if posted and i % 5 == 4 and not plain else None
            tasks.append(lambda i=i, r=reply_to: post(i, r))
        seqs.extend(parallel(None, tasks))
        posted = len(seqs)
    log(f"  messages: {messages} in {time.monotonic() - start:.1f} s")

    # Every 2nd message edited (every 6th twice); 2 of 3 reacted to by each
    # reactor, the reader on every 4th; then every 20th deleted.
    tasks = []
    for seq in seqs if not plain else []:
        if seq % 2 == 0:
            tasks.append(lambda s=seq: call("PATCH", f"/rooms/{hist}/messages/{s}", {"body": f"message {s}, edited", "client_id": f"e{s}"}, author))
        if seq % 6 == 0:
            tasks.append(lambda s=seq: call("PATCH", f"/rooms/{hist}/messages/{s}", {"body": f"message {s}, edited twice", "client_id": f"e2-{s}"}, author))
        if seq % 3 != 0:
            for n, (token, _) in enumerate(reactors):
                emoji = urllib.parse.quote(EMOJI[(seq + n) % len(EMOJI)], safe="")
                tasks.append(lambda s=seq, t=token, e=emoji: call("PUT", f"/rooms/{hist}/messages/{s}/reactions/{e}", token=t))
        if seq % 4 == 0:
            emoji = urllib.parse.quote(EMOJI[0], safe="")
            tasks.append(lambda s=seq, e=emoji: call("PUT", f"/rooms/{hist}/messages/{s}/reactions/{e}", token=reader))
    parallel("edits and reactions", tasks)
    if not plain:
        parallel("deletes", [lambda s=seq: call("DELETE", f"/rooms/{hist}/messages/{s}", token=author) for seq in seqs if seq % 20 == 0])
        # The reader has read the history room: it does not weigh on the badge.
        call("POST", f"/rooms/{hist}/read", {"seq": 10**12}, reader)

    # 2. The reader's rooms: each has 2 messages the reader read, then `unread` more.
    def seed_room(n):
        _, _, r = call("POST", "/rooms", {"name": f"events {RUN} {n}", "kind": "private"}, author)
        rid = r["id"]
        call("POST", f"/rooms/{rid}/members", {"user_id": reader_id}, author)
        for i in range(2):
            call("POST", f"/rooms/{rid}/messages", {"body": f"read {i}", "client_id": f"a{i}"}, author)
        if not plain:
            call("POST", f"/rooms/{rid}/read", {"seq": 2}, reader)
        for i in range(unread):
            call("POST", f"/rooms/{rid}/messages", {"body": f"unread {i}", "client_id": f"u{i}"}, author)
        return rid

    parallel(f"{rooms} rooms", [lambda n=n: seed_room(n) for n in range(rooms)])

    # Check what was seeded before measuring it.
    _, _, page = call("GET", f"/rooms/{hist}/messages?limit=50", token=reader)
    items = page["items"]
    if plain:
        if len(items) != 50:
            raise Refused(f"the history page has {len(items)} items, not 50")
        print(f"reader_token={reader}")
        print(f"history_room={hist}")
        print(f"requests={sent[0]}")
        pool.shutdown()
        sys.exit(0)
    edited = sum(1 for m in items if m["edited_at"])
    reacted = sum(1 for m in items if m["reactions"])
    deleted = sum(1 for m in items if m["deleted"])
    if len(items) != 50 or not edited or not reacted:
        raise Refused(f"the history page is not what was seeded: {len(items)} items, {edited} edited, {reacted} reacted")
    _, _, badge = call("GET", "/rooms/unread", token=reader)
    if badge["total"] != rooms * unread or len(badge["items"]) != rooms:
        raise Refused(f"GET /rooms/unread: total {badge['total']} in {len(badge['items'])} rooms, expected {rooms * unread} in {rooms}")
    log(f"checked: history page of 50 has {edited} edited, {reacted} with reactions, {deleted} deleted; unread total {badge['total']} in {rooms} rooms")
    print(f"reader_token={reader}")
    print(f"history_room={hist}")
    print(f"requests={sent[0]}")
except Refused as e:
    log(f"error: {e}")
    pool.shutdown(wait=False, cancel_futures=True)
    sys.exit(1)
pool.shutdown()
PY

token='' room='' requests=''
while IFS='=' read -r key value; do
    case $key in
    reader_token) token=$value ;;
    history_room) room=$value ;;
    requests) requests=$value ;;
    esac
done <"$seed_out"
[[ -n "$token" && -n "$room" ]] || die "seeding printed no token or room"
log "seeded with $requests requests"

if ((SEED_ONLY)); then
    log "history room: $room"
    log "reader's token (valid for the access-token lifetime): $token"
    exit 0
fi

api="$URL/api/v1"
rows=()
# bench LABEL URL: wrk with the reader's token; one table row.
bench() {
    local label=$1 target=$2 out rps p50 p99 bad
    log "$label: wrk -t1 -c$CONNECTIONS -d${DURATION}s $target"
    out=$(wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency \
        -H "Authorization: Bearer $token" "$target") || die "wrk failed on $target"
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    bad=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out")
    rows+=("$(printf '| %-52s | %10s | %9s | %9s | %7s |' "$label" "${rps:-?}" "${p50:-?}" "${p99:-?}" "${bad:-0}")")
    [[ -z "$bad" ]] || log "warning: $label: $bad answers were not 2xx (rate limit? token expired?): its req/s is not a measurement"
}

bench "GET /rooms/{id}/messages?limit=50 ($MESSAGES messages)" "$api/rooms/$room/messages?limit=50"
bench "GET /rooms?limit=100 (member of $ROOMS rooms)" "$api/rooms?limit=100"
((PLAIN)) || bench "GET /rooms/unread ($ROOMS rooms x $UNREAD unread)" "$api/rooms/unread"

printf '\n%s: wrk -t1 -c%s -d%ss against %s (load average: %s)\n\n' \
    "$SCRIPT_NAME" "$CONNECTIONS" "$DURATION" "$URL" "$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
printf '| %-52s | %10s | %9s | %9s | %7s |\n' request req/s p50 p99 non-2xx
printf '|%s|%s|%s|%s|%s|\n' "$(printf '%54s' '' | tr ' ' -)" "$(printf '%12s' '' | tr ' ' -)" \
    "$(printf '%11s' '' | tr ' ' -)" "$(printf '%11s' '' | tr ' ' -)" "$(printf '%9s' '' | tr ' ' -)"
printf '%s\n' "${rows[@]}"
