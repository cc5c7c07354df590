import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { freePort, type Managed } from '../../src/embedded/processes';
import { makeTestPki } from '../support/certs';
import { allSent, assertEveryMessageArrived, postMessages, startProcessStack, type ProcessStack } from '../support/processes';
import { eventually, SmtpPeer } from '../support/smtp-peer';
import { api, createPeerTenant } from '../support/stack';
import { startThrowawayFerretDb } from '../support/throwaway-servers';

/**
 * The store (a FerretDB of the test's own) is killed with SIGKILL while messages are in flight and
 * started again on the same data. While it is down the API refuses with 503 problem+json (and
 * /readyz says not ready); every message it accepted (202) before, during or after reaches the SMTP
 * server, and the refused ones, repeated with their idempotency key, are accepted and sent too.
 */
const root = path.resolve(__dirname, '..', '..', '..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'cartero-store-fault-'));
let ferret: Managed;
let mongoPort: number;
let stack: ProcessStack;
let peer: SmtpPeer;
let tenantKey: string;

before(async () => {
  mongoPort = await freePort();
  const pki = makeTestPki(['localhost']);
  [ferret, peer] = await Promise.all([
    startThrowawayFerretDb(root, tmp, mongoPort),
    SmtpPeer.start({ implicitTls: false, key: pki.serverKey, cert: pki.serverCert, users: { u: 'p' }, dataDelayMs: 1500 }),
  ]);
  stack = await startProcessStack({
    MONGODB_URI: `mongodb://127.0.0.1:${mongoPort}/`,
    SEND_RETRY_INITIAL_MS: '1000',
    SEND_RETRY_MAX_MS: '2000',
  });
  tenantKey = await createPeerTenant(stack, 'storey', peer, pki.caCert, { limits: { maxConnections: 3 } });
});
after(async () => {
  await stack?.stop();
  await Promise.all([ferret?.stop(), peer?.stop()]);
  rmSync(tmp, { recursive: true, force: true });
});

test(
  'the store killed and restarted mid-run: 503 problem+json while down, every accepted message arrives',
  { timeout: 300_000 },
  async () => {
    const before = await postMessages(stack, 'storey', 12, 'pre');
    assert.deepEqual(before.refused, []);
    await eventually(() => peer.messages().length >= 2, 60_000, 'the first messages delivered');

    ferret.child.kill('SIGKILL');
    await new Promise<void>((r) =>
      ferret.child.exitCode !== null || ferret.child.signalCode !== null ? r() : ferret.child.once('exit', () => r()),
    );

    const during = await postMessages(stack, 'storey', 3, 'down');
    assert.equal(during.refused.length + during.ids.length, 3);
    for (const r of during.refused) {
      assert.equal(r.status, 503, `${JSON.stringify(r)}\nthe API printed:\n${stack.api.output()}`);
      assert.match(r.type, /^application\/problem\+json[; ]/);
      assert.doesNotMatch(r.type, new RegExp(`:${mongoPort}\\b`), "the store's address is not for API clients");
    }
    assert.equal(during.refused.length, 3, 'nothing is accepted while the store is down');
    // Authentication reads the store: a tenant key (or any key) is answered 503 too, and told no more.
    const byTenant = await api(stack, 'GET', '/v1/messages?limit=1', { key: tenantKey });
    assert.equal(byTenant.status, 503);
    assert.equal(byTenant.headers.get('retry-after'), '5');
    assert.doesNotMatch(JSON.stringify(byTenant.body), new RegExp(`:${mongoPort}\\b|ECONNREFUSED`));
    const ready = await fetch(`${stack.baseUrl}/readyz`);
    assert.equal(ready.status, 503);
    const detail = await api(stack, 'GET', '/readyz', { key: stack.adminKey });
    assert.equal(detail.body.checks.store.ok, false);

    // A transaction already under way when the store went could not record its reply until now:
    // the after-DATA window lasts until the store is back.
    const recordableAgainAt = Date.now();
    ferret = await startThrowawayFerretDb(root, tmp, mongoPort);
    await eventually(async () => (await fetch(`${stack.baseUrl}/readyz`)).status === 200, 60_000, 'the API ready again');
    // The client repeats what was refused, with the same idempotency keys, as the 503 tells it to.
    const repeated = await postMessages(stack, 'storey', 3, 'down');
    assert.deepEqual(repeated.refused, []);
    const later = await postMessages(stack, 'storey', 3, 'post');
    assert.deepEqual(later.refused, []);

    const ids = [...before.ids, ...repeated.ids, ...later.ids];
    await allSent(stack, ids, 180_000, () => stack.output());
    await new Promise((r) => setTimeout(r, 2000));
    assertEveryMessageArrived(peer, [...before.messageIds, ...repeated.messageIds, ...later.messageIds], recordableAgainAt);
    assert.ok(stack.workers.every((w) => w.alive()) && stack.api.alive(), 'API and worker rode out the outage');
  },
);
