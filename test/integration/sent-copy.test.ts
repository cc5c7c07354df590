import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ImapFlow } from 'imapflow';
import { makeTestPki, type TestPki } from '../support/certs';
import { startDovecotImap, type DovecotImap } from '../support/dovecot-imap';
import { eventually, SmtpPeer } from '../support/smtp-peer';
import { api, createPeerTenant, messageUntil, startStack, type Stack } from '../support/stack';
import { sentCopyWorkflowId } from '../../src/temporal/handoffs/sent-copy';

/**
 * The Sent-folder copy end to end: Cartero sends through a real SMTP server process, then appends
 * the same bytes over IMAP (imapflow, TLS) to the mailbox a real, private Dovecot flags `\Sent`
 * (named "Outbox Copies", next to an unflagged "Sent"), in the sending account.
 */
let stack: Stack;
let pki: TestPki;
let imap: DovecotImap;
const peers: SmtpPeer[] = [];

before(async () => {
  pki = makeTestPki(['localhost']);
  [imap, stack] = await Promise.all([startDovecotImap({ serverKey: pki.serverKey, serverCert: pki.serverCert }), startStack()]);
});
after(async () => {
  await Promise.all([stack?.stop(), imap?.stop(), ...peers.map((p) => p.stop())]);
});

async function tenantWith(id: string, smtpPassword: string): Promise<{ key: string; peer: SmtpPeer }> {
  const peer = await SmtpPeer.start({ implicitTls: false, key: pki.serverKey, cert: pki.serverCert, users: { [imap.user]: smtpPassword } });
  peers.push(peer);
  const key = await createPeerTenant(stack, id, peer, pki.caCert, {
    auth: { type: 'password', user: imap.user, password: smtpPassword },
    sentCopy: 'on',
    imap: { host: 'localhost', port: imap.port, security: 'starttls' },
  });
  return { key, peer };
}

async function send(key: string, subject: string): Promise<string> {
  const r = await api(stack, 'POST', '/v1/messages', {
    key,
    body: { from: 'bounces@acme.example', to: ['alice@customer.example'], subject, text: 'hello, with a copy in Sent' },
  });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const id = r.body.id as string;
  assert.equal((await messageUntil(stack, key, id, ['sent', 'failed'], 60_000)).status, 'sent');
  return id;
}

/** The messages of the mailbox Dovecot flags \Sent, read the way a mail client would. */
async function sentFolder(): Promise<{ path: string; sources: Buffer[] }> {
  const client = new ImapFlow({
    host: 'localhost',
    port: imap.port,
    secure: false,
    doSTARTTLS: true,
    auth: { user: imap.user, pass: imap.password },
    tls: { ca: [pki.caCert] },
    logger: false,
  });
  await client.connect();
  try {
    const sent = (await client.list()).find((f) => f.specialUse === '\\Sent' && f.specialUseSource === 'extension');
    assert.ok(sent, 'Dovecot has a \\Sent mailbox');
    const lock = await client.getMailboxLock(sent.path);
    try {
      const all = client.mailbox && client.mailbox.exists > 0 ? await client.fetchAll('1:*', { source: true }) : [];
      return { path: sent.path, sources: all.map((m) => m.source!) };
    } finally {
      lock.release();
    }
  } finally {
    await client.logout();
  }
}

describe('Sent-folder copy against a real Dovecot', { timeout: 300_000 }, () => {
  test('after the 250, the exact bytes sent are appended to the \\Sent special-use folder, once', async () => {
    const { key, peer } = await tenantWith('sent-copy-ok', imap.password);
    const tenant = await api(stack, 'GET', '/v1/tenants/sent-copy-ok', { key });
    assert.equal(tenant.body.sentCopy, 'on');
    assert.equal(tenant.body.sentCopyPlan.append, true, JSON.stringify(tenant.body.sentCopyPlan));
    const id = await send(key, 'copied to Sent');
    const view = await eventually(
      async () => {
        const m = (await api(stack, 'GET', `/v1/messages/${id}`, { key })).body;
        return m.sentCopy?.status === 'appended' ? m : null;
      },
      60_000,
      'sentCopy appended',
    );
    assert.equal(view.sentCopy.folder, 'Outbox Copies', 'found by its \\Sent flag, not by the name "Sent"');
    const { path, sources } = await sentFolder();
    assert.equal(path, 'Outbox Copies');
    assert.equal(sources.length, 1);
    const delivered = peer.messages();
    assert.equal(delivered.length, 1);
    assert.ok(sources[0]!.equals(Buffer.from(delivered[0]!.raw)), 'the copy is byte-identical to what the SMTP server received');
    assert.equal(imap.list('Sent').length, 0, 'nothing in the folder merely named Sent');
    // The workflow id is the message's: starting the copy again (a replayed attempt) is a no-op.
    const d = await stack.temporal.workflow.getHandle(sentCopyWorkflowId('sent-copy-ok', id)).describe();
    assert.equal(d.status.name, 'COMPLETED');
  });

  test('an APPEND the server refuses (wrong password) shows failed on the message, and the mail is not sent again', async () => {
    const { key, peer } = await tenantWith('sent-copy-refused', 'smtp-only-password');
    const before = (await sentFolder()).sources.length;
    const id = await send(key, 'copy refused');
    const view = await eventually(
      async () => {
        const m = (await api(stack, 'GET', `/v1/messages/${id}`, { key })).body;
        return m.sentCopy?.status === 'failed' ? m : null;
      },
      60_000,
      'sentCopy failed',
    );
    assert.match(view.sentCopy.reason, /authentication failed/i);
    assert.equal(view.status, 'sent', 'the message stays sent');
    assert.equal(view.attempts.length, 1);
    const handle = stack.temporal.workflow.getHandle(sentCopyWorkflowId('sent-copy-refused', id));
    // Completed right after recording the failure: a refused login is not retried (the retry policy would wait 30 s).
    await eventually(async () => (await handle.describe()).status.name === 'COMPLETED', 20_000, 'the copy workflow to complete');
    const history = await handle.fetchHistory();
    const scheduled = (history.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'appendToSent');
    assert.equal(scheduled.length, 1);
    const started = (history.events ?? []).find((e) => e.activityTaskStartedEventAttributes);
    assert.equal(started?.activityTaskStartedEventAttributes?.attempt, 1, 'one attempt of the APPEND');
    assert.equal(peer.messages().length, 1, 'the SMTP server got the mail once');
    assert.equal((await sentFolder()).sources.length, before, 'nothing appended');
    assert.ok(/auth failed|Authentication failed|password mismatch/i.test(imap.log()), 'Dovecot saw the refused login');
  });
});
