// Stress: ramp toward 10,000 VUs in steps, half REST, half WebSocket, to
// find the knee where latency climbs and errors start. Each step ramps for
// STEP_S/3 and holds for STEP_S (default 120 s); the thresholds are expected
// to fail at the top: the point is the step at which they start to.
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e USERS=200 -e ROOMS=100 loadtest/k6/stress.js
//
// STEPS overrides the VU levels, e.g. -e STEPS=250,500,1000,2000.
import { thresholds, split, WS_GRACE } from './lib.js';

const steps = (__ENV.STEPS || '500,1000,2000,4000,7000,10000').split(',').map((s) => parseInt(s, 10));
const stepS = parseInt(__ENV.STEP_S || '120', 10);

function shape(part) {
  const stages = [];
  for (const total of steps) {
    const n = split(total)[part];
    stages.push({ duration: `${Math.max(1, Math.round(stepS / 3))}s`, target: n });
    stages.push({ duration: `${stepS}s`, target: n });
  }
  return {
    executor: 'ramping-vus',
    exec: part === 'rest' ? 'rest' : 'chatSession',
    startVUs: 0,
    stages,
    gracefulRampDown: WS_GRACE,
    gracefulStop: WS_GRACE,
  };
}

export const options = {
  setupTimeout: '600s',
  scenarios: { rest: shape('rest'), chat: shape('chat') },
  thresholds,
};

export { setup, rest, chatSession } from './lib.js';
