// Two parley instances sharing PostgreSQL and Redis behind a real haproxy
// doing plain round-robin with /readyz checks (as tests/api/support/
// cluster.rs configures it), for the SDK's recovery tests. The processes
// come from the browser tests' harness; every wait is bounded.

import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createDatabase, createKeysDir, Parley, REDIS_URL, redisPrefix } from '../browser/harness.mjs';

function freePort(host) {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, host, () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

/** Polls `check` every 50 ms until it answers truthy, for at most `limitMs`. */
export async function waitFor(check, limitMs = 15_000, what = 'a condition') {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    const value = await check();
    if (value) return value;
    await sleep(50);
  }
  throw new Error(`timed out after ${limitMs} ms waiting for ${what}`);
}

/** `promise`, or a failure naming `what` after `limitMs`. */
export function within(promise, limitMs, what) {
  let timer;
  const late = new Promise((_, fail) => {
    timer = setTimeout(() => fail(new Error(`timed out after ${limitMs} ms waiting for ${what}`)), limitMs);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Every cluster still running: killed when the test process ends in any way. */
const running = new Set();
function killAll() {
  for (const cluster of running) {
    cluster.haproxy?.kill('SIGKILL');
    for (const node of cluster.nodes) node.child?.kill('SIGKILL');
  }
}
process.once('exit', killAll);
// The test runner ends a file that timed out with a signal, skipping `after`:
// exit so that the processes go with it.
for (const signal of ['SIGTERM', 'SIGINT']) process.once(signal, () => process.exit(1));

export class Cluster {
  /** `n` instances; `env` adds settings to each. */
  static async start(n = 2, env = {}) {
    const cluster = new Cluster();
    running.add(cluster);
    cluster.database = createDatabase();
    cluster.keys = createKeysDir();
    const redis = { url: REDIS_URL, prefix: redisPrefix() };
    cluster.nodes = [];
    for (let i = 0; i < n; i += 1) {
      const node = await Parley.create({
        databaseUrl: cluster.database.url,
        keysDir: cluster.keys.dir,
        redis,
        instanceId: `sdk-node-${i}`,
        env: { PARLEY_WS_CONNS_PER_IP: '100000', PARLEY_WS_USER_MSGS_PER_S: '100000', ...env },
      });
      cluster.nodes.push(node);
    }
    // One at a time: the first runs the migrations.
    for (const node of cluster.nodes) await node.start();
    await cluster.#haproxy();
    return cluster;
  }

  async #haproxy() {
    const port = await freePort('127.0.0.2');
    const addr = `127.0.0.2:${port}`;
    const servers = this.nodes
      .map((node, i) => `    server node${i} ${node.env.PARLEY_HTTP_ADDR} check inter 200ms fall 1 rise 1\n`)
      .join('');
    const config =
      'global\n    maxconn 4096\n' +
      'defaults\n    mode http\n    timeout check 2s\n    timeout connect 2s\n    timeout client 60s\n' +
      '    timeout server 60s\n    timeout tunnel 1h\n' +
      `frontend parley\n    bind ${addr}\n    default_backend nodes\n` +
      `backend nodes\n    balance roundrobin\n    option httpchk GET /readyz\n${servers}`;
    const path = join(tmpdir(), `parley-sdk-haproxy-${port}.cfg`);
    writeFileSync(path, config);
    this.haproxy = spawn('haproxy', ['-db', '-f', path], { stdio: 'ignore' });
    this.base = `http://${addr}`;
    await waitFor(async () => {
      try {
        return (await fetch(`${this.base}/healthz`)).ok;
      } catch {
        return false;
      }
    }, 10_000, 'haproxy');
  }

  /** The node whose PARLEY_INSTANCE_ID is `id` (a `hello`'s `instance`). */
  node(id) {
    const node = this.nodes.find((n) => n.env.PARLEY_INSTANCE_ID === id);
    if (!node) throw new Error(`no node ${id}`);
    return node;
  }

  /** POST /admin/drain on the node's admin listener; answers the drain's summary. */
  async drain(node) {
    const res = await fetch(`http://${node.env.PARLEY_ADMIN_ADDR}/admin/drain`, { method: 'POST' });
    return res.json();
  }

  /** kill -9, as a crash would. */
  async kill(node) {
    node.child.kill('SIGKILL');
    await node.exited;
  }

  /** Registers a user through the load balancer; answers `{username, password}`. */
  async user(prefix) {
    const username = `${prefix}${Math.random().toString(36).slice(2, 8)}`;
    const password = 'correct horse battery staple';
    const res = await fetch(`${this.base}/api/v1/auth/register`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username, email: `${username}@example.com`, password }),
    });
    if (!res.ok) throw new Error(`register ${username}: ${res.status} ${await res.text()}`);
    const body = await res.json();
    return { username, password, id: body.user.id, tokens: body };
  }

  async stop() {
    running.delete(this);
    this.haproxy?.kill('SIGKILL');
    await Promise.all(this.nodes.map((n) => n.stop(5_000).catch(() => {})));
    this.database.drop();
    this.keys.remove();
  }
}

/**
 * A TCP proxy to `target` (host:port) that the test can cut: every open
 * connection is reset and new ones are refused until `restore()`, as a
 * network that drops would.
 */
export class TcpProxy {
  static async start(target) {
    const proxy = new TcpProxy();
    const [host, port] = target.split(':');
    proxy.down = false;
    proxy.pairs = new Set();
    proxy.server = createServer((socket) => {
      if (proxy.down) {
        socket.destroy();
        return;
      }
      const upstream = connect(Number(port), host);
      const pair = [socket, upstream];
      proxy.pairs.add(pair);
      const end = () => {
        proxy.pairs.delete(pair);
        socket.destroy();
        upstream.destroy();
      };
      for (const s of pair) {
        s.on('error', end);
        s.on('close', end);
      }
      socket.pipe(upstream);
      upstream.pipe(socket);
    });
    const listenPort = await freePort('127.0.0.2');
    await new Promise((ok) => proxy.server.listen(listenPort, '127.0.0.2', ok));
    proxy.base = `http://127.0.0.2:${listenPort}`;
    return proxy;
  }

  cut() {
    this.down = true;
    for (const [a, b] of this.pairs) {
      a.resetAndDestroy?.() ?? a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  restore() {
    this.down = false;
  }

  close() {
    this.cut();
    this.server.close();
  }
}
