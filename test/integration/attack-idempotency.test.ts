import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { makeTestPki, type TestPki } from '../support/certs';
import { eventually, SmtpPeer } from '../support/smtp-peer';
import { api, createPeerTenant, startStack, type Stack } from '../support/stack';

/**
 * Issue 12, item 7: idempotency keys. Concurrent requests with one key must make one message
 * whose envelope and MIME belong to the same request, and a key must not be reused for another
 * payload. Real API, workflow, store and an SMTP server process that shows what arrived.
 */
let stack: Stack;
let pki: TestPki;
let peer: SmtpPeer;
let key: string;
const tenantId = 'idem-1';

before(async () => {
  pki = makeTestPki(['localhost']);
  stack = await startStack();
  peer = await SmtpPeer.start({ implicitTls: false, key: pki.serverKey, cert: pki.serverCert, users: { u: 'p' } });
  key = await createPeerTenant(stack, tenantId, peer, pki.caCert);
});
after(async () => {
  await Promise.all([stack?.stop(), peer?.stop()]);
});

// Over 32 KiB: the MIME is stored beside the message document, not inside it (the racy case).
const filler = 'All work and no play makes Jack a dull boy. '.repeat(1000);
const body = (to: string, idempotencyKey: string) => ({
  from: 'billing@acme.example',
  to: [to],
  subject: `Invoice for ${to}`,
  text: `Dear ${to},\n${filler}`,
  idempotencyKey,
});

const post = (b: unknown) => api(stack, 'POST', '/v1/messages', { key, body: b });

/** The MIME To header of a received message (unfolded). */
const mimeTo = (raw: string) =>
  /^To: (.*)$/im
    .exec(raw.replace(/\r?\n[ \t]+/g, ' '))?.[1]
    ?.split(',')
    .map((a) => a.trim().replace(/^.*<|>$/g, ''));

async function storedWithKey(idempotencyKey: string): Promise<number> {
  return stack.messages.col.countDocuments({ tenantId, idempotencyKey });
}

describe('attack: idempotency key races and reuse', () => {
  test('20 concurrent POSTs with one key and the same body: one message id in every answer, one SMTP transaction', async () => {
    const k = 'same-body-20';
    const answers = await Promise.all(Array.from({ length: 20 }, () => post(body('alice@customer.example', k))));
    assert.deepEqual(
      answers.map((a) => a.status),
      Array(20).fill(202),
      JSON.stringify(answers.map((a) => a.body)),
    );
    const ids = new Set(answers.map((a) => a.body.id as string));
    assert.equal(ids.size, 1, `one message id, got ${[...ids].join(', ')}`);
    const [id] = [...ids];
    const messageId = answers[0]!.body.messageId as string;
    await eventually(
      async () => ((await api(stack, 'GET', `/v1/messages/${id}`, { key })).body.status === 'sent' ? true : undefined),
      30_000,
      'sent',
    );
    await new Promise((r) => setTimeout(r, 1_500));
    const arrived = peer.messages().filter((m) => m.messageId === messageId || m.raw.includes('Invoice for alice@'));
    assert.equal(arrived.length, 1, 'one SMTP transaction at the peer');
    assert.deepEqual(arrived[0]!.to, ['alice@customer.example']);
    assert.equal(await storedWithKey(k), 1, 'one stored message');
  });

  test('10 concurrent POSTs with one key and different recipients: one message stored and sent, envelope = MIME To, the others 422', async () => {
    const k = 'different-bodies-10';
    const recipients = Array.from({ length: 10 }, (_, i) => `r${i}@customer.example`);
    const answers = await Promise.all(recipients.map((to) => post(body(to, k))));
    const accepted = answers.filter((a) => a.status === 202);
    assert.equal(accepted.length, 1, JSON.stringify(answers.map((a) => [a.status, a.body?.type ?? a.body?.id])));
    for (const a of answers.filter((x) => x.status !== 202)) {
      assert.equal(a.status, 422);
      assert.match(a.headers.get('content-type')!, /application\/problem\+json/);
      assert.equal(a.body.type, 'https://cartero.dev/problems/idempotency-key-reused');
      assert.match(a.body.detail, new RegExp(k));
    }
    const id = accepted[0]!.body.id as string;
    await eventually(
      async () => ((await api(stack, 'GET', `/v1/messages/${id}`, { key })).body.status === 'sent' ? true : undefined),
      30_000,
      'sent',
    );
    await new Promise((r) => setTimeout(r, 1_500));
    const arrived = peer.messages().filter((m) => recipients.some((r) => m.to.includes(r) || m.raw.includes(`Invoice for ${r}`)));
    assert.equal(arrived.length, 1, 'one SMTP transaction for the key');
    const m = arrived[0]!;
    assert.deepEqual(mimeTo(m.raw), m.to, 'the envelope recipients are the MIME To of the same request');
    assert.match(m.raw, new RegExp(`Subject: Invoice for ${m.to[0]!.replace('.', '\\.')}`));
    assert.equal(await storedWithKey(k), 1, 'one stored message');
  });

  test('a later POST with a used key: the same payload gets the first message, another payload 422 naming the key', async () => {
    const k = 'later-reuse';
    const first = await post(body('bob@customer.example', k));
    assert.equal(first.status, 202);
    const again = await post(body('bob@customer.example', k));
    assert.equal(again.status, 202);
    assert.equal(again.body.id, first.body.id);
    const other = await post(body('mallory@customer.example', k));
    assert.equal(other.status, 422);
    assert.equal(other.body.type, 'https://cartero.dev/problems/idempotency-key-reused');
    assert.match(other.body.detail, /later-reuse/);
    assert.deepEqual(other.body.errors, [{ field: 'idempotencyKey', message: 'already used with a different request: later-reuse' }]);
    // Field order does not make another request.
    const reordered = await post({
      idempotencyKey: k,
      text: `Dear bob@customer.example,\n${filler}`,
      subject: 'Invoice for bob@customer.example',
      to: ['bob@customer.example'],
      from: 'billing@acme.example',
    });
    assert.equal(reordered.status, 202);
    assert.equal(reordered.body.id, first.body.id);
  });

  test('a request that fails validation at compose time gives its key up: the corrected retry is accepted', async () => {
    const k = 'fixed-after-400';
    const wrong = await post({ ...body('dave@customer.example', k), from: 'billing@not-our-domain.example' });
    assert.equal(wrong.status, 400, JSON.stringify(wrong.body));
    const right = await post(body('dave@customer.example', k));
    assert.equal(right.status, 202, JSON.stringify(right.body));
  });
});
