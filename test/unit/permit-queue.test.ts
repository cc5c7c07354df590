import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  DAY,
  earliestGrantTime,
  grantLogCutoff,
  MINUTE,
  permitQueueKey,
  planGrants,
  timeKey,
  type Grant,
  type QueuedPermit,
  type WindowRule,
} from '../../src/domain/rate-limit';

/** The store-backed limiter's pure parts: queue order, grant planning over a stored log, expiry. */
const perMinute5: WindowRule[] = [{ windowMs: MINUTE, max: 5, countBy: 'messages' }];
const opts = (now: number, extra: Partial<Parameters<typeof planGrants>[3]> = {}) => ({
  now,
  marginMs: 2000,
  pausedUntil: 0,
  maxGrants: 1000,
  ...extra,
});
const q = (id: string, recipients = 1): QueuedPermit => ({ id, recipients });

test('queue keys sort as (acceptedAt, workflow id), whatever the number of digits', () => {
  const entries = [
    { at: 1_700_000_000_000, wf: 'send-t:b' },
    { at: 999, wf: 'send-t:z' },
    { at: 1_700_000_000_000, wf: 'send-t:a' },
    { at: 1_699_999_999_999, wf: 'send-t:zz' },
    { at: 10_000, wf: 'send-t:a' },
  ];
  const byKey = [...entries].sort((a, b) => (permitQueueKey(a.at, a.wf) < permitQueueKey(b.at, b.wf) ? -1 : 1));
  const byFields = [...entries].sort((a, b) => a.at - b.at || (a.wf < b.wf ? -1 : 1));
  assert.deepEqual(byKey, byFields);
  assert.equal(permitQueueKey(5, 'w'), permitQueueKey(5, 'w'), 'asking again lands on the same key');
  assert.equal(timeKey(42).length, 15);
});

test('planGrants: grants the head while it fits, then says when the next one can go', () => {
  const log: Grant[] = [
    { at: 0, recipients: 1 },
    { at: 10_000, recipients: 1 },
  ];
  const plan = planGrants(
    log,
    perMinute5,
    ['a', 'b', 'c', 'd', 'e'].map((id) => q(id)),
    opts(20_000),
  );
  assert.deepEqual(
    plan.granted.map((g) => g.id),
    ['a', 'b', 'c'],
  );
  // 'd' waits for the oldest grant (at 0) to leave the window: 0 + 60 s + margin.
  assert.equal(plan.blockedUntil, MINUTE + 2000);
  const all = [...log, ...plan.granted.map(() => ({ at: 20_000, recipients: 1 }))];
  assert.equal(plan.blockedUntil, earliestGrantTime(all, perMinute5, { recipients: 1 }, 20_000, 2000));
});

test('planGrants is first-in first-out: a smaller request behind a blocked one waits', () => {
  const rules: WindowRule[] = [{ windowMs: MINUTE, max: 10, countBy: 'recipients' }];
  const log: Grant[] = [{ at: 0, recipients: 7 }];
  const plan = planGrants(log, rules, [q('big', 5), q('small', 1)], opts(1000));
  assert.deepEqual(plan.granted, []);
  assert.equal(plan.blockedUntil, MINUTE + 2000);
});

test('planGrants: everything granted, a paused tenant, and the per-tick cap', () => {
  assert.deepEqual(planGrants([], perMinute5, [q('a'), q('b')], opts(0)), { granted: [q('a'), q('b')], blockedUntil: null });
  assert.deepEqual(planGrants([], perMinute5, [], opts(0)), { granted: [], blockedUntil: null });
  assert.deepEqual(planGrants([], perMinute5, [q('a')], opts(0, { pausedUntil: 5000 })), { granted: [], blockedUntil: 5000 });
  const capped = planGrants([], perMinute5, [q('a'), q('b'), q('c')], opts(0, { maxGrants: 2 }));
  assert.deepEqual(capped, { granted: [q('a'), q('b')], blockedUntil: 0 }, 'more fit: look again at once');
  assert.deepEqual(planGrants([], [], [q('a'), q('b')], opts(0)), { granted: [q('a'), q('b')], blockedUntil: null }, 'no limits: all go');
});

test('planGrants over many ticks never puts more than max in any window (log pruned at the cutoff)', () => {
  const rules: WindowRule[] = [
    { windowMs: MINUTE, max: 7, countBy: 'recipients' },
    { windowMs: 10 * MINUTE, max: 30, countBy: 'messages' },
  ];
  const margin = 2000;
  let log: Grant[] = [];
  const queue = Array.from({ length: 200 }, (_, i) => q(`m${String(i).padStart(3, '0')}`, 1 + (i % 3)));
  const granted: Array<{ id: string; at: number; recipients: number }> = [];
  let now = 0;
  while (queue.length > 0) {
    log = log.filter((g) => g.at > grantLogCutoff(rules, now, margin));
    const plan = planGrants(log, rules, queue.slice(0, 50), { now, marginMs: margin, pausedUntil: 0, maxGrants: 4 });
    for (const g of plan.granted) {
      log.push({ at: now, recipients: g.recipients });
      granted.push({ id: g.id, at: now, recipients: g.recipients });
    }
    queue.splice(0, plan.granted.length);
    now = plan.blockedUntil ?? now;
  }
  assert.deepEqual(
    granted.map((g) => g.id),
    [...granted.map((g) => g.id)].sort(),
    'granted in queue order',
  );
  for (const g of granted) {
    const minute = granted.filter((h) => h.at > g.at - MINUTE - margin && h.at <= g.at).reduce((n, h) => n + h.recipients, 0);
    const tenMin = granted.filter((h) => h.at > g.at - 10 * MINUTE - margin && h.at <= g.at).length;
    assert.ok(minute <= 7, `${minute} recipients in a minute at ${g.at}`);
    assert.ok(tenMin <= 30, `${tenMin} messages in ten minutes at ${g.at}`);
  }
});

test('an expired permit gives its slot back: without its grant, the next request goes at once', () => {
  const now = 30_000;
  const log: Grant[] = Array.from({ length: 5 }, (_, i) => ({ at: 10_000 + i, recipients: 1 }));
  assert.deepEqual(planGrants(log, perMinute5, [q('next')], opts(now)).granted, []);
  // The grant at 10_004 expired unused (its sender was too late): it leaves the log.
  const released = log.filter((g) => g.at !== 10_004);
  assert.deepEqual(planGrants(released, perMinute5, [q('next')], opts(now)).granted, [q('next')]);
});

test('grantLogCutoff: a grant is prunable once the longest window plus the margin has passed', () => {
  const rules: WindowRule[] = [
    { windowMs: MINUTE, max: 5, countBy: 'messages' },
    { windowMs: DAY, max: 2000, countBy: 'messages' },
  ];
  assert.equal(grantLogCutoff(rules, DAY + 5000, 2000), 3000);
  assert.equal(grantLogCutoff([], 5000, 2000), 3000);
  // A grant at the cutoff is seen by no window: earliestGrantTime ignores it too.
  const full: WindowRule[] = [{ windowMs: DAY, max: 1, countBy: 'messages' }];
  assert.equal(earliestGrantTime([{ at: 3000, recipients: 1 }], full, { recipients: 1 }, DAY + 5000, 2000), DAY + 5000);
});
