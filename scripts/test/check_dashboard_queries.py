#!/usr/bin/env python3
"""Runs every Grafana panel query and every alert rule of deploy/ against a
real Prometheus scraping a real parley, and fails when a query errors or
names a metric that parley's /metrics does not export.

    python3 scripts/test/check_dashboard_queries.py --parley target/debug/parley \
        --database-url postgres://postgres@127.0.0.1:5432/parley_x

Called by scripts/test/check-deploy.sh, which creates (and drops) the private
database. Standard library only. Steps:

1. start parley (PARLEY_HTTP_ADDR / PARLEY_ADMIN_ADDR on free 127.0.0.x
   ports) and wait for /health/startup;
2. send a little traffic: register, follow, post, room, REST message with a
   mention, WebSocket frames, an oversized frame (close 1009), and logins
   until the auth rate limit answers 429, so labelled families have series;
3. start Prometheus (its own temp storage, 1 s scrape interval, the rules of
   deploy/prometheus/alerts.yml) and wait, bounded, until it has scraped the
   traffic;
4. run every dashboard target, template-variable query and annotation, and
   every rule expression (as Prometheus loaded it) through /api/v1/query;
5. compare the metric names each one uses with the `# TYPE` families of
   /metrics (histogram _bucket/_sum/_count count as the family). Metrics of
   other exporters (EXTERNAL below) are reported, not failed.
"""

import argparse
import base64
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Families that are not parley's, with the exporter that provides them in
# deploy/docker-compose.yml (and in Kubernetes). They cannot be checked
# against parley's /metrics; they are listed in the output instead.
EXTERNAL = {
    "up": "Prometheus (scrape health)",
    "node_filesystem_avail_bytes": "node-exporter",
    "node_filesystem_size_bytes": "node-exporter",
    "container_memory_working_set_bytes": "cAdvisor / kubelet",
    "container_spec_memory_limit_bytes": "cAdvisor / kubelet",
}

# Grafana variables and what stands in for them in a plain API query.
VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "5m",
    "${instance:regex}": ".*",
    "$instance": ".*",
}

PROMQL_WORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
    "group_right", "offset", "bool", "inf", "nan", "atan2", "start", "end",
}


def log(msg):
    print(f"check_dashboard_queries: {msg}", flush=True)


def free_addr():
    """A free port on a random 127.0.0.x address (x >= 2), so parallel
    runs and the developer's own services on 127.0.0.1 do not collide."""
    for _ in range(50):
        host = f"127.0.0.{random.randint(2, 254)}"
        with socket.socket() as s:
            try:
                s.bind((host, 0))
            except OSError:
                continue
            return host, s.getsockname()[1]
    raise SystemExit("no free loopback port found")


def http(method, url, body=None, token=None, timeout=10):
    """(status, parsed JSON or text). Never raises on HTTP error codes."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def wait_until(what, check, timeout_s, proc=None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{what}: process exited with status {proc.returncode}")
        try:
            if check():
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"timed out after {timeout_s}s waiting for {what}")


# --- traffic ---------------------------------------------------------------


def expect(status, body, ok, what):
    if status not in ok:
        raise SystemExit(f"traffic: {what} answered {status}: {body}")
    return body


def ws_session(host, port, token, room, max_frame):
    """A minimal RFC 6455 client: upgrade, wait for `hello`, subscribe,
    publish, type, ping, wait for their answers, then one frame larger than
    PARLEY_WS_MAX_FRAME_BYTES, which parley closes with 1009. Returns the
    close code seen (or None)."""
    sock = socket.create_connection((host, port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
        ).encode()
    )
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise SystemExit("traffic: WebSocket upgrade: connection closed")
        buf += chunk
    head, buf = buf.split(b"\r\n\r\n", 1)
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise SystemExit(f"traffic: WebSocket upgrade refused: {head[:200]!r}")

    def send_text(text):
        payload = text.encode()
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            header = bytes([0x81, 0x80 | n])
        elif n < 65536:
            header = bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
        else:
            header = bytes([0x81, 0x80 | 127]) + n.to_bytes(8, "big")
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        sock.sendall(header + mask + masked)

    data = buf

    def read_frame(deadline):
        """(opcode, payload) of the next server frame, or None at EOF or
        the deadline."""
        nonlocal data
        while time.monotonic() < deadline:
            if len(data) >= 2:
                length, off = data[1] & 0x7F, 2
                if length == 126 and len(data) >= 4:
                    length, off = int.from_bytes(data[2:4], "big"), 4
                elif length == 127 and len(data) >= 10:
                    length, off = int.from_bytes(data[2:10], "big"), 10
                if length < 126 or off > 2:
                    if len(data) >= off + length:
                        frame = (data[0] & 0x0F, data[off:off + length])
                        data = data[off + length:]
                        return frame
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                return None
            if not chunk:
                return None
            data += chunk
        return None

    def await_types(wanted):
        """Reads frames until every type in `wanted` arrived: the session
        handled the frames sent so far."""
        deadline = time.monotonic() + 10
        wanted = set(wanted)
        while wanted:
            frame = read_frame(deadline)
            if frame is None:
                raise SystemExit(f"traffic: WebSocket: no {sorted(wanted)} frame within 10 s")
            if frame[0] == 0x1:
                wanted.discard(json.loads(frame[1]).get("type"))

    await_types({"hello"})
    send_text(json.dumps({"type": "subscribe", "room": room, "since": 0, "ref": "s1"}))
    send_text(json.dumps({"type": "publish", "room": room, "body": "over the socket", "client_id": "ws-1", "ref": "p1"}))
    send_text(json.dumps({"type": "typing", "room": room}))
    send_text(json.dumps({"type": "ping", "ref": "x"}))
    await_types({"subscribed", "ack", "pong"})
    # Too big: parley closes with 1009 (PARLEY_WS_MAX_FRAME_BYTES).
    send_text("x" * (max_frame + 512))
    deadline = time.monotonic() + 10
    while True:
        frame = read_frame(deadline)
        if frame is None:
            sock.close()
            return None
        if frame[0] == 0x8:
            sock.close()
            return int.from_bytes(frame[1][:2], "big") if len(frame[1]) >= 2 else None


def traffic(base, ws_host, ws_port, max_frame):
    suffix = f"{os.getpid()}{random.randint(0, 9999)}"
    pw = "correct horse battery"
    users = []
    for name in ("ada", "bob"):
        _, body = http("POST", f"{base}/api/v1/auth/register", {
            "username": f"{name}{suffix}", "email": f"{name}{suffix}@example.com", "password": pw})
        users.append(body)
    for u in users:
        if not isinstance(u, dict) or "access_token" not in u:
            raise SystemExit(f"traffic: register failed: {u}")
    ada, bob = users[0]["access_token"], users[1]["access_token"]
    ada_id, bob_id = users[0]["user"]["id"], users[1]["user"]["id"]
    expect(*http("POST", f"{base}/api/v1/users/{ada_id}/follow", token=bob), (204,), "follow")
    expect(*http("POST", f"{base}/api/v1/posts", {"body": "hello from the deploy check"}, token=ada), (201,), "post")
    room = expect(*http("POST", f"{base}/api/v1/rooms", {"name": "deploy-check", "kind": "public"}, token=ada), (201,), "room")["id"]
    expect(*http("POST", f"{base}/api/v1/rooms/{room}/members", {"user_id": bob_id}, token=ada), (204,), "add member")
    expect(*http("POST", f"{base}/api/v1/rooms/{room}/messages",
                 {"body": f"hi @bob{suffix}", "client_id": "c-1"}, token=ada), (201,), "room message")
    expect(*http("GET", f"{base}/api/v1/rooms/{room}/messages?limit=10", token=bob), (200,), "history")
    expect(*http("GET", f"{base}/api/v1/feed", token=bob), (200,), "feed")
    expect(*http("GET", f"{base}/api/v1/notifications", token=bob), (200,), "notifications")
    http("GET", f"{base}/api/v1/no-such-route", token=bob)
    # Dependency gauges are set by the readiness checks.
    http("GET", f"{base}/readyz")
    code = ws_session(ws_host, ws_port, ada, room, max_frame)
    log(f"traffic: WebSocket session closed by the server with {code}")
    # Auth requests per IP are limited (PARLEY_RATE_AUTH_PER_MIN): two
    # registrations spent two; wrong logins spend the rest until a 429.
    for _ in range(10):
        status, _ = http("POST", f"{base}/api/v1/auth/login", {"email": "nobody@example.com", "password": "wrong password"})
        if status == 429:
            break
    return 1


# --- queries ---------------------------------------------------------------


def exported_families(metrics_text):
    families = set()
    for line in metrics_text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0] == "#" and parts[1] == "TYPE":
            families.add(parts[2])
    return families


def family_of(name, families):
    if name in families:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in families:
            return name[: -len(suffix)]
    return None


def metric_names(expr):
    """Metric names a PromQL expression selects: identifiers that are not
    functions, keywords, label names or durations. A small tokenizer is
    enough for the expressions in deploy/ (Prometheus 2.42 has no parse API)."""
    e = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    e = re.sub(r"'(?:\\.|[^'\\])*'", "''", e)
    e = re.sub(r"\{[^}]*\}", " ", e)  # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)  # ranges
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\boffset\s+\S+", " ", e)
    out = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        word = m.group(0)
        rest = e[m.end():].lstrip()
        if rest.startswith("("):
            continue  # function or aggregation
        if word.lower() in PROMQL_WORDS:
            continue
        # A duration/number tail such as the "e" of 1e3 or "m" of 5m.
        if m.start() > 0 and (e[m.start() - 1].isdigit() or e[m.start() - 1] == "."):
            continue
        out.add(word)
    return out


def substitute(expr):
    for k, v in VARIABLES.items():
        expr = expr.replace(k, v)
    if "$" in expr:
        raise SystemExit(f"unknown Grafana variable in: {expr}")
    return expr


def dashboard_queries(folder):
    out = []
    for path in sorted(Path(folder).glob("*.json")):
        d = json.loads(path.read_text())
        for var in d.get("templating", {}).get("list", []):
            q = var.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            m = re.fullmatch(r"\s*label_values\((.*),\s*\w+\)\s*", q or "")
            if m:
                out.append((f"{path.name} variable {var['name']}", m.group(1)))
        for ann in d.get("annotations", {}).get("list", []):
            if ann.get("expr"):
                out.append((f"{path.name} annotation {ann['name']}", ann["expr"]))
        panels = list(d.get("panels", []))
        while panels:
            p = panels.pop(0)
            panels.extend(p.get("panels", []))  # rows
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((f"{path.name} panel '{p['title']}' {t['refId']}", t["expr"]))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parley", default=str(ROOT / "target/debug/parley"))
    ap.add_argument("--prometheus", default=shutil.which("prometheus") or "/usr/bin/prometheus")
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--redis-url", default=os.environ.get("PARLEY_TEST_REDIS_URL", "redis://127.0.0.1:6379"))
    ap.add_argument("--dashboards", default=str(ROOT / "deploy/grafana/dashboards"))
    ap.add_argument("--rules", default=str(ROOT / "deploy/prometheus/alerts.yml"))
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="parley-deploy-check-"))
    procs = []
    try:
        http_host, http_port = free_addr()
        admin_host, admin_port = free_addr()
        max_frame = 1024
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PARLEY_", "OTEL_"))}
        env.update({
            "PARLEY_HTTP_ADDR": f"{http_host}:{http_port}",
            "PARLEY_ADMIN_ADDR": f"{admin_host}:{admin_port}",
            "PARLEY_INSTANCE_ID": "deploy-check",
            "DATABASE_URL": args.database_url,
            "REDIS_URL": args.redis_url,
            "PARLEY_REDIS_PREFIX": f"deploy-check-{os.getpid()}-{random.randint(0, 1 << 30)}:",
            "PARLEY_LOG_FORMAT": "json",
            "PARLEY_LOG": "warn",
            "PARLEY_WS_MAX_FRAME_BYTES": str(max_frame),
            "PARLEY_DRAIN_TIMEOUT_S": "5",
            "PARLEY_DRAIN_GRACE_MS": "0",
        })
        parley_log = open(work / "parley.log", "w")
        parley = subprocess.Popen([args.parley], env=env, stdout=parley_log, stderr=subprocess.STDOUT)
        procs.append(parley)
        admin = f"http://{admin_host}:{admin_port}"
        base = f"http://{http_host}:{http_port}"
        wait_until("parley /health/startup", lambda: http("GET", f"{admin}/health/startup", timeout=2)[0] == 200, 90, parley)
        log(f"parley up: public {base}, admin {admin}")

        traffic(base, http_host, http_port, max_frame)

        prom_host, prom_port = free_addr()
        rules = work / "alerts.yml"
        shutil.copy(args.rules, rules)
        (work / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "rule_files:\n  - alerts.yml\n"
            "scrape_configs:\n  - job_name: parley\n    static_configs:\n"
            f"      - targets: ['{admin_host}:{admin_port}']\n"
        )
        prom_log = open(work / "prometheus.log", "w")
        prom = subprocess.Popen([
            args.prometheus, f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}", f"--web.listen-address={prom_host}:{prom_port}",
        ], stdout=prom_log, stderr=subprocess.STDOUT)
        procs.append(prom)
        api = f"http://{prom_host}:{prom_port}/api/v1"

        def query(q):
            return http("GET", f"{api}/query?" + urllib.parse.urlencode({"query": q}), timeout=10)

        # Scraped after the traffic: the post counter has reached Prometheus,
        # and there are enough samples for a 1m rate() (two scrapes).
        def scraped():
            status, body = query('count_over_time(parley_posts_created_total{job="parley"}[1m]) >= 2')
            return status == 200 and body["data"]["result"]
        wait_until("Prometheus to scrape parley twice", scraped, 60, prom)
        wait_until("Prometheus to load the alert rules",
                   lambda: http("GET", f"{api}/rules")[1]["data"]["groups"], 30, prom)
        log(f"Prometheus {api} has scraped the traffic")

        metrics_text = http("GET", f"{admin}/metrics")[1]
        families = exported_families(metrics_text)
        log(f"parley /metrics lists {len(families)} families")

        queries = [(what, substitute(expr)) for what, expr in dashboard_queries(args.dashboards)]
        for group in http("GET", f"{api}/rules")[1]["data"]["groups"]:
            for rule in group["rules"]:
                queries.append((f"alert {rule['name']}", rule["query"]))

        failures, missing, external = [], {}, {}
        for what, expr in queries:
            status, body = query(expr)
            if status != 200 or body.get("status") != "success":
                failures.append(f"{what}: query failed ({status}): {body}\n    {expr}")
                continue
            for name in sorted(metric_names(expr)):
                if name in EXTERNAL:
                    external.setdefault(name, []).append(what)
                elif family_of(name, families) is None:
                    missing.setdefault(name, []).append(what)
        log(f"ran {len(queries)} queries ({sum(1 for w, _ in queries if w.startswith('alert '))} alert rules)")
        for name, whats in sorted(external.items()):
            log(f"not parley's, from {EXTERNAL[name]}: {name} ({len(whats)} queries)")
        for name, whats in sorted(missing.items()):
            failures.append(f"{name} is not exported by parley; used by: " + "; ".join(whats))
        if failures:
            log(f"FAILED: {len(failures)} problem(s); missing metric names: {', '.join(sorted(missing)) or 'none'}")
            for f in failures:
                print(f"  - {f}", file=sys.stderr)
            return 1
        log("every query ran and every metric name is exported")
        return 0
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if os.environ.get("KEEP_DEPLOY_CHECK_DIR"):
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
