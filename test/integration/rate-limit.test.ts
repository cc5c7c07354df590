import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { queryLimiterStats } from '../../src/temporal/handoffs/rate-limiter';
import { makeTestPki } from '../support/certs';
import { eventually, SmtpPeer } from '../support/smtp-peer';
import { api, createPeerTenant, startStack, type Stack } from '../support/stack';

/**
 * 5 messages per minute with 12 queued: the SMTP server's own arrival times never show 6 inside
 * any 60-second window, the queue drains first-in first-out, and the limiter's work is linear
 * (one request, one grant and at most one timer wake-up per message). Takes a little over 2 minutes.
 */
let stack: Stack;
let peer: SmtpPeer;

before(async () => {
  const pki = makeTestPki(['localhost']);
  [stack, peer] = await Promise.all([
    startStack({ RATE_LIMIT_MARGIN_MS: '2000' }),
    SmtpPeer.start({ implicitTls: false, key: pki.serverKey, cert: pki.serverCert, users: { u: 'p' } }),
  ]);
  await createPeerTenant(stack, 'limited', peer, pki.caCert, { limits: { perMinute: { max: 5, countBy: 'messages' } } });
});
after(async () => {
  await Promise.all([stack?.stop(), peer?.stop()]);
});

test('12 queued messages at 5/minute: never 6 arrivals in any 60 s window, FIFO, linear limiter work', { timeout: 240_000 }, async () => {
  const ids: string[] = [];
  const rfcIds: string[] = [];
  for (let i = 0; i < 12; i++) {
    const r = await api(stack, 'POST', '/v1/messages', {
      key: stack.adminKey,
      body: { tenantId: 'limited', from: 'a@acme.example', to: [`r${i}@customer.example`], subject: `n${i}`, text: 'x' },
    });
    assert.equal(r.status, 202);
    ids.push(r.body.id);
    rfcIds.push(r.body.messageId);
  }
  // While the first window is used up, the rest visibly wait.
  await eventually(
    async () => (await stack.messages.col.countDocuments({ tenantId: 'limited', status: 'waiting_rate_limit' })) >= 6,
    20_000,
    'messages waiting for a slot',
  );
  await eventually(() => peer.messages().length === 12, 200_000, 'all 12 delivered');

  const arrivals = peer
    .messages()
    .map((m) => m.at)
    .sort((a, b) => a - b);
  for (let i = 0; i + 5 < arrivals.length; i++) {
    const span = arrivals[i + 5]! - arrivals[i]!;
    assert.ok(span >= 60_000, `arrivals ${i}..${i + 5} within ${span} ms: 6 messages inside one minute`);
  }
  // FIFO by window. Arrivals cluster into one burst per window; inside a burst, order depends on
  // which of the pooled connections finishes first, so only the sets are compared. The first
  // burst is granted at once to whichever requests reach the limiter first (a race of a few ms),
  // so it may hold any of the first few accepted; every later burst is strictly the next in line.
  const sorted = peer.messages().sort((a, b) => a.at - b.at);
  const bursts: number[][] = [];
  let prev = -Infinity;
  for (const m of sorted) {
    if (m.at - prev > 30_000) bursts.push([]);
    bursts.at(-1)!.push(rfcIds.indexOf(m.messageId));
    prev = m.at;
  }
  assert.deepEqual(
    bursts.map((b) => b.length),
    [5, 5, 2],
    JSON.stringify(bursts),
  );
  assert.ok(
    bursts[0]!.every((i) => i < 8),
    `first burst ${bursts[0]!.join(',')} not among the first accepted`,
  );
  assert.ok(Math.max(...bursts[1]!) < Math.min(...bursts[2]!), `later bursts out of order: ${JSON.stringify(bursts)}`);

  const stats = await queryLimiterStats(stack.temporal, 'limited');
  assert.equal(stats.requests, 12, 'one permit request per message');
  assert.equal(stats.grants, 12, 'one grant per message');
  assert.ok(stats.wakeups <= 12, `timer wake-ups ${stats.wakeups} > messages`);
  for (const id of ids) assert.equal((await stack.messages.get('limited', id)).status, 'sent');
});
