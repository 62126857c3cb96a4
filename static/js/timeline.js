// A room's timeline as a fold of its events: the SDK's (static/sdk/parley.js,
// served at /sdk/parley.js), which owns it now, so the page and every
// other client fold events alike. tests/browser/unit.test.mjs covers it.
export { quoteText, targetOf, Timeline } from '../sdk/parley.js';
