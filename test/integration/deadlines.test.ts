import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { makeTestPki } from '../support/certs';
import { eventually, SmtpPeer } from '../support/smtp-peer';
import { api, createPeerTenant, startStack, type Stack } from '../support/stack';

/**
 * Nothing waits for ever: a message that only ever gets temporary failures ends `failed` once the
 * give-up time passes, and one whose credentials are never fixed ends `failed` at its deadline —
 * both with the reason and the last reply recorded. Deadlines are shortened through the same
 * environment variables production uses (3 days by default).
 */
let stack: Stack;
let peer: SmtpPeer;
let caCert: string;

before(async () => {
  const pki = makeTestPki(['localhost']);
  caCert = pki.caCert;
  [stack, peer] = await Promise.all([
    startStack({ SEND_RETRY_INITIAL_MS: '300', SEND_RETRY_MAX_MS: '600', SEND_GIVE_UP_MS: '2500', SEND_CREDENTIALS_WAIT_MS: '2000' }),
    SmtpPeer.start({
      implicitTls: false,
      key: pki.serverKey,
      cert: pki.serverCert,
      users: { u: 'p' },
      dataReplies: Array.from({ length: 50 }, () => ({ code: 451, text: '4.3.0 Temporary local problem' })),
    }),
  ]);
});
after(async () => {
  await Promise.all([stack?.stop(), peer?.stop()]);
});

async function sendAndWait(key: string): Promise<any> {
  const r = await api(stack, 'POST', '/v1/messages', {
    key,
    body: { from: 'a@acme.example', to: ['b@customer.example'], subject: 's', text: 't' },
  });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return eventually(
    async () => {
      const m = await api(stack, 'GET', `/v1/messages/${r.body.id}`, { key });
      return ['failed', 'sent'].includes(m.body.status) ? m.body : undefined;
    },
    30_000,
    'a terminal status',
  );
}

test('temporary failures until the give-up time: failed, with the last reply', async () => {
  const key = await createPeerTenant(stack, 'giveup', peer, caCert);
  const m = await sendAndWait(key);
  assert.equal(m.status, 'failed');
  assert.match(m.reason, /^gave up after \d+ s of temporary failures; last reply: 451 4\.3\.0/);
  assert.match(m.lastReply, /^451 /);
  assert.ok(m.attempts.length >= 2, `${m.attempts.length} attempts`);
  assert.equal(m.recipients[0].status, 'failed');
  assert.equal(peer.messages().length, 0);
});

test('credentials never fixed: failed at the deadline, with the 535 in the reason', async () => {
  const key = await createPeerTenant(stack, 'badcreds', peer, caCert, { auth: { type: 'password', user: 'u', password: 'wrong' } });
  const m = await sendAndWait(key);
  assert.equal(m.status, 'failed');
  assert.match(m.reason, /^credentials or settings were not fixed within 2 s; authentication refused: 535 /);
  assert.equal(m.attempts.length, 1);
  assert.match(m.lastReply, /^535 /);
});
