import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { makeTestPki } from '../support/certs';
import { eventually, SmtpPeer } from '../support/smtp-peer';
import { api, createPeerTenant, messageUntil, startStack, type Stack } from '../support/stack';

/**
 * The send workflow's wait for credentials (docs/sending.md): it ends when the tenant's settings are no
 * longer those the failing attempt used, however the news arrives, and a message has one deadline
 * from its first credentials failure, however often the settings change.
 */
const pki = makeTestPki(['localhost']);
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function setUp(env: Record<string, string>, peerExtra: { authDelayMs?: number } = {}) {
  const peer = await SmtpPeer.start({ implicitTls: false, key: pki.serverKey, cert: pki.serverCert, users: { u: 'right' }, ...peerExtra });
  const stack = await startStack(env);
  cleanups.push(
    () => peer.stop(),
    () => stack.stop(),
  );
  const key = await createPeerTenant(stack, 'creds', peer, pki.caCert, { auth: { type: 'password', user: 'u', password: 'wrong-0' } });
  return { peer, stack, key };
}

const patchPassword = async (stack: Stack, key: string, password: string) => {
  const r = await api(stack, 'PATCH', '/v1/tenants/creds', { key, body: { auth: { type: 'password', user: 'u', password } } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
};

const send = async (stack: Stack, key: string): Promise<string> => {
  const r = await api(stack, 'POST', '/v1/messages', {
    key,
    body: { from: 'support@acme.example', to: ['alice@customer.example'], subject: 'creds', text: 'hello' },
  });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return r.body.id as string;
};

test(
  'settings fixed while a failing attempt is in flight (its wake-up signal arriving during it) end the wait at once',
  { timeout: 180_000 },
  async () => {
    // AUTH answers after 2 s, so the test can change the settings while an attempt is under way.
    const { peer, stack, key } = await setUp({}, { authDelayMs: 2_000 });
    const id = await send(stack, key);
    await messageUntil(stack, key, id, ['waiting_credentials'], 60_000);
    // A wrong fix: the workflow is woken and tries again with it...
    await patchPassword(stack, key, 'wrong-1');
    await messageUntil(stack, key, id, ['sending'], 60_000);
    // ...and the right one arrives while that attempt waits for its AUTH verdict. The stored status is
    // still waiting_credentials, so the API signals the workflow, during the attempt.
    await patchPassword(stack, key, 'right');
    // Before the fix the signal was forgotten once the attempt failed, and the message waited for the
    // 15-minute recheck.
    const sent = await messageUntil(stack, key, id, ['sent'], 90_000);
    assert.equal(sent.status, 'sent');
    assert.deepEqual(
      peer.events.flatMap((e) => (e.type === 'auth' ? [e.ok] : [])),
      [false, false, true],
    );
  },
);

test(
  'a message has one credentials deadline: settings changed again and again (still wrong) do not extend it',
  { timeout: 180_000 },
  async () => {
    const { peer, stack, key } = await setUp({ SEND_CREDENTIALS_WAIT_MS: '8000' });
    const id = await send(stack, key);
    await messageUntil(stack, key, id, ['waiting_credentials'], 60_000);
    // Wrong settings every second and a half: each wakes the message for another failing attempt. With a
    // fresh deadline per failure it would never run out while this goes on.
    let n = 0;
    let stop = false;
    const patching = (async () => {
      while (!stop && n < 60) {
        await patchPassword(stack, key, `wrong-${++n}`);
        await new Promise((r) => setTimeout(r, 1_500));
      }
    })();
    try {
      const failed = await eventually(
        async () => {
          const r = await api(stack, 'GET', `/v1/messages/${id}`, { key });
          return r.body.status === 'failed' ? r.body : undefined;
        },
        90_000,
        'the message to fail at its first deadline',
      );
      assert.match(failed.reason, /not fixed within 8 s/);
      assert.ok(!stop && n < 60, 'it failed while the settings were still being changed');
    } finally {
      stop = true;
      await patching;
    }
    assert.ok(peer.events.filter((e) => e.type === 'auth' && !e.ok).length >= 2, 'the changes did wake the message for new attempts');
  },
);
