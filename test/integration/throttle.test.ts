import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { queryLimiterStats } from '../../src/temporal/handoffs/rate-limiter';
import { makeTestPki } from '../support/certs';
import { eventually, SmtpPeer } from '../support/smtp-peer';
import { api, createPeerTenant, startStack, type Stack } from '../support/stack';

/**
 * A throttling reply pushes the whole tenant back, not just the message that got it: after a
 * `421 4.7.0` the limiter grants nothing until the pause is over, so the messages queued behind
 * it reach the server only after that moment (as the server's own arrival times show).
 */
const PAUSE_MS = 12_000;
let stack: Stack;
let peer: SmtpPeer;

before(async () => {
  const pki = makeTestPki(['localhost']);
  [stack, peer] = await Promise.all([
    startStack({ SEND_THROTTLE_PAUSE_MS: String(PAUSE_MS), SEND_RETRY_INITIAL_MS: '500', SEND_RETRY_MAX_MS: '1000' }),
    SmtpPeer.start({
      implicitTls: false,
      key: pki.serverKey,
      cert: pki.serverCert,
      users: { u: 'p' },
      dataReplies: [{ code: 421, text: '4.7.0 Rate limited, too many messages from this account' }],
    }),
  ]);
  // A generous limit: only the throttling reply can hold anything back here.
  await createPeerTenant(stack, 'throttled', peer, pki.caCert, { limits: { perMinute: { max: 1000, countBy: 'messages' } } });
});
after(async () => {
  await Promise.all([stack?.stop(), peer?.stop()]);
});

async function send(i: number): Promise<{ id: string; messageId: string }> {
  const r = await api(stack, 'POST', '/v1/messages', {
    key: stack.adminKey,
    body: { tenantId: 'throttled', from: 'a@acme.example', to: [`r${i}@customer.example`], subject: `t${i}`, text: 'x' },
  });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return r.body;
}

test(
  '421 4.7.0 pauses the tenant: no message reaches the server until the pause ends, then all go once',
  { timeout: 120_000 },
  async () => {
    const first = await send(0);
    await eventually(() => peer.events.some((e) => e.type === 'rejected' && e.stage === 'data'), 30_000, 'the throttling reply');
    const rejectedAt = peer.events.find((e) => e.type === 'rejected')!.at;
    await eventually(
      async () => (await queryLimiterStats(stack.temporal, 'throttled')).pausedUntil > 0,
      20_000,
      'the limiter to hear of the throttling',
    );
    const { pausedUntil } = await queryLimiterStats(stack.temporal, 'throttled');
    assert.ok(pausedUntil >= rejectedAt, `paused until ${pausedUntil}, before the 421 at ${rejectedAt}`);

    const others = [await send(1), await send(2), await send(3)];
    await eventually(() => peer.messages().length === 4, 90_000, 'all four delivered');
    for (const m of peer.messages()) {
      assert.ok(m.at >= pausedUntil, `${m.messageId} arrived ${pausedUntil - m.at} ms before the pause ended`);
    }
    // Each exactly once, the throttled one included.
    const ids = peer
      .messages()
      .map((m) => m.messageId)
      .sort();
    assert.deepEqual(ids, [first, ...others].map((m) => m.messageId).sort());
    // The server has the bytes a moment before the workflow records the 250.
    for (const m of [first, ...others]) {
      await eventually(async () => (await stack.messages.get('throttled', m.id)).status === 'sent', 20_000, `${m.id} recorded sent`);
    }
    const firstDoc = await stack.messages.get('throttled', first.id);
    assert.deepEqual(
      firstDoc.attempts.map((a) => a.outcome),
      ['throttled', 'accepted'],
    );
  },
);
