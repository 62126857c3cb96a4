// Load: 1,000 VUs for 10 minutes (after a 1-minute ramp), half on the REST
// mix, half in WebSocket chat sessions. The expected everyday peak.
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e USERS=200 -e ROOMS=100 loadtest/k6/load.js
//
// VUS, DURATION and RAMP override the size, the hold and the ramp-up.
import { rampAndHold, VUS, DURATION } from './lib.js';

export const options = rampAndHold(VUS(1000), DURATION('10m'), __ENV.RAMP || '1m');

export { setup, rest, chatSession } from './lib.js';
