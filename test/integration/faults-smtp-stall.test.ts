import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { makeTestPki } from '../support/certs';
import { allSent, assertEveryMessageArrived, postMessages, startProcessStack, type ProcessStack } from '../support/processes';
import { eventually, SmtpPeer } from '../support/smtp-peer';
import { api, createPeerTenant } from '../support/stack';

/**
 * A tenant's SMTP server takes the final dot of DATA and then says nothing (it stalls past
 * SMTP_SOCKET_TIMEOUT_MS). The attempt ends as a transient timeout, the message is retried and
 * delivered; the stalled copy, which the server kept, is the documented after-DATA duplicate
 * (same bytes, same Message-ID). Another tenant's mail, on a healthy server, is not held up.
 */
let stack: ProcessStack;
let stalled: SmtpPeer;
let healthy: SmtpPeer;

before(async () => {
  const pki = makeTestPki(['localhost']);
  const peer = { implicitTls: false, key: pki.serverKey, cert: pki.serverCert, users: { u: 'p' } };
  [stack, stalled, healthy] = await Promise.all([
    startProcessStack({ SMTP_SOCKET_TIMEOUT_MS: '2000', SEND_RETRY_INITIAL_MS: '500', SEND_RETRY_MAX_MS: '1000' }),
    SmtpPeer.start({ ...peer, stallFirstDataMs: 8000 }),
    SmtpPeer.start(peer),
  ]);
  await createPeerTenant(stack, 'stalled', stalled, pki.caCert, { limits: { maxConnections: 5 } });
  await createPeerTenant(stack, 'healthy', healthy, pki.caCert);
});
after(async () => {
  await Promise.all([stack?.stop(), stalled?.stop(), healthy?.stop()]);
});

test(
  'a server stalling after DATA: the attempt times out, the retry delivers, the duplicate is the documented one',
  { timeout: 180_000 },
  async () => {
    const slow = await postMessages(stack, 'stalled', 5, 'st');
    assert.deepEqual(slow.refused, []);
    await eventually(() => stalled.events.filter((e) => e.type === 'data').length >= 5, 30_000, 'five final dots at the stalled server');

    // The stalled tenant's transactions hang; another tenant's mail goes out meanwhile.
    const fine = await postMessages(stack, 'healthy', 3, 'ok');
    assert.deepEqual(fine.refused, []);
    await allSent(stack, fine.ids, 30_000, () => stack.output());
    assert.equal(stalled.messages().length, 0, 'the stalled server has answered nothing yet');
    assertEveryMessageArrived(healthy, fine.messageIds);

    await allSent(stack, slow.ids, 90_000, () => stack.output());
    // The stalled server answers its held copies 8 s after their final dot, to clients long gone.
    await eventually(() => stalled.messages().length >= 10, 30_000, 'the held copies kept by the server');
    const twice = assertEveryMessageArrived(stalled, slow.messageIds);
    assert.equal(twice.length, 5, 'each stalled copy was kept by the server, so each message arrived twice');
    for (const id of slow.ids) {
      const view = (await api(stack, 'GET', `/v1/messages/${id}`, { key: stack.adminKey })).body;
      assert.equal(view.attempts.length, 2, JSON.stringify(view.attempts));
      assert.equal(view.attempts[0].outcome, 'transient');
      assert.match(view.attempts[0].reply, /timeout/i);
      assert.equal(view.attempts[1].outcome, 'accepted');
    }
  },
);
