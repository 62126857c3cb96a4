// Soak: 1,000 VUs for 1 hour, half REST, half WebSocket: does anything grow
// (memory, latency, errors) over time? Sample parley's RSS beside it with
// loadtest/k6/rss.sh.
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e USERS=200 -e ROOMS=100 loadtest/k6/soak.js
//
// Sessions renew their access token themselves, so no PARLEY_ACCESS_TTL_S
// change is needed. VUS, DURATION and RAMP override the shape.
import { setupRun, restMix, chat, thresholds, split, VUS, DURATION, WS_GRACE } from './lib.js';

const vus = split(VUS(1000));
const duration = DURATION('1h');
const ramp = __ENV.RAMP || '2m';

const shape = (n) => ({
  executor: 'ramping-vus',
  startVUs: 0,
  stages: [
    { duration: ramp, target: n },
    { duration, target: n },
  ],
  gracefulRampDown: WS_GRACE,
  gracefulStop: WS_GRACE,
});

export const options = {
  setupTimeout: '600s',
  scenarios: {
    rest: Object.assign({ exec: 'rest' }, shape(vus.rest)),
    chat: Object.assign({ exec: 'chatSession' }, shape(vus.chat)),
  },
  thresholds,
};

export function setup() {
  return setupRun();
}

export function rest(data) {
  restMix(data);
}

export function chatSession(data) {
  chat(data);
}
