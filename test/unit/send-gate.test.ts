import assert from 'node:assert/strict';
import { test } from 'node:test';
import { busyRetryDelayMs, SendGate } from '../../src/activities/send-gate';

test('a tenant gets min(maxConnections, the process cap) attempts; others are not held back by it', () => {
  const gate = new SendGate(3, 100);
  const a = [gate.tryEnter('a', 2, false), gate.tryEnter('a', 2, false)];
  assert.ok(a.every(Boolean));
  assert.equal(gate.tryEnter('a', 2, false), null, 'a third attempt of a 2-connection tenant waits');
  assert.ok(gate.tryEnter('b', 2, false), 'another tenant still gets in');
  const big = [1, 2, 3].map(() => gate.tryEnter('c', 50, false));
  assert.ok(big.every(Boolean));
  assert.equal(gate.tryEnter('c', 50, false), null, 'the process cap bounds a tenant with many connections');
  a[0]!();
  a[0]!();
  assert.equal(gate.inFlight('a'), 1, 'a release counts once');
  assert.ok(gate.tryEnter('a', 2, false), 'a released slot is free again');
});

test('local attempts share a process-wide cap; regular attempts do not count against it', () => {
  const gate = new SendGate(10, 2);
  const l1 = gate.tryEnter('a', 5, true);
  const l2 = gate.tryEnter('b', 5, true);
  assert.ok(l1 && l2);
  assert.equal(gate.tryEnter('c', 5, true), null, 'a third local attempt goes to a regular activity');
  assert.ok(gate.tryEnter('c', 5, false), 'a regular attempt of the same tenant gets in');
  l1();
  assert.ok(gate.tryEnter('c', 5, true));
});

test('a refused regular attempt waits 1 s doubling to 30 s, jittered ±25 %', () => {
  assert.equal(
    busyRetryDelayMs(1, () => 0.5),
    1_000,
  );
  assert.equal(
    busyRetryDelayMs(2, () => 0.5),
    2_000,
  );
  assert.equal(
    busyRetryDelayMs(6, () => 0.5),
    30_000,
  );
  assert.equal(
    busyRetryDelayMs(60, () => 0.5),
    30_000,
  );
  assert.equal(
    busyRetryDelayMs(1, () => 0),
    750,
  );
  assert.equal(
    busyRetryDelayMs(6, () => 1),
    37_500,
  );
});

test('a regular attempt waits for its tenant’s next free slot (FIFO), within the waiters bound and the wait limit', async () => {
  const gate = new SendGate(2, 0, 2, 200);
  const held = [gate.tryEnter('a', 2, false)!, gate.tryEnter('a', 2, false)!];
  const order: string[] = [];
  const first = gate.enter('a', 2, () => undefined).then((r) => (order.push('first'), r));
  const second = gate.enter('a', 2, () => undefined).then((r) => (order.push('second'), r));
  // Two wait already: the third is refused at once (it is retried later, as before).
  assert.equal(await gate.enter('a', 2, () => undefined), null);
  assert.ok(gate.tryEnter('b', 2, false), 'another tenant is not held back by a waiting one');
  held[0]!();
  const r1 = await first;
  assert.ok(r1, 'the oldest waiter got the freed slot');
  assert.equal(gate.inFlight('a'), 2, 'handed on, not added');
  // Nothing more frees: the second waiter gives up after the wait limit.
  assert.equal(await second, null);
  assert.deepEqual(order, ['first', 'second']);
  r1();
  held[1]!();
  assert.equal(gate.inFlight('a'), 0);
  assert.ok(await gate.enter('a', 2, () => undefined), 'free slots are taken without waiting');
});

test('refused attempts get places in the tenant’s line, spread at the rate its attempts end', () => {
  const gate = new SendGate(5, 0, 0, 0);
  // The tenant's attempts take ~100 ms: five slots free one every ~20 ms.
  for (let i = 0; i < 20; i++) gate.noteAttempt('a', 100);
  const held = [1, 2, 3, 4, 5].map(() => gate.tryEnter('a', 5, false)!);
  const now = 1_000_000;
  const delays = Array.from({ length: 200 }, () => gate.retryDelayMs('a', 5, 1, () => 0.5, now));
  for (let i = 1; i < delays.length; i++) assert.ok(delays[i]! >= delays[i - 1]!, 'later refusals come back later');
  assert.equal(delays[0], 250, 'the first one soon (a quarter of the first busy delay)');
  assert.ok(delays[199]! < 200 * 1_000, `the 200th within its place in line, not at 30 s doublings: ${delays[199]} ms`);
  assert.ok(delays[199]! > delays[100]!, 'the line advances');
  // Another tenant's line is its own.
  assert.equal(
    gate.retryDelayMs('b', 5, 1, () => 0.5, now),
    250,
  );
  for (const r of held) r();
});

test('while its tenant is moving, a burst waits past the waiters bound (up to its own bound, if its turn comes in time); a stalled tenant does not', async () => {
  const moving = new SendGate(1, 0, 1, 1_000, 3);
  moving.noteAttempt('a', 100); // an attempt of 'a' just ended: ~100 ms per attempt on its one slot
  const held = moving.tryEnter('a', 1, false)!;
  const waits = [1, 2, 3].map(() => moving.enter('a', 1, () => undefined));
  assert.equal(await moving.enter('a', 1, () => undefined), null, 'the moving bound (3) is full: refused at once');
  assert.equal(moving.wouldRefuse('a', 1), true);
  held();
  for (const w of waits) (await w)!(); // each gets the slot in turn, FIFO
  assert.equal(moving.inFlight('a'), 0);
  assert.equal(moving.wouldRefuse('a', 1), false, 'a free slot');

  const stalled = new SendGate(1, 0, 1, 1_000, 3);
  stalled.noteAttempt('b', 100, Date.now() - 5_000); // its last attempt ended 5 s ago
  const heldB = stalled.tryEnter('b', 1, false)!;
  const first = stalled.enter('b', 1, () => undefined);
  assert.equal(await stalled.enter('b', 1, () => undefined), null, 'only the plain bound (1) for a tenant that does not move');
  assert.equal(stalled.wouldRefuse('b', 1), true);
  heldB();
  (await first)!();

  const slow = new SendGate(1, 0, 1, 1_000, 3);
  slow.noteAttempt('c', 800); // moving, but its second waiter's turn would come after 1.6 s > 1 s
  const heldC = slow.tryEnter('c', 1, false)!;
  const firstC = slow.enter('c', 1, () => undefined);
  assert.equal(await slow.enter('c', 1, () => undefined), null, 'a wait that would outlast SEND_GATE_WAIT_MS is not taken');
  heldC();
  (await firstC)!();
});
