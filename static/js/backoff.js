// Reconnect delays: the SDK's (static/sdk/parley.js, served at
// /sdk/parley.js), which owns them now, so the page and every other client
// back off alike.
export { BASE_MS, CAP_MS, backoffDelay } from '../sdk/parley.js';
