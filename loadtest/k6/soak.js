// Soak: 1,000 VUs for 1 hour, half REST, half WebSocket: does anything grow
// (memory, latency, errors) over time? Sample parley's RSS beside it with
// loadtest/k6/rss.sh.
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e USERS=200 -e ROOMS=100 loadtest/k6/soak.js
//
// Sessions renew their access token themselves, so no PARLEY_ACCESS_TTL_S
// change is needed. VUS, DURATION and RAMP override the shape.
import { rampAndHold, VUS, DURATION } from './lib.js';

export const options = rampAndHold(VUS(1000), DURATION('1h'), __ENV.RAMP || '2m');

export { setup, rest, chatSession } from './lib.js';
