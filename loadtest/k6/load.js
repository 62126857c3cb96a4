// Load: 1,000 VUs for 10 minutes (after a 1-minute ramp), half on the REST
// mix, half in WebSocket chat sessions. The expected everyday peak.
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e USERS=200 -e ROOMS=100 loadtest/k6/load.js
//
// VUS, DURATION and RAMP override the size, the hold and the ramp-up.
import { setupRun, restMix, chat, thresholds, split, VUS, DURATION, WS_GRACE } from './lib.js';

const vus = split(VUS(1000));
const duration = DURATION('10m');
const ramp = __ENV.RAMP || '1m';

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
