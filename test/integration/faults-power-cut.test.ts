import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { isAlive } from '../../src/embedded/run-record';
import { temporalKind } from '../../src/embedded/temporal';
import { makeTestPki } from '../support/certs';
import { killRecorded, launch, launcherPorts, launcherStarted, runRecord, type Launched } from '../support/launcher';
import { allSent, assertEveryMessageArrived, postMessages } from '../support/processes';
import { eventually, SmtpPeer } from '../support/smtp-peer';
import { createPeerTenant } from '../support/stack';

/**
 * A power cut of the whole service: `npm start` (launcher, Temporal dev server, FerretDB, worker,
 * API) is killed with SIGKILL all at once while 40 accepted messages are in flight (the SMTP server
 * holds each DATA for 2 s), then started again on the same data. Every message arrives; a message
 * arrives twice only if its first copy was inside the after-DATA window at the cut.
 */
const root = path.resolve(__dirname, '..', '..', '..');
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'cartero-power-cut-'));
const launched: Launched[] = [];
let peer: SmtpPeer | undefined;

after(async () => {
  for (const l of launched) if (l.child.exitCode === null && l.child.signalCode === null) l.child.kill('SIGKILL');
  killRecorded(runRecord(dataDir));
  await peer?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

test(
  'npm start killed whole (every process at once) with 40 messages in flight: after a restart all 40 arrive',
  { timeout: 600_000 },
  async (t) => {
    assert.ok(existsSync(path.join(root, 'dist', 'dev.js')), 'npm test builds dist/ first');
    const pki = makeTestPki(['localhost']);
    peer = await SmtpPeer.start({ implicitTls: false, key: pki.serverKey, cert: pki.serverCert, users: { u: 'p' }, dataDelayMs: 2000 });
    const ports = await launcherPorts();
    const env = {
      ...ports,
      METRICS_PORT: '0',
      CARTERO_ADMIN_KEY: `cadm_test_${randomBytes(24).toString('base64url')}`,
      SEND_RETRY_INITIAL_MS: '1000',
      SEND_RETRY_MAX_MS: '2000',
    };
    const stack = { baseUrl: `http://127.0.0.1:${ports.PORT}`, adminKey: env.CARTERO_ADMIN_KEY };

    const first = launch(dataDir, env);
    launched.push(first);
    await launcherStarted(first, 'first start');
    await createPeerTenant(stack, 'cut', peer, pki.caCert, { limits: { maxConnections: 5 } });
    const { ids, messageIds, refused } = await postMessages(stack, 'cut', 40, 'pc');
    assert.deepEqual(refused, []);
    const p = peer;
    // Some delivered, more inside DATA at the server, the rest still to go.
    await eventually(() => p.messages().length >= 5, 120_000, 'the first messages delivered');
    const record = runRecord(dataDir);
    assert.ok(record);
    const temporalProcesses = temporalKind() === 'postgres' ? ['postgres', 'temporal-server'] : ['temporal'];
    assert.deepEqual(record.processes.map((x) => x.name).sort(), ['api', 'ferretdb', ...temporalProcesses, 'worker'].sort());

    const faultAt = Date.now();
    first.child.kill('SIGKILL');
    killRecorded(record);
    const delivered = p.messages().length;
    t.diagnostic(`cut with ${delivered} of 40 delivered, ${p.events.filter((e) => e.type === 'data').length - delivered} inside DATA`);
    await eventually(
      () => [record.launcher, ...record.processes.map((x) => x.pid)].every((pid) => !isAlive(pid)),
      20_000,
      'every process gone',
    );
    assert.ok(delivered < 40, 'the cut came after every message had arrived: nothing was in flight');

    const second = launch(dataDir, env);
    launched.push(second);
    await launcherStarted(second, 'start after the power cut');
    await allSent(stack, ids, 240_000, () => second.output().slice(-6000));
    await new Promise((r) => setTimeout(r, 2500)); // a copy still held by the server would arrive now
    const twice = assertEveryMessageArrived(p, messageIds, faultAt);
    t.diagnostic(`${twice.length} documented after-DATA duplicates`);

    second.child.kill('SIGINT');
    await eventually(() => second.child.exitCode !== null, 60_000, 'a clean stop');
  },
);
