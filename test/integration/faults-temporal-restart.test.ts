import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { freePort, type Managed } from '../../src/embedded/processes';
import { makeTestPki } from '../support/certs';
import { allSent, assertEveryMessageArrived, postMessages, startProcessStack, type ProcessStack } from '../support/processes';
import { eventually, SmtpPeer } from '../support/smtp-peer';
import { createPeerTenant } from '../support/stack';
import { startThrowawayTemporal } from '../support/throwaway-servers';

/**
 * The Temporal server (a dev server of the test's own, its state in SQLite) is killed with SIGKILL
 * while messages are in flight and started again on the same state and port. The API and worker
 * processes are not restarted: they reconnect. While it is down POST /v1/messages answers 503
 * problem+json; every message accepted (202) arrives, and the refused ones, repeated with their
 * idempotency keys, are sent too.
 */
const root = path.resolve(__dirname, '..', '..', '..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'cartero-temporal-fault-'));
let temporal: Managed;
let temporalPort: number;
let stack: ProcessStack;
let peer: SmtpPeer;

before(async () => {
  temporalPort = await freePort();
  const pki = makeTestPki(['localhost']);
  [temporal, peer] = await Promise.all([
    startThrowawayTemporal(root, tmp, temporalPort, { persistent: true }),
    SmtpPeer.start({ implicitTls: false, key: pki.serverKey, cert: pki.serverCert, users: { u: 'p' }, dataDelayMs: 1500 }),
  ]);
  stack = await startProcessStack({
    TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`,
    SEND_RETRY_INITIAL_MS: '1000',
    SEND_RETRY_MAX_MS: '2000',
  });
  await createPeerTenant(stack, 'tempo', peer, pki.caCert, { limits: { maxConnections: 3 } });
});
after(async () => {
  await stack?.stop();
  await Promise.all([temporal?.stop(), peer?.stop()]);
  rmSync(tmp, { recursive: true, force: true });
});

test('Temporal killed and restarted mid-run: API and worker reconnect, every accepted message arrives', { timeout: 300_000 }, async (t) => {
  const t0 = Date.now();
  const phase = (what: string) => t.diagnostic(`${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const first = await postMessages(stack, 'tempo', 12, 'pre');
  assert.deepEqual(first.refused, []);
  await eventually(() => peer.messages().length >= 2, 60_000, 'the first messages delivered');

  const faultAt = Date.now();
  temporal.child.kill('SIGKILL');
  await new Promise<void>((r) =>
    temporal.child.exitCode !== null || temporal.child.signalCode !== null ? r() : temporal.child.once('exit', () => r()),
  );

  phase('Temporal killed');
  // One request: the API's Temporal client retries an unreachable server for about 20 s before the 503.
  const during = await postMessages(stack, 'tempo', 1, 'down');
  for (const r of during.refused) {
    assert.equal(r.status, 503, JSON.stringify(r));
    assert.match(r.type, /^application\/problem\+json[; ]/);
  }
  assert.equal(during.refused.length, 1, 'nothing is accepted while Temporal is down');
  phase('refused');
  assert.equal((await fetch(`${stack.baseUrl}/readyz`)).status, 503);

  temporal = await startThrowawayTemporal(root, tmp, temporalPort, { persistent: true });
  await eventually(async () => (await fetch(`${stack.baseUrl}/readyz`)).status === 200, 60_000, 'the API ready again');
  phase('Temporal back, API ready');
  const repeated = await postMessages(stack, 'tempo', 1, 'down');
  assert.deepEqual(repeated.refused, []);
  const later = await postMessages(stack, 'tempo', 3, 'post');
  assert.deepEqual(later.refused, []);

  await allSent(stack, [...first.ids, ...repeated.ids, ...later.ids], 180_000, () => stack.output());
  phase('all sent');
  await new Promise((r) => setTimeout(r, 2000));
  assertEveryMessageArrived(peer, [...first.messageIds, ...repeated.messageIds, ...later.messageIds], faultAt);
  assert.ok(stack.workers.every((w) => w.alive()) && stack.api.alive(), 'API and worker rode out the restart');
});
