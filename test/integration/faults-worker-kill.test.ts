import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { makeTestPki } from '../support/certs';
import { allSent, assertEveryMessageArrived, postMessages, startProcessStack, type ProcessStack } from '../support/processes';
import { eventually, SmtpPeer } from '../support/smtp-peer';
import { createPeerTenant } from '../support/stack';

/**
 * Two worker processes; one is killed with SIGKILL while the SMTP server holds its DATA transactions
 * open (the after-DATA window of docs/sending.md). The other worker finishes every message: each
 * accepted message reaches the server, twice at most and only if its first copy was in that window.
 */
let stack: ProcessStack;
let peer: SmtpPeer;

before(async () => {
  const pki = makeTestPki(['localhost']);
  [stack, peer] = await Promise.all([
    startProcessStack({ SEND_RETRY_INITIAL_MS: '1000', SEND_RETRY_MAX_MS: '2000' }, { workers: 2 }),
    SmtpPeer.start({ implicitTls: false, key: pki.serverKey, cert: pki.serverCert, users: { u: 'p' }, dataDelayMs: 3000 }),
  ]);
  await createPeerTenant(stack, 'wkill', peer, pki.caCert, { limits: { maxConnections: 10 } });
});
after(async () => {
  await Promise.all([stack?.stop(), peer?.stop()]);
});

test('SIGKILL of one of two workers mid-SMTP: the other delivers every accepted message', { timeout: 180_000 }, async () => {
  const { ids, messageIds, refused } = await postMessages(stack, 'wkill', 16, 'wk');
  assert.deepEqual(refused, []);
  // Final dots the server holds (3 s each) before answering: transactions open on both workers.
  await eventually(() => peer.events.filter((e) => e.type === 'data').length >= 8, 60_000, 'eight DATA transactions open');
  const faultAt = Date.now();
  await stack.workers[0]!.kill();

  await allSent(stack, ids, 120_000, () => stack.output());
  await new Promise((r) => setTimeout(r, 4000)); // a copy still held by the server would arrive now
  assertEveryMessageArrived(peer, messageIds, faultAt);
  // The kill did land inside transactions: the server answered some DATA to a client that was gone.
  assert.ok(
    peer.messages().some((m) => m.replyLost),
    'no transaction of the killed worker was open at the kill: the test did not test the window',
  );
  assert.ok(stack.workers[1]!.alive(), 'the surviving worker is still running');
});
