// What the browser tests need around the browser: a private PostgreSQL
// database, an RSA key folder (so tokens survive a restart) and the real
// parley binary, started, stopped with SIGTERM and started again on the
// same addresses; for two instances, one Redis key prefix of their own.
// Every wait is bounded.

import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const ROOT = resolve(import.meta.dirname, '../..');
const ADMIN_URL =
  process.env.PARLEY_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.PARLEY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** $PARLEY_BIN, else the debug build where cargo puts it ($CARGO_TARGET_DIR, default target/). */
const BIN = process.env.PARLEY_BIN ??
  join(resolve(ROOT, process.env.CARGO_TARGET_DIR ?? 'target'), 'debug/parley');

function psql(sql) {
  execFileSync('psql', [ADMIN_URL, '-w', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', sql], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, PGCONNECT_TIMEOUT: '5' },
  });
}

/** A fresh database named parley_test_browser_*, so scripts/test/test.sh can sweep leftovers. */
export function createDatabase() {
  const name = `parley_test_browser_${randomBytes(6).toString('hex')}`;
  psql(`CREATE DATABASE "${name}"`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return { name, url: url.toString(), drop: () => psql(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`) };
}

/** A temporary PARLEY_JWT_KEYS_DIR with one RSA key. */
export function createKeysDir() {
  const dir = mkdtempSync(join(tmpdir(), 'parley-browser-keys-'));
  execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048',
    '-out', join(dir, 'test.pem')], { stdio: 'ignore' });
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A PARLEY_REDIS_PREFIX of this run's own, so runs sharing one Redis never meet. */
export const redisPrefix = () => `parley-browser-${randomBytes(6).toString('hex')}:`;

/** A free port on `host` (bound then released; parley binds it next). */
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

/**
 * parley on a random 127.0.0.x address; restartable on the same one.
 * Without `redis` it runs alone; instances given the same database, keys
 * folder and `redis` ({url, prefix}) form one cluster. `env` overrides
 * settings.
 */
export class Parley {
  static async create({ databaseUrl, keysDir, redis = null, instanceId = 'browser-test', env = {} }) {
    const host = `127.0.0.${2 + Math.floor(Math.random() * 250)}`;
    const parley = new Parley();
    parley.host = host;
    parley.env = {
      ...process.env,
      PARLEY_HTTP_ADDR: `${host}:${await freePort(host)}`,
      PARLEY_ADMIN_ADDR: `${host}:${await freePort(host)}`,
      DATABASE_URL: databaseUrl,
      PARLEY_JWT_KEYS_DIR: keysDir,
      PARLEY_INSTANCE_ID: instanceId,
      PARLEY_LOG_FORMAT: 'json',
      // Two users register, log in and refresh from one address.
      PARLEY_RATE_AUTH_PER_MIN: '1000',
      PARLEY_RATE_API_PER_MIN: '10000',
      // Spreads the drain's reconnect frames over 1 s instead of 5 s.
      PARLEY_DRAIN_TIMEOUT_S: '6',
      // Short-lived access tokens: the pages refresh them (and the server
      // closes sockets whose token expired) several times during the test.
      PARLEY_ACCESS_TTL_S: '8',
      // A page reloaded while its refresh is in flight holds a token the
      // server already spent: the window answers it again (the chat test
      // reloads pages, and browser applications should set it).
      PARLEY_REFRESH_REUSE_GRACE_S: '10',
    };
    delete parley.env.REDIS_URL;
    delete parley.env.PARLEY_REDIS_PREFIX;
    if (redis) {
      parley.env.REDIS_URL = redis.url;
      parley.env.PARLEY_REDIS_PREFIX = redis.prefix;
    }
    Object.assign(parley.env, env);
    parley.base = `http://${parley.env.PARLEY_HTTP_ADDR}`;
    parley.log = [];
    return parley;
  }

  async start() {
    this.child = spawn(BIN, [], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk) => this.log.push(chunk.toString());
    this.child.stdout.on('data', keep);
    this.child.stderr.on('data', keep);
    this.exited = new Promise((ok) => this.child.once('exit', (code, signal) => ok({ code, signal })));
    await this.#ready(30_000);
  }

  async #ready(limitMs) {
    const deadline = Date.now() + limitMs;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) throw new Error(`parley exited early:\n${this.logText()}`);
      try {
        const res = await fetch(`${this.base}/health/startup`);
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    throw new Error(`parley not ready after ${limitMs} ms:\n${this.logText()}`);
  }

  /** SIGTERM (drain: `reconnect` frames, close 1012) and wait for the exit. */
  async stop(limitMs = 20_000) {
    if (!this.child || this.child.exitCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), limitMs);
    const status = await this.exited;
    clearTimeout(timer);
    return status;
  }

  logText() {
    return this.log.join('').split('\n').slice(-40).join('\n');
  }
}
