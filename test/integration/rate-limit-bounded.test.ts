import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { temporal as proto } from '@temporalio/proto';
import { createMessageActivities } from '../../src/activities/messages';
import { SendGate } from '../../src/activities/send-gate';
import { SmtpPools } from '../../src/activities/smtp-transport';
import type { GrantDoc, PermitRequestDoc } from '../../src/store/permits';
import { queryLimiterStats, rateLimiterWorkflowId, wakeLimiter } from '../../src/temporal/handoffs/rate-limiter';
import { sendWorkflowId } from '../../src/temporal/handoffs/send-message';
import { makeTestPki, type TestPki } from '../support/certs';
import { eventually, SmtpPeer } from '../support/smtp-peer';
import { api, createPeerTenant, messageUntil, startStack, type Stack } from '../support/stack';

/**
 * The rate limiter's queue and grant log live in the store (src/store/permits.ts); the workflow
 * carries counters. Shown on a real Temporal dev server and FerretDB, nothing mocked:
 * - 20,000 requests waiting at a 2,000/day tenant: every run's history stays under HISTORY_BOUND
 *   events and what it carries into the next run under INPUT_BOUND bytes, also while it sleeps on
 *   the exhausted day and senders keep re-asking; the first 2,000 in line get the day's slots.
 * - 5/minute: grants in FIFO order, never 6 in a window, across continue-as-new and across a
 *   terminated limiter replaced by a new one (it reads the grant log).
 * - A permit that expired unused gives its slot back and its request keeps its place in line.
 * - A message that waits longer than SEND_RATE_LIMIT_MAX_WAIT_MS for a slot ends `failed`.
 */
const MARGIN_MS = 2000;
/** Small, to force hand-overs: a run continues as new past this many events. */
const HISTORY_LIMIT = 120;
/** A run's history: the limit plus what one turn can add (its signals, a tick, a timer). */
const HISTORY_BOUND = HISTORY_LIMIT + 200;
/** What a run carries into the next (its start input, encrypted): counters, not the queue. */
const INPUT_BOUND = 2048;

let stack: Stack;
let peer: SmtpPeer;
let pki: TestPki;

before(async () => {
  pki = makeTestPki(['localhost']);
  [stack, peer] = await Promise.all([
    startStack({ RATE_LIMIT_MARGIN_MS: String(MARGIN_MS) }),
    SmtpPeer.start({ implicitTls: false, key: pki.serverKey, cert: pki.serverCert, users: { u: 'p' } }),
  ]);
});
after(async () => {
  for (const t of ['daily', 'minute', 'expiry']) {
    await stack?.temporal.workflow
      .getHandle(rateLimiterWorkflowId(t))
      .terminate('test over')
      .catch(() => undefined);
  }
  await Promise.all([stack?.stop(), peer?.stop()]);
});

const requests = () => stack.store.db.collection<PermitRequestDoc>('permit_requests');
const grants = () => stack.store.db.collection<GrantDoc>('permit_grants');
const wake = (tenantId: string, historyLimit = HISTORY_LIMIT) =>
  wakeLimiter(stack.temporal, stack.config.temporal.taskQueue, tenantId, MARGIN_MS, 'request', { historyLimit });

/** Queues `n` requests (as the requestPermit activity stores them), `concurrency` at a time. */
async function enqueue(tenantId: string, ids: string[], acceptedAt: (i: number) => number, concurrency = 50): Promise<void> {
  for (let i = 0; i < ids.length; i += concurrency) {
    await Promise.all(
      ids
        .slice(i, i + concurrency)
        .map((id, j) =>
          stack.repos.permits.enqueue(
            tenantId,
            { workflowId: sendWorkflowId(tenantId, id), recipients: 1, acceptedAt: acceptedAt(i + j) },
            Date.now(),
          ),
        ),
    );
  }
}

/** Every run of the tenant's limiter so far: id, status, history length and start input size. */
async function runsOf(tenantId: string) {
  const workflowId = rateLimiterWorkflowId(tenantId);
  const runs: Array<{ runId: string; status: string; events: number; inputBytes: number; historyBytes: number }> = [];
  for await (const r of stack.temporal.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
    const history = await stack.temporal.workflow.getHandle(workflowId, r.runId).fetchHistory();
    const events = history.events ?? [];
    const input = events[0]?.workflowExecutionStartedEventAttributes?.input;
    runs.push({
      runId: r.runId,
      status: r.status.name,
      events: events.length,
      inputBytes: input ? proto.api.common.v1.Payloads.encode(input).finish().length : 0,
      historyBytes: proto.api.history.v1.History.encode(history).finish().length,
    });
  }
  return runs;
}

describe('store-backed rate limiter', { concurrency: true }, () => {
  test(
    '20,000 waiting at 2,000/day: bounded history and carried state per run, first 2,000 in line granted',
    { timeout: 300_000 },
    async () => {
      const t = 'daily';
      await createPeerTenant(stack, t, peer, pki.caCert, { limits: { perDay: { max: 2000, countBy: 'messages' } } });
      const ids = Array.from({ length: 20_000 }, (_, i) => `m${String(i).padStart(5, '0')}`);
      const base = Date.now() - 60_000;
      // Accepted in reverse id order, so the queue's order is the acceptance time, not the id.
      await enqueue(t, ids, (i) => base + (ids.length - i));
      assert.equal(await requests().countDocuments({ tenantId: t }), 20_000);
      await wake(t);
      await eventually(async () => (await queryLimiterStats(stack.temporal, t)).grants >= 2000, 180_000, '2,000 grants');
      await eventually(async () => (await queryLimiterStats(stack.temporal, t)).queued === 18_000, 30_000, 'the rest queued');

      const granted = await grants().find({ tenantId: t }).toArray();
      assert.equal(granted.length, 2000, 'exactly the day cap granted');
      const firstInLine = new Set(ids.slice(-2000).map((id) => sendWorkflowId(t, id)));
      assert.ok(
        granted.every((g) => firstInLine.has(g.workflowId)),
        'the 2,000 earliest accepted got the day',
      );
      assert.equal(await requests().countDocuments({ tenantId: t }), 18_000);

      // Asleep on the exhausted day, senders keep re-asking: each wake-up is history, and the run
      // hands over while it sleeps rather than growing.
      const { runId: sleeping } = await stack.temporal.workflow.getHandle(rateLimiterWorkflowId(t)).describe();
      for (let i = 0; i < 150; i += 10) await Promise.all(Array.from({ length: 10 }, () => wake(t)));
      await eventually(
        async () => (await stack.temporal.workflow.getHandle(rateLimiterWorkflowId(t)).describe()).runId !== sleeping,
        30_000,
        'a hand-over while sleeping',
      );
      const stats = await queryLimiterStats(stack.temporal, t);
      assert.equal(stats.grants, 2000, 'no grant past the day cap after the hand-over');
      assert.equal(await grants().countDocuments({ tenantId: t }), 2000);

      const runs = await eventually(
        async () => {
          const r = await runsOf(t);
          return r.some((x) => x.status === 'CONTINUED_AS_NEW') ? r : undefined;
        },
        30_000,
        'the continued run listed',
      );
      // What the bounds below are measured on, for the record.
      process.stdout.write(`# limiter runs: ${JSON.stringify(runs)}\n`);
      for (const r of runs) {
        assert.ok(r.events <= HISTORY_BOUND, `run ${r.runId}: ${r.events} events > ${HISTORY_BOUND}`);
        assert.ok(r.inputBytes <= INPUT_BOUND, `run ${r.runId}: start input ${r.inputBytes} bytes > ${INPUT_BOUND}`);
        // Nothing in a run's history scales with the 20,000: its events are ticks, wake-ups and timers.
        assert.ok(r.historyBytes <= 200 * 1024, `run ${r.runId}: history ${r.historyBytes} bytes`);
      }
    },
  );

  test('5/minute: FIFO grants, never 6 in a window, across continue-as-new and a replaced limiter', { timeout: 240_000 }, async () => {
    const t = 'minute';
    await createPeerTenant(stack, t, peer, pki.caCert, { limits: { perMinute: { max: 5, countBy: 'messages' } } });
    const ids = Array.from({ length: 12 }, (_, i) => `q${String(i).padStart(2, '0')}`);
    const base = Date.now() - 10_000;
    await enqueue(t, ids, (i) => base + i * 10);
    const seen = new Map<string, GrantDoc>();
    let watching = true;
    const watcher = (async () => {
      // Grants stay in the log for a window and the margin (62 s): a poll every 300 ms sees each.
      while (watching) {
        for (const g of await grants().find({ tenantId: t }).toArray()) seen.set(g._id, g);
        await new Promise((r) => setTimeout(r, 300));
      }
    })();
    try {
      // A hand-over after about every turn (a turn is about 6 events).
      await wake(t, 10);
      await eventually(() => seen.size >= 5, 60_000, 'the first window');
      // The limiter is replaced mid-way: terminated, and a new run started by the next wake-up.
      await stack.temporal.workflow.getHandle(rateLimiterWorkflowId(t)).terminate('replaced');
      await wake(t, 10);
      const replaced = (await stack.temporal.workflow.getHandle(rateLimiterWorkflowId(t)).describe()).runId;
      await eventually(() => seen.size >= 10, 150_000, 'the second window');
      assert.equal((await stack.temporal.workflow.getHandle(rateLimiterWorkflowId(t)).describe()).status.name, 'RUNNING');
      // Terminated once; continued as new (a turn or so after the replacement's first grants).
      const runs = await eventually(
        async () => {
          const r = await runsOf(t);
          return r.some((x) => x.status === 'TERMINATED') && r.some((x) => x.status === 'CONTINUED_AS_NEW') ? r : undefined;
        },
        30_000,
        'a terminated run and a hand-over',
      );
      assert.ok(runs.some((r) => r.runId === replaced));
      for (const r of runs) assert.ok(r.inputBytes <= INPUT_BOUND, `run ${r.runId}: start input ${r.inputBytes} bytes`);
    } finally {
      watching = false;
      await watcher;
    }
    const order = [...seen.values()].sort((a, b) => a.at - b.at || (a.workflowId < b.workflowId ? -1 : 1));
    const position = (g: GrantDoc) => ids.findIndex((id) => sendWorkflowId(t, id) === g.workflowId);
    assert.deepEqual(order.map(position).slice(0, 10), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'granted in the order accepted');
    for (const g of order) {
      const inWindow = order.filter((h) => h.at > g.at - 60_000 && h.at <= g.at).length;
      assert.ok(inWindow <= 5, `${inWindow} grants in the minute up to ${g.at}`);
    }
  });

  test('a permit that expired unused gives its slot back; its request keeps its place', { timeout: 120_000 }, async () => {
    const t = 'expiry';
    const key = await createPeerTenant(stack, t, peer, pki.caCert, { limits: { perMinute: { max: 1, countBy: 'messages' } } });
    // A real message whose workflow waits (scheduled), so nothing but this test uses its permit.
    const r = await api(stack, 'POST', '/v1/messages', {
      key,
      body: {
        from: 'a@acme.example',
        to: ['x@customer.example'],
        subject: 's',
        text: 'x',
        sendAt: new Date(Date.now() + 3_600_000).toISOString(),
      },
    });
    assert.equal(r.status, 202);
    const doc = await stack.messages.get(t, r.body.id);
    await stack.repos.permits.enqueue(t, { workflowId: doc.workflowId, recipients: 1, acceptedAt: doc.createdAt.getTime() }, Date.now());
    await wake(t);
    const first = await eventually(() => grants().findOne({ tenantId: t, workflowId: doc.workflowId }), 30_000, 'the grant');
    // Someone later in line waits for the one slot.
    const later = sendWorkflowId(t, 'm_later');
    await stack.repos.permits.enqueue(t, { workflowId: later, recipients: 1, acceptedAt: Date.now() }, Date.now());
    await wake(t);
    await eventually(async () => (await queryLimiterStats(stack.temporal, t)).queued === 1, 30_000, 'the later one waiting');

    // The real attempt activity, handed a permit older than its margin.
    const acts = createMessageActivities({
      ...stack.repos,
      pools: new SmtpPools([]),
      gate: new SendGate(10, 0),
      temporal: stack.temporal,
      taskQueue: stack.config.temporal.taskQueue,
    });
    const res = await acts.attemptDelivery({
      tenantId: t,
      id: doc._id,
      attempt: 1,
      permitGrantedAt: first.at,
      permitMarginMs: 100,
      policy: stack.config.send.policy,
      elapsedMs: 0,
      failuresSoFar: 0,
    });
    assert.equal(res.next.kind, 'permit_expired');
    // Its slot is free again, and its place is ahead of the later request: it gets the slot again,
    // long before the window (60 s) would have freed one.
    const again = await eventually(
      () => grants().findOne({ tenantId: t, workflowId: doc.workflowId, at: { $gt: first.at } }),
      30_000,
      'the slot handed back to the first in line',
    );
    assert.ok(again.at - first.at < 60_000);
    assert.equal(await grants().countDocuments({ tenantId: t }), 1, 'the expired grant left the log');
    assert.ok(await requests().findOne({ tenantId: t, workflowId: later }), 'the later request still waits');
  });

  test('a message waiting longer than SEND_RATE_LIMIT_MAX_WAIT_MS for a slot fails, with the reason', { timeout: 120_000 }, async () => {
    const giveUp = await startStack({ RATE_LIMIT_MARGIN_MS: String(MARGIN_MS), SEND_RATE_LIMIT_MAX_WAIT_MS: '4000' });
    try {
      const t = 'patience';
      const key = await createPeerTenant(giveUp, t, peer, pki.caCert, { limits: { perMinute: { max: 1, countBy: 'messages' } } });
      const send = async (subject: string) => {
        const r = await api(giveUp, 'POST', '/v1/messages', {
          key,
          body: { from: 'a@acme.example', to: ['y@customer.example'], subject, text: 'x' },
        });
        assert.equal(r.status, 202);
        return r.body.id as string;
      };
      await messageUntil(giveUp, key, await send('first'), ['sent'], 30_000);
      const second = await send('second');
      await messageUntil(giveUp, key, second, ['waiting_rate_limit'], 30_000);
      const failed = await messageUntil(giveUp, key, second, ['failed', 'sent'], 40_000);
      assert.equal(failed.status, 'failed');
      assert.match(String(failed.reason), /for a rate-limit slot, longer than the 4 s allowed/);
      const wf = (await giveUp.messages.get(t, second)).workflowId;
      assert.deepEqual(await giveUp.temporal.workflow.getHandle(wf).result(), { status: 'failed' });
      assert.ok(
        await giveUp.store.db.collection('events').findOne({ tenantId: t, type: 'message.failed', 'data.messageId': second }),
        'message.failed announced',
      );
      assert.equal(peer.messages().filter((m) => m.raw.includes('Subject: second')).length, 0, 'never sent');
      assert.equal(await giveUp.store.db.collection('permit_requests').countDocuments({ tenantId: t }), 0);
    } finally {
      await giveUp.temporal.workflow
        .getHandle(rateLimiterWorkflowId('patience'))
        .terminate('test over')
        .catch(() => undefined);
      await giveUp.stop();
    }
  });
});
