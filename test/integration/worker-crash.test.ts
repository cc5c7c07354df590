import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { makeTestPki } from '../support/certs';
import { eventually, SmtpPeer } from '../support/smtp-peer';
import { api, createPeerTenant, startStack, type Stack } from '../support/stack';

/**
 * The worker is a separate OS process here, killed with SIGKILL while messages wait (scheduled)
 * and retry (after 451s), then started again: every message is delivered exactly once, counted by
 * Message-ID at the SMTP server.
 */
let stack: Stack;
let peer: SmtpPeer;
const workers: ChildProcess[] = [];

function startWorker(): ChildProcess {
  const child = spawn(process.execPath, [path.resolve(__dirname, '..', '..', 'src', 'worker.js')], {
    env: { ...process.env, ...stack.env, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  workers.push(child);
  return child;
}

before(async () => {
  const pki = makeTestPki(['localhost']);
  [stack, peer] = await Promise.all([
    startStack({ SEND_RETRY_INITIAL_MS: '8000', SEND_RETRY_MAX_MS: '8000' }, { worker: false }),
    SmtpPeer.start({
      implicitTls: false,
      key: pki.serverKey,
      cert: pki.serverCert,
      users: { u: 'p' },
      // Every message is refused once, whichever order the workflows reach the server in.
      firstDataReply: { code: 451, text: '4.3.0 Temporary local problem' },
    }),
  ]);
  await createPeerTenant(stack, 'crashy', peer, pki.caCert);
});
after(async () => {
  for (const w of workers) if (w.exitCode === null) w.kill('SIGKILL');
  await Promise.all([stack?.stop(), peer?.stop()]);
});

test('SIGKILL of the worker while messages wait and retry: each is sent exactly once after restart', { timeout: 120_000 }, async () => {
  const first = startWorker();
  const rfcIds: string[] = [];
  const ids: string[] = [];
  for (let i = 0; i < 10; i++) {
    const scheduled = i >= 6;
    const r = await api(stack, 'POST', '/v1/messages', {
      key: stack.adminKey,
      body: {
        tenantId: 'crashy',
        from: 'a@acme.example',
        to: [`r${i}@customer.example`],
        subject: `n${i}`,
        text: 'x',
        ...(scheduled ? { sendAt: new Date(Date.now() + 6000).toISOString() } : {}),
      },
    });
    assert.equal(r.status, 202);
    ids.push(r.body.id);
    rfcIds.push(r.body.messageId);
  }
  // The first six have each been refused once (451) and sit in their retry timers; four are scheduled.
  // Recorded, not only answered: a kill between the server's 451 and its record would (rightly) make
  // the worker repeat that attempt under the same number, and this test counts attempts.
  await eventually(() => peer.events.filter((e) => e.type === 'rejected').length >= 6, 30_000, 'six 451s');
  await eventually(
    async () =>
      (await stack.messages.col.find({ tenantId: 'crashy' }).toArray()).filter((d) => d.attempts[0]?.reply.startsWith('451 ')).length >= 6,
    30_000,
    'six 451s recorded',
  );
  first.kill('SIGKILL');
  await new Promise<void>((r) => first.once('exit', () => r()));
  assert.equal(peer.messages().length, 0, 'nothing delivered before the crash');
  await new Promise((r) => setTimeout(r, 4000));

  startWorker();
  let state = '';
  await eventually(
    async () => {
      const docs = await stack.messages.col.find({ tenantId: 'crashy' }).toArray();
      // Shown if this times out: which message is stuck, and where.
      state = JSON.stringify(docs.map((d) => [d._id.slice(-6), d.status, d.attempts.map((a) => a.outcome)]));
      return docs.every((d) => d.status === 'sent');
    },
    90_000,
    'all ten sent',
  ).catch((err: Error) => assert.fail(`${err.message}; messages: ${state}`));
  await new Promise((r) => setTimeout(r, 1000));
  const counts = new Map<string, number>();
  for (const m of peer.messages()) counts.set(m.messageId, (counts.get(m.messageId) ?? 0) + 1);
  for (const id of rfcIds) assert.equal(counts.get(id), 1, `${id} delivered ${counts.get(id) ?? 0} times`);
  assert.equal(peer.messages().length, 10);
  for (const id of ids) {
    const doc = await stack.messages.get('crashy', id);
    assert.equal(doc.attempts.length, 2, JSON.stringify(doc.attempts));
    assert.match(doc.attempts[0]!.reply, /^451 /);
  }
});
