import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { test } from 'node:test';
import { carteroIdFrom, relayCorrelationHeaders, bracketed } from '../../src/domain/provider-events';
import { relayBounceOutcome } from '../../src/inbound/provider-events/apply';
import { parseBrevoEvents } from '../../src/inbound/provider-events/brevo';
import type { ProviderEventContext } from '../../src/inbound/provider-events/context';
import { parsePostmarkEvents } from '../../src/inbound/provider-events/postmark';
import { parseSendgridEvents, verifySendgridSignature } from '../../src/inbound/provider-events/sendgrid';
import type { SnsVerifier } from '../../src/inbound/sns';

const ctx = (settings: ProviderEventContext['settings'] = {}): ProviderEventContext => ({
  tenantId: 't',
  settings,
  now: new Date(),
  sns: {} as SnsVerifier,
  snsConfirm: async () => undefined,
  signatureMaxAgeMs: 15 * 60_000,
});
const req = (body: unknown, headers: Record<string, string> = {}) => ({ headers, body: Buffer.from(JSON.stringify(body)) });

test('relay bounce outcome: the reply names the reason; the relay’s "permanent" needs a reason about the address', () => {
  const dead = relayBounceOutcome({ status: '5.1.1', diagnostic: '550 5.1.1 user unknown', permanent: true, reasonHint: null });
  assert.deepEqual([dead.reason, dead.hard], ['userunknown', true]);
  const relay = relayBounceOutcome({ status: null, diagnostic: '550 5.7.1 Relaying denied', permanent: true, reasonHint: 'userunknown' });
  assert.deepEqual([relay.reason, relay.hard], ['norelaying', false]);
  const full = relayBounceOutcome({ status: '5.2.2', diagnostic: 'mailbox full', permanent: true, reasonHint: null });
  assert.equal(full.hard, false);
  // Nothing but the relay's category: its hint decides, its "temporary" always wins.
  assert.deepEqual(
    Object.values(relayBounceOutcome({ status: null, diagnostic: null, permanent: true, reasonHint: 'userunknown' })).slice(0, 2),
    ['userunknown', true],
  );
  assert.equal(relayBounceOutcome({ status: '5.1.1', diagnostic: 'user unknown', permanent: false, reasonHint: null }).hard, false);
  // No call from the relay: the status decides, as for a DSN.
  assert.equal(relayBounceOutcome({ status: '5.1.1', diagnostic: null, permanent: null, reasonHint: null }).hard, true);
});

test('correlation headers per relay preset, and only a Cartero id is read back', () => {
  assert.deepEqual(relayCorrelationHeaders('gmail', 'm_abcdefghij12'), {});
  assert.deepEqual(relayCorrelationHeaders(null, 'm_abcdefghij12'), {});
  assert.equal(relayCorrelationHeaders('ses', 'm_abcdefghij12')['X-SES-MESSAGE-TAGS'], 'cartero_id=m_abcdefghij12');
  assert.equal(relayCorrelationHeaders('postmark', 'm_abcdefghij12')['X-PM-Metadata-cartero_id'], 'm_abcdefghij12');
  assert.deepEqual(JSON.parse(relayCorrelationHeaders('mailgun', 'm_abcdefghij12')['X-Mailgun-Variables']!), {
    cartero_id: 'm_abcdefghij12',
  });
  assert.equal(carteroIdFrom('cartero_id:m_abcdefghij12'), 'm_abcdefghij12');
  assert.equal(carteroIdFrom(['m_abcdefghij12']), 'm_abcdefghij12');
  assert.equal(carteroIdFrom('m_../../etc'), null);
  assert.equal(carteroIdFrom({ $ne: null }), null);
  assert.equal(bracketed('abc@x'), '<abc@x>');
  assert.equal(bracketed(''), null);
});

test('SendGrid: ECDSA over timestamp + body; opens and clicks are counted as ignored', async () => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const key = ec.publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
  const events = [
    { email: 'a@x.example', event: 'bounce', type: 'blocked', sg_event_id: 'e1', reason: '550 5.7.1 blocked by policy' },
    { email: 'a@x.example', event: 'click', sg_event_id: 'e2' },
    { email: 'a@x.example', event: 'deferred', sg_event_id: 'e3', response: '421 4.7.0 try later' },
  ];
  const body = JSON.stringify(events);
  const ts = String(Math.floor(Date.now() / 1000));
  const sig = sign('sha256', Buffer.from(ts + body), ec.privateKey).toString('base64');
  assert.equal(verifySendgridSignature(key, sig, ts, Buffer.from(body)), true);
  assert.equal(verifySendgridSignature(key, sig, String(Number(ts) + 1), Buffer.from(body)), false);
  const headers = { 'x-twilio-email-event-webhook-signature': sig, 'x-twilio-email-event-webhook-timestamp': ts };
  const r = await parseSendgridEvents({ headers, body: Buffer.from(body) }, ctx({ eventVerificationKey: key }));
  assert.equal(r.kind, 'events');
  if (r.kind !== 'events') return;
  assert.equal(r.batch.ignored, 1);
  assert.deepEqual(
    r.batch.events.map((e) => [e.kind, e.permanent, e.reasonHint, e.status]),
    [
      ['bounce', false, 'blocked', '5.7.1'],
      ['delay', false, null, '4.7.0'],
    ],
  );
  // An old signature (a captured request replayed later) is refused.
  const old = String(Math.floor(Date.now() / 1000) - 3600);
  const oldSig = sign('sha256', Buffer.from(old + body), ec.privateKey).toString('base64');
  await assert.rejects(
    parseSendgridEvents(
      {
        headers: { ...headers, 'x-twilio-email-event-webhook-signature': oldSig, 'x-twilio-email-event-webhook-timestamp': old },
        body: Buffer.from(body),
      },
      ctx({ eventVerificationKey: key }),
    ),
    /minutes away/,
  );
});

test('Postmark and Brevo types map to kinds; auto-replies and subscriptions are ignored', async () => {
  const pm = async (b: Record<string, unknown>) => {
    const r = await parsePostmarkEvents(req(b), ctx());
    return r.kind === 'events' ? r.batch : null;
  };
  assert.equal((await pm({ RecordType: 'Bounce', Type: 'AutoResponder', Email: 'a@x.example' }))?.ignored, 1);
  assert.equal((await pm({ RecordType: 'Bounce', Type: 'Transient', Email: 'a@x.example' }))?.events[0]?.kind, 'delay');
  assert.equal((await pm({ RecordType: 'SpamComplaint', Type: 'SpamComplaint', Email: 'a@x.example' }))?.events[0]?.kind, 'complaint');
  assert.equal((await pm({ RecordType: 'Delivery', Recipient: 'a@x.example', Details: '250 OK' }))?.events[0]?.kind, 'delivered');
  const br = await parseBrevoEvents(
    req({ event: 'hard_bounce', email: 'a@x.example', 'X-Mailin-custom': 'cartero_id:m_abcdefghij12' }),
    ctx(),
  );
  assert.ok(br.kind === 'events');
  if (br.kind === 'events') assert.deepEqual([br.batch.events[0]?.carteroId, br.batch.events[0]?.permanent], ['m_abcdefghij12', true]);
  await assert.rejects(parseBrevoEvents(req([1, 2]), ctx()), /invalid/);
});
