import assert from 'node:assert/strict';
import { test } from 'node:test';
import { earliestGrantTime, MINUTE, pruneGrants, rulesFromLimits, type Grant, type WindowRule } from '../../src/domain/rate-limit';

const perMinute5: WindowRule[] = [{ windowMs: MINUTE, max: 5, countBy: 'messages' }];

/** Simulates a limiter granting N requests as early as the arithmetic allows. */
function simulate(rules: WindowRule[], costs: number[], marginMs: number): number[] {
  let grants: Grant[] = [];
  let now = 0;
  const times: number[] = [];
  for (const recipients of costs) {
    const at = earliestGrantTime(grants, rules, { recipients }, now, marginMs);
    now = at;
    grants = pruneGrants(grants, rules, now, marginMs);
    grants.push({ at, recipients });
    times.push(at);
  }
  return times;
}

test('5 per minute: the sixth waits a full window plus the margin', () => {
  const times = simulate(perMinute5, Array(12).fill(1), 2000);
  assert.deepEqual(times.slice(0, 5), [0, 0, 0, 0, 0]);
  assert.equal(times[5], MINUTE + 2000);
  assert.equal(times[10], 2 * (MINUTE + 2000));
});

test('no rolling window ever holds more than max, even when arrivals lag grants by up to the margin', () => {
  const margin = 2000;
  const times = simulate(perMinute5, Array(40).fill(1), margin);
  // Worst case: every early grant arrives as late as allowed, every later one at once.
  for (let i = 0; i + 5 < times.length; i++) {
    assert.ok(times[i + 5]! >= times[i]! + margin + MINUTE, `grant ${i + 5} too close to ${i}`);
  }
});

test('recipients-counted windows: a message to 10 uses 10', () => {
  const rules: WindowRule[] = [{ windowMs: MINUTE, max: 20, countBy: 'recipients' }];
  const times = simulate(rules, [10, 10, 10], 0);
  assert.deepEqual(times, [0, 0, MINUTE]);
});

test('an oversized request waits for an empty window instead of blocking for ever', () => {
  const rules: WindowRule[] = [{ windowMs: MINUTE, max: 5, countBy: 'recipients' }];
  const times = simulate(rules, [3, 50, 1], 0);
  assert.deepEqual(times, [0, MINUTE, 2 * MINUTE]);
});

test('several windows: the strictest decides', () => {
  const rules = rulesFromLimits({ perMinute: { max: 30, countBy: 'messages' }, perHour: null, perDay: { max: 40, countBy: 'recipients' } });
  const times = simulate(rules, Array(45).fill(1), 0);
  assert.equal(times[30], MINUTE);
  assert.equal(times[40], 24 * 60 * MINUTE);
});

test('work is linear: each decision looks only at grants inside the windows', () => {
  const grants: Grant[] = Array.from({ length: 1000 }, (_, i) => ({ at: i * 1000, recipients: 1 }));
  const pruned = pruneGrants(grants, perMinute5, 1_000_000, 0);
  assert.equal(pruned.length, 59);
});
