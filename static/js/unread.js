// Unread counts per room and the read cursor: the SDK's
// (static/sdk/parley.js, served at /sdk/parley.js), which owns them now.
// tests/browser/unit.test.mjs covers them.
export { Unread } from '../sdk/parley.js';
