// The client's pure logic, without a browser: seq bookkeeping and backoff.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay, CAP_MS } from '../../static/js/backoff.js';
import { Timeline } from '../../static/js/timeline.js';

const msg = (seq) => ({ seq, body: `m${seq}` });

test('a timeline holds each seq once and reports a gap above its complete range', () => {
  const t = new Timeline();
  assert.equal(t.add(msg(3)), true);
  assert.equal(t.hasGap, false, 'no gap before the initial load says where history ends');
  t.completeTo(2);
  assert.equal(t.top, 3);
  assert.equal(t.add(msg(3)), false);
  t.add(msg(6));
  assert.equal(t.hasGap, true);
  t.add(msg(4));
  t.add(msg(5));
  assert.equal(t.top, 6);
  assert.equal(t.hasGap, false);
  assert.deepEqual(t.sorted().map((m) => m.seq), [3, 4, 5, 6]);
});

test('backoff grows to a cap, jitters fully and adds the server retry_after_ms', () => {
  assert.equal(backoffDelay(0, { random: () => 0 }), 0);
  assert.equal(backoffDelay(3, { random: () => 0.5 }), 1000);
  assert.ok(backoffDelay(50, { random: () => 0.999999 }) < CAP_MS);
  assert.equal(backoffDelay(0, { retryAfterMs: 700, random: () => 0 }), 700);
});
