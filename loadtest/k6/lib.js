// Shared code of the k6 scenarios: configuration, user set-up, the REST
// mix and the WebSocket chat session. Each scenario file (smoke.js,
// load.js, stress.js, soak.js) only declares its `options` and re-exports
// setup() and the two exec functions from here.
//
// Environment (k6 -e NAME=VALUE or the process environment):
//   BASE_URL        parley's public listener, default http://127.0.0.1:8080
//   USERS           users registered in setup(), default 50; VUs share them
//                   round-robin (each VU logs in once as its user)
//   ROOMS           public rooms created in setup(), default 20
//   WS_SESSION_S    how long one WebSocket session stays open, default 30
//   WS_PUBLISH_MS   interval between publishes of one session, default 2000
//   THINK_MS        pause between two REST iterations of a VU, default 1000
//   VUS, DURATION   override the scenario's size and length (see each file)
//
// parley's default rate limits (5 auth requests per minute per IP, 100 API
// requests per minute per user) stop a load run within seconds: start
// parley with PARLEY_RATE_AUTH_PER_MIN and PARLEY_RATE_API_PER_MIN raised,
// and the WebSocket caps (PARLEY_WS_CONNS_PER_IP, PARLEY_WS_CONNS_PER_USER,
// PARLEY_WS_USER_MSGS_PER_S) too: every virtual user connects from one
// address (see loadtest/README.md, "k6").

import http from 'k6/http';
import ws from 'k6/ws';
import { check, fail, sleep } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import exec from 'k6/execution';

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
export const WS_URL = BASE_URL.replace(/^http/, 'ws') + '/ws';
const API = `${BASE_URL}/api/v1`;

function intEnv(name, dflt) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return dflt;
  const n = parseInt(raw, 10);
  if (!(n > 0)) fail(`${name} must be a positive integer, got "${raw}"`);
  return n;
}

export const USERS = intEnv('USERS', 50);
export const ROOMS = intEnv('ROOMS', 20);
const WS_SESSION_MS = intEnv('WS_SESSION_S', 30) * 1000;
const WS_PUBLISH_MS = intEnv('WS_PUBLISH_MS', 2000);
const THINK_S = intEnv('THINK_MS', 1000) / 1000;
// After the last publish a session waits at most this long for its acks
// and its own messages before it counts the missing ones as errors.
const WS_SETTLE_MS = 5000;
const PASSWORD = 'k6-load-test-password';

// One error rate over everything a run does, REST and WebSocket, so that
// "errors < 0.1 %" is a single threshold.
export const errors = new Rate('parley_errors');
export const wsAck = new Trend('ws_ack_ms', true);
export const wsEcho = new Trend('ws_echo_ms', true);
export const wsAcked = new Counter('ws_publishes_acked');
export const wsMessages = new Counter('ws_messages_received');

// The thresholds every scenario shares: p95 under 200 ms for REST requests
// made during the run (set-up and logins are tagged apart: registering and
// logging in hash a password on purpose slowly) and for publish -> ack, and
// fewer than 0.1 % errors.
export const thresholds = {
  'http_req_duration{phase:run}': ['p(95)<200'],
  'http_req_failed{phase:run}': ['rate<0.001'],
  ws_ack_ms: ['p(95)<200'],
  parley_errors: ['rate<0.001'],
  checks: ['rate>0.999'],
};

// Scenario sizes come from the file, VUS and DURATION override them, so
// that a short CI smoke run is the same script as the real one.
export const VUS = (dflt) => intEnv('VUS', dflt);
export const DURATION = (dflt) => __ENV.DURATION || dflt;

// A chat iteration lasts a session plus its settling time; scenarios let it
// finish instead of cutting it off (which would lose its checks).
export const WS_GRACE = `${Math.ceil(WS_SESSION_MS / 1000) + Math.ceil(WS_SETTLE_MS / 1000) + 5}s`;

// Half the VUs run the REST mix, half hold WebSocket chat sessions.
export function split(vus) {
  const chat = Math.max(1, Math.floor(vus / 2));
  return { rest: Math.max(1, vus - chat), chat };
}

const JSON_HEADERS = { 'Content-Type': 'application/json' };

function authed(token, phase, name) {
  return {
    headers: Object.assign({ Authorization: `Bearer ${token}` }, JSON_HEADERS),
    tags: { phase, name },
  };
}

function ok(res, what, statuses) {
  const good = check(res, { [`${what}: status ${statuses.join('|')}`]: (r) => statuses.includes(r.status) });
  errors.add(!good);
  return good;
}

// Registers USERS users and creates ROOMS public rooms; returns what every
// VU needs. Names carry a random run id so that runs against one database
// never collide.
export function setupRun() {
  const ready = http.get(`${BASE_URL}/readyz`, { tags: { phase: 'setup' } });
  if (ready.status !== 200) fail(`${BASE_URL}/readyz answered ${ready.status}: is parley running?`);
  const run = `k6${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const users = [];
  // Batches bound the requests in flight: parley hashes one password per
  // core at a time and queues the rest.
  const batch = 10;
  for (let first = 0; first < USERS; first += batch) {
    const reqs = [];
    for (let i = first; i < Math.min(USERS, first + batch); i++) {
      reqs.push(['POST', `${API}/auth/register`,
        JSON.stringify({ username: `${run}u${i}`, email: `${run}u${i}@example.com`, password: PASSWORD }),
        { headers: JSON_HEADERS, tags: { phase: 'setup', name: 'register' }, timeout: '120s' }]);
    }
    for (const res of http.batch(reqs)) {
      if (res.status !== 201) {
        fail(`register answered ${res.status}: ${res.body}. Is PARLEY_RATE_AUTH_PER_MIN raised?`);
      }
      const body = res.json();
      users.push({ id: body.user.id, username: body.user.username, token: body.access_token });
    }
  }
  const rooms = [];
  for (let i = 0; i < ROOMS; i++) {
    const res = http.post(`${API}/rooms`, JSON.stringify({ name: `${run} room ${i}`, kind: 'public' }),
      authed(users[i % users.length].token, 'setup', 'create room'));
    if (res.status !== 201) fail(`create room answered ${res.status}: ${res.body}`);
    rooms.push(res.json().id);
  }
  return { run, users, rooms };
}

// Per-VU state: each VU logs in once as its user and logs in again only when
// the access token is about to expire.
let session = null;
// Counts this VU's REST publishes across logins: a client_id must never
// repeat, or parley rightly answers 200 with the original ack.
let restPublishes = 0;

function login(data) {
  const user = data.users[(exec.vu.idInTest - 1) % data.users.length];
  const res = http.post(`${API}/auth/login`, JSON.stringify({ username: user.username, password: PASSWORD }),
    { headers: JSON_HEADERS, tags: { phase: 'login', name: 'login' }, timeout: '120s' });
  if (!ok(res, 'login', [200])) return null;
  const body = res.json();
  // Renew at 80 % of the lifetime so that no request carries an expired token.
  return { user, token: body.access_token, renewAt: Date.now() + body.expires_in * 800 };
}

function ensureSession(data) {
  if (session === null || Date.now() >= session.renewAt) {
    session = login(data);
  }
  return session;
}

function pick(list) {
  return list[Math.floor(Math.random() * list.length)];
}

// One REST iteration: read the feed, write a post, read a room's recent
// history and post a message to it through REST.
export function restMix(data) {
  const s = ensureSession(data);
  if (s === null) {
    sleep(THINK_S);
    return;
  }
  const t = s.token;
  const room = pick(data.rooms);
  restPublishes += 1;
  const n = restPublishes;

  ok(http.get(`${API}/feed?limit=20`, authed(t, 'run', 'GET /feed')), 'feed', [200]);
  ok(http.post(`${API}/posts`, JSON.stringify({ body: `k6 post ${n} from VU ${exec.vu.idInTest}` }),
    authed(t, 'run', 'POST /posts')), 'create post', [201]);
  ok(http.get(`${API}/rooms/${room}/messages?limit=50`, authed(t, 'run', 'GET /rooms/{id}/messages')),
    'room history', [200]);
  const clientId = `${data.run}-r${exec.vu.idInTest}-${n}`;
  const res = http.post(`${API}/rooms/${room}/messages`, JSON.stringify({ body: `k6 rest ${n}`, client_id: clientId }),
    authed(t, 'run', 'POST /rooms/{id}/messages'));
  if (ok(res, 'publish via REST', [201])) {
    errors.add(!check(res, { 'REST publish acks its client_id': (r) => r.json('client_id') === clientId }));
  }
  sleep(THINK_S);
}

// One WebSocket chat session: connect with ?access_token=, wait for hello,
// subscribe to a room, publish every WS_PUBLISH_MS with a fresh client_id,
// and check that every publish is acked and comes back as a message frame
// of the room. Lasts WS_SESSION_S, then settles and closes.
export function chat(data) {
  const s = ensureSession(data);
  if (s === null) {
    sleep(THINK_S);
    return;
  }
  const room = pick(data.rooms);
  const refs = new Map(); // ref -> client_id
  const outstanding = new Map(); // client_id -> { at, acked, echoed }
  let n = 0;
  let started = false;
  let publishing = false;
  let failures = 0;
  let closing = false;
  const protocolError = (what) => {
    failures += 1;
    errors.add(true);
    check(null, { [`ws: ${what}`]: () => false });
  };
  const settle = (clientId, p) => {
    if (p.acked && p.echoed) outstanding.delete(clientId);
  };

  const res = ws.connect(`${WS_URL}?access_token=${encodeURIComponent(s.token)}`, { tags: { name: 'ws' } }, (socket) => {
    const publish = () => {
      if (!publishing) return;
      n += 1;
      const clientId = `${data.run}-w${exec.vu.idInTest}-${exec.vu.iterationInScenario}-${n}`;
      const ref = `p${n}`;
      refs.set(ref, clientId);
      outstanding.set(clientId, { at: Date.now(), acked: false, echoed: false });
      socket.send(JSON.stringify({ type: 'publish', room, body: `k6 ws ${n}`, client_id: clientId, ref }));
    };
    const finish = () => {
      for (const p of outstanding.values()) {
        protocolError(p.acked ? 'acked message never delivered' : 'publish never acked');
      }
      outstanding.clear();
      closing = true;
      socket.close();
    };

    socket.on('message', (raw) => {
      let f;
      try {
        f = JSON.parse(raw);
      } catch (e) {
        protocolError('frame is not JSON');
        return;
      }
      switch (f.type) {
        case 'hello':
          socket.send(JSON.stringify({ type: 'subscribe', room, ref: 's' }));
          break;
        case 'subscribed':
          if (started) break;
          started = true;
          publishing = true;
          publish();
          socket.setInterval(publish, WS_PUBLISH_MS);
          socket.setTimeout(() => {
            // Stop publishing; close as soon as everything came back, or
            // after WS_SETTLE_MS at the latest.
            publishing = false;
            const deadline = Date.now() + WS_SETTLE_MS;
            const poll = () => {
              if (outstanding.size === 0 || Date.now() >= deadline) finish();
              else socket.setTimeout(poll, 50);
            };
            poll();
          }, WS_SESSION_MS);
          break;
        case 'ack': {
          const clientId = refs.get(f.ref);
          const p = clientId === undefined ? undefined : outstanding.get(clientId);
          if (p === undefined || p.acked || f.client_id !== clientId || f.room !== room) {
            protocolError('ack does not match a publish');
            break;
          }
          refs.delete(f.ref);
          p.acked = true;
          wsAck.add(Date.now() - p.at);
          wsAcked.add(1);
          errors.add(false);
          settle(clientId, p);
          break;
        }
        case 'message': {
          wsMessages.add(1);
          if (f.room !== room) {
            protocolError('message from a room not subscribed');
            break;
          }
          // Our own message may arrive before or after its ack.
          const p = outstanding.get(f.client_id);
          if (p !== undefined && f.author === s.user.id && !p.echoed) {
            p.echoed = true;
            wsEcho.add(Date.now() - p.at);
            settle(f.client_id, p);
          }
          break;
        }
        case 'error':
          protocolError(`error frame ${f.code}`);
          break;
        case 'reconnect':
          protocolError('server asked to reconnect');
          break;
        default:
          // typing, presence, notification, pong: not checked here.
          break;
      }
    });
    // Once this side sent its close frame, k6 reports a failed write of
    // anything else (a pong to the server's ping) as "close sent": not an
    // error of the server's.
    socket.on('error', (e) => {
      if (!closing) protocolError(`socket error ${e.error()}`);
    });
    // A session that never gets as far as `subscribed` still ends.
    socket.setTimeout(() => {
      if (!started) {
        protocolError('no subscribed frame');
        closing = true;
        socket.close();
      }
    }, WS_SESSION_MS + WS_SETTLE_MS);
  });
  const upgraded = check(res, { 'ws: upgrade 101': (r) => r && r.status === 101 });
  errors.add(!upgraded);
  // A failed session retries after a pause, not in a tight loop.
  if (!upgraded || failures > 0) sleep(1);
}

// The entry points k6 looks up by name in every scenario file, which
// re-exports them: `export { setup, rest, chatSession } from './lib.js';`
export function setup() {
  return setupRun();
}

export function rest(data) {
  restMix(data);
}

export function chatSession(data) {
  chat(data);
}

// Options for a ramp to `total` VUs (half REST, half chat) over `ramp`,
// then a hold of `hold`: the load and soak shapes.
export function rampAndHold(total, hold, ramp) {
  const vus = split(total);
  const shape = (exec, n) => ({
    executor: 'ramping-vus',
    exec,
    startVUs: 0,
    stages: [
      { duration: ramp, target: n },
      { duration: hold, target: n },
    ],
    gracefulRampDown: WS_GRACE,
    gracefulStop: WS_GRACE,
  });
  return {
    setupTimeout: '600s',
    scenarios: { rest: shape('rest', vus.rest), chat: shape('chatSession', vus.chat) },
    thresholds,
  };
}
