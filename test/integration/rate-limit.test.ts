import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { limiterStatsQuery } from '../../src/workflows/rate-limiter';
import { makeTestPki } from '../support/certs';
import { eventually, SmtpPeer } from '../support/smtp-peer';
import { api, startStack, type Stack } from '../support/stack';

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
  const r = await api(stack, 'POST', '/v1/tenants', {
    key: stack.adminKey,
    body: {
      id: 'limited',
      name: 'Limited',
      domains: ['acme.example'],
      smtp: { host: 'localhost', port: peer.port, security: 'starttls', tls: { ca: pki.caCert } },
      auth: { type: 'password', user: 'u', password: 'p' },
      limits: { perMinute: { max: 5, countBy: 'messages' } },
    },
  });
  assert.equal(r.status, 201);
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
  await eventually(async () => (await stack.messages.col.countDocuments({ tenantId: 'limited', status: 'waiting_rate_limit' })) >= 6, 20_000, 'messages waiting for a slot');
  await eventually(() => peer.messages().length === 12, 200_000, 'all 12 delivered');

  const arrivals = peer.messages().map((m) => m.at).sort((a, b) => a - b);
  for (let i = 0; i + 5 < arrivals.length; i++) {
    const span = arrivals[i + 5]! - arrivals[i]!;
    assert.ok(span >= 60_000, `arrivals ${i}..${i + 5} within ${span} ms: 6 messages inside one minute`);
  }
  // Roughly FIFO: requests racing in the first milliseconds may swap, and a burst of grants goes
  // out over several connections, but no message is overtaken by more than two later ones.
  const order = peer.messages().sort((a, b) => a.at - b.at).map((m) => rfcIds.indexOf(m.messageId));
  order.forEach((accepted, delivered) => assert.ok(Math.abs(accepted - delivered) <= 2, `accepted #${accepted} delivered #${delivered}: ${order.join(',')}`));
  // Those that had to wait were granted strictly in acceptance order (the limiter's queue is sorted).
  const waited = order.slice(5).sort((a, b) => a - b);
  assert.deepEqual(order.slice(5, 10).sort((a, b) => a - b), waited.slice(0, 5));

  const stats = await stack.temporal.workflow.getHandle('ratelimit-limited').query(limiterStatsQuery);
  assert.equal(stats.requests, 12, 'one permit request per message');
  assert.equal(stats.grants, 12, 'one grant per message');
  assert.ok(stats.wakeups <= 12, `timer wake-ups ${stats.wakeups} > messages`);
  for (const id of ids) assert.equal((await stack.messages.get('limited', id)).status, 'sent');
});
