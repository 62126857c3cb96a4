// Smoke: 100 VUs for 1 minute, half on the REST mix, half in WebSocket
// chat sessions. Does everything work under light load?
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 loadtest/k6/smoke.js
//
// scripts/test/check-k6.sh runs this same file shortened (VUS=10, DURATION=15s).
import { thresholds, split, VUS, DURATION, WS_GRACE } from './lib.js';

const vus = split(VUS(100));
const duration = DURATION('1m');

export const options = {
  setupTimeout: '300s',
  scenarios: {
    rest: { executor: 'constant-vus', exec: 'rest', vus: vus.rest, duration },
    chat: { executor: 'constant-vus', exec: 'chatSession', vus: vus.chat, duration, gracefulStop: WS_GRACE },
  },
  thresholds,
};

export { setup, rest, chatSession } from './lib.js';
