import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { postWebhook } from '../../src/activities/webhook-http';
import {
  decideAfterWebhookAttempt,
  DEFAULT_WEBHOOK_POLICY,
  laneOf,
  Lanes,
  parseRetryAfter,
  webhookPayload,
  type WebhookPolicy,
} from '../../src/domain/webhooks';
import { signWebhook, verifyWebhookSignature, webhookHeaders } from '../../src/security/webhook-signature';
import { deliveryIdFor } from '../../src/store/webhook-deliveries';

test('signature matches the Standard Webhooks test vector', () => {
  // From the reference libraries' "sign function works" test (standard-webhooks/libraries).
  const sig = signWebhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}');
  assert.equal(sig, 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
});

test('verification: valid, tampered, stale, other secret, rotated list', () => {
  const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
  const body = '{"type":"message.sent","timestamp":"2026-01-01T00:00:00.000Z","data":{}}';
  const h = webhookHeaders(secret, 'msg_abc', 1_700_000_000, body);
  const hdr = { id: h['webhook-id'], timestamp: h['webhook-timestamp'], signature: h['webhook-signature'] };
  assert.equal(verifyWebhookSignature(secret, hdr, body, 1_700_000_010), true);
  assert.equal(verifyWebhookSignature(secret, hdr, body.replace('sent', 'failed'), 1_700_000_010), false);
  assert.equal(verifyWebhookSignature(secret, { ...hdr, id: 'msg_other' }, body, 1_700_000_010), false);
  assert.equal(verifyWebhookSignature(secret, hdr, body, 1_700_000_000 + 301), false, 'older than the tolerance');
  assert.equal(verifyWebhookSignature('whsec_' + Buffer.alloc(32, 7).toString('base64'), hdr, body, 1_700_000_010), false);
  const rotated = { ...hdr, signature: `v1,AAAA v1a,xyz ${hdr.signature}` };
  assert.equal(verifyWebhookSignature(secret, rotated, body, 1_700_000_010), true, 'any of the space-separated signatures');
  assert.equal(verifyWebhookSignature(secret, { ...hdr, signature: undefined }, body, 1_700_000_010), false);
});

test('webhook ids are stable per event, distinct across events, and free of dots', () => {
  const a = deliveryIdFor('message.sent:m_1');
  assert.equal(a, deliveryIdFor('message.sent:m_1'));
  assert.notEqual(a, deliveryIdFor('message.sent:m_2'));
  assert.match(a, /^msg_[0-9a-f]{32}$/);
});

test('payload is {type, timestamp, data} with the event time', () => {
  const p = webhookPayload({ type: 'case.updated', createdAt: new Date('2026-03-01T10:00:00Z'), data: { caseId: 'c1' } });
  assert.deepEqual(p, { type: 'case.updated', timestamp: '2026-03-01T10:00:00.000Z', data: { caseId: 'c1' } });
});

const policy: WebhookPolicy = { initialMs: 1000, maxMs: 8000, giveUpMs: 60_000, timeoutMs: 1000 };
const at = (failuresSoFar: number, elapsed = 0) => ({ failuresSoFar, firstAttemptAt: 1_000_000, now: 1_000_000 + elapsed });

test('decisions: 2xx delivered; others retried with growing, capped, jittered delays', () => {
  assert.deepEqual(
    decideAfterWebhookAttempt({ status: 204, error: null }, at(0), policy, () => 0.5),
    { kind: 'delivered' },
  );
  const delay = (f: number, r: number) => {
    const d = decideAfterWebhookAttempt({ status: 500, error: null }, at(f), policy, () => r);
    assert.equal(d.kind, 'retry');
    return d.kind === 'retry' ? d.delayMs : -1;
  };
  assert.equal(delay(0, 0), 500);
  assert.equal(delay(0, 1), 1000);
  assert.equal(delay(1, 1), 2000);
  assert.equal(delay(2, 1), 4000);
  assert.equal(delay(10, 1), 8000, 'capped at maxMs');
  for (const o of [
    { status: 302, error: null },
    { status: 404, error: null },
    { status: 429, error: null },
    { status: null, error: 'no response within 1000 ms' },
  ]) {
    assert.equal(decideAfterWebhookAttempt(o, at(0), policy, () => 0).kind, 'retry', JSON.stringify(o));
  }
});

test('decisions: Retry-After is honoured up to maxMs', () => {
  const d = decideAfterWebhookAttempt({ status: 503, error: null, retryAfterMs: 5000 }, at(0), policy, () => 0);
  assert.deepEqual(d, { kind: 'retry', delayMs: 5000, reason: 'HTTP 503' });
  const capped = decideAfterWebhookAttempt({ status: 503, error: null, retryAfterMs: 3_600_000 }, at(0), policy, () => 0);
  assert.equal(capped.kind === 'retry' && capped.delayMs, 8000);
});

test('decisions: give up when the next attempt would fall past giveUpMs; 410 disables; refused fails at once', () => {
  const last = decideAfterWebhookAttempt({ status: 500, error: null }, at(5, 57_000), policy, () => 1);
  assert.equal(last.kind, 'failed');
  assert.match(last.kind === 'failed' ? last.reason : '', /HTTP 500; gave up after 6 attempts/);
  assert.deepEqual(
    decideAfterWebhookAttempt({ status: 410, error: null }, at(0), policy, () => 0),
    {
      kind: 'failed',
      reason: 'HTTP 410: the endpoint is gone; webhook disabled',
      disable: true,
    },
  );
  const refused = decideAfterWebhookAttempt({ status: null, error: 'refused', refused: true }, at(0), policy, () => 0);
  assert.deepEqual(refused, { kind: 'failed', reason: 'refused', disable: false });
  assert.equal(DEFAULT_WEBHOOK_POLICY.giveUpMs, 3 * 24 * 3600_000, 'three days by default');
});

test('Retry-After: seconds, HTTP date, garbage', () => {
  assert.equal(parseRetryAfter('120', 0), 120_000);
  assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6_000);
  assert.equal(parseRetryAfter('soon', 0), null);
  assert.equal(parseRetryAfter(undefined, 0), null);
});

test('lanes: per case, else per message, else per event', () => {
  assert.equal(laneOf({ _id: 'e1', caseId: 'c1', messageId: 'm1' }), 'case:c1');
  assert.equal(laneOf({ _id: 'e1', caseId: null, messageId: 'm1' }), 'message:m1');
  assert.equal(laneOf({ _id: 'e1', caseId: null, messageId: null }), 'event:e1');
});

test('lanes keep event order within a lane, ignore repeats, and never displace a head in flight', () => {
  const l = new Lanes();
  assert.equal(l.add({ id: 'a2', lane: 'case:a', at: 20 }), true);
  l.add({ id: 'a3', lane: 'case:a', at: 30 });
  l.add({ id: 'b1', lane: 'case:b', at: 15 });
  assert.equal(l.add({ id: 'a3', lane: 'case:a', at: 30 }), false, 'a repeat handover is ignored');
  l.add({ id: 'a1', lane: 'case:a', at: 10 }); // late, older than a2 which may be in flight
  assert.deepEqual(
    l.lanes.get('case:a')!.queue.map((e) => e.id),
    ['a2', 'a1', 'a3'],
  );
  l.add({ id: 'a25', lane: 'case:a', at: 25 });
  assert.deepEqual(
    l.lanes.get('case:a')!.queue.map((e) => e.id),
    ['a2', 'a1', 'a25', 'a3'],
  );
  assert.deepEqual(l.ready(new Set()), ['case:b', 'case:a'], 'oldest head first');
  assert.deepEqual(l.ready(new Set(['case:b'])), ['case:a']);
  assert.equal(l.hasReady(new Set(['case:a', 'case:b'])), false);
  l.shift('case:b');
  assert.equal(l.lanes.has('case:b'), false);
  assert.equal(l.add({ id: 'b1', lane: 'case:b', at: 15 }), true, 'a finished event may be handed over again (the activity skips it)');
  const carried = new Lanes(l.snapshot());
  assert.equal(carried.size, l.size);
  assert.equal(carried.add({ id: 'a3', lane: 'case:a', at: 30 }), false, 'dedupe survives continue-as-new');
});

test('the private-network guard refuses loopback unless allowed, before any connection', async () => {
  let hits = 0;
  const server = createServer((_req, res) => {
    hits++;
    res.writeHead(204).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  try {
    const refused = await postWebhook({ url, headers: {}, body: '{}', timeoutMs: 2000, allowPrivateNetworks: [] });
    assert.equal(refused.refused, true);
    assert.match(refused.error ?? '', /loopback address; allowed only when WEBHOOK_ALLOW_PRIVATE_NETWORKS includes "loopback"/);
    assert.equal(hits, 0);
    const mapped = await postWebhook({
      url: url.replace('127.0.0.1', '[::ffff:127.0.0.1]'),
      headers: {},
      body: '{}',
      timeoutMs: 2000,
      allowPrivateNetworks: [],
    });
    assert.equal(mapped.refused, true, 'IPv4-mapped IPv6 is unwrapped');
    const meta = await postWebhook({
      url: 'http://169.254.169.254/latest',
      headers: {},
      body: '{}',
      timeoutMs: 2000,
      allowPrivateNetworks: ['loopback'],
    });
    assert.equal(meta.refused, true, 'cloud metadata (link-local) stays refused');
    const ok = await postWebhook({ url, headers: {}, body: '{}', timeoutMs: 2000, allowPrivateNetworks: ['loopback'] });
    assert.equal(ok.status, 204);
    assert.equal(hits, 1);
  } finally {
    server.close();
  }
});

test('a receiver that never answers is cut off at the timeout', async () => {
  const server = createServer(() => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const res = await postWebhook({
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
      headers: {},
      body: '{}',
      timeoutMs: 300,
      allowPrivateNetworks: ['loopback'],
    });
    assert.equal(res.status, null);
    assert.equal(res.error, 'no response within 300 ms');
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
