import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { freePort } from '../../src/embedded/processes';
import { handleBounceOrComplaint } from '../../src/inbound/feedback';
import { classifyMail, type MailVerdict } from '../../src/domain/mail/classify';
import { mailFromRaw } from '../../src/inbound/mime';
import { EventRepository } from '../../src/store/events';
import { makeTestPki, type TestPki } from '../support/certs';
import { startPostfix, type PostfixInstance } from '../support/postfix';
import { eventually } from '../support/smtp-peer';
import { api, startStack, type Stack } from '../support/stack';

/**
 * Real DSNs from Debian's Postfix: Cartero sends through the private Postfix; Postfix accepts mail
 * for unknown local parts (so its queue manager, not smtpd, refuses them and writes an RFC 3464
 * bounce), routes slow.example to a closed port (so it defers and, after delay_warning_time, writes
 * a delay notice), and rewrites the tenant's sender address to postmaster@customer.example so the
 * notices land in a Maildir we read. The parser's verdict on them is then applied by
 * handleBounceOrComplaint to the store, and the API shows the result.
 */
let stack: Stack;
let pki: TestPki;
let pf: PostfixInstance;
let key: string;
const TENANT = 'bounce-pf';

before(async () => {
  pki = makeTestPki(['localhost']);
  const closedPort = await freePort();
  [pf, stack] = await Promise.all([
    startPostfix({
      caCert: pki.caCert,
      serverKey: pki.serverKey,
      serverCert: pki.serverCert,
      extraMainCf: [
        'smtpd_reject_unlisted_recipient = no',
        'virtual_alias_maps = inline:{ support@acme.example=postmaster@customer.example }',
        `transport_maps = inline:{ slow.example=smtp:[127.0.0.1]:${closedPort} }`,
        'delay_warning_time = 1s',
        'queue_run_delay = 1s',
        'minimal_backoff_time = 1s',
        'maximal_backoff_time = 2s',
      ],
    }),
    startStack(),
  ]);
  const r = await api(stack, 'POST', '/v1/tenants', {
    key: stack.adminKey,
    body: {
      id: TENANT,
      name: 'Bounces',
      domains: ['acme.example'],
      smtp: { host: 'localhost', port: pf.port, security: 'starttls', tls: { ca: pki.caCert } },
      auth: { type: 'password', user: pf.user, password: pf.password },
    },
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  key = r.body.apiKey;
});
after(async () => {
  await Promise.all([stack?.stop(), pf?.stop()]);
});

async function sendAndWait(to: string, subject: string, statuses = ['sent']): Promise<{ id: string; messageId: string }> {
  const sent = await api(stack, 'POST', '/v1/messages', { key, body: { from: 'support@acme.example', to: [to], subject, text: 'hello' } });
  assert.equal(sent.status, 202, JSON.stringify(sent.body));
  const { id, messageId } = sent.body as { id: string; messageId: string };
  await eventually(
    async () => {
      const m = await api(stack, 'GET', `/v1/messages/${id}`, { key });
      return statuses.includes(m.body?.status) ? m.body : undefined;
    },
    60_000,
    `message ${id} to reach ${statuses.join('|')}`,
  );
  return { id, messageId };
}

/** The first notice in postmaster's Maildir that reports on `messageId` and satisfies `want`. */
async function noticeFor(messageId: string, want: (v: MailVerdict) => boolean): Promise<{ raw: string; verdict: MailVerdict }> {
  return eventually(
    async () => {
      for (const raw of await pf.readMessages('postmaster')) {
        const verdict = classifyMail(await mailFromRaw(Buffer.from(raw)));
        if (verdict.originalMessageId === messageId && want(verdict)) return { raw, verdict };
      }
      return undefined;
    },
    60_000,
    `a notice about ${messageId} in ${pf.mailboxDir('postmaster')}`,
  );
}

describe('DSNs from a real Postfix', { timeout: 240_000 }, () => {
  test(
    'unknown mailbox: bounce 5.1.1 userunknown, hard; applied: recipient bounced, suppressed, event, later sends skip it',
    { timeout: 150_000 },
    async () => {
      const { id, messageId } = await sendAndWait('nobody@customer.example', 'To a mailbox that does not exist');
      const { raw, verdict } = await noticeFor(messageId, (v) => v.kind === 'bounce');
      assert.match(raw, /report-type=delivery-status/, 'Postfix writes an RFC 3464 multipart/report');
      assert.equal(verdict.rule, 'dsn-failed');
      assert.equal(verdict.bounces.length, 1);
      const b = verdict.bounces[0]!;
      assert.equal(b.recipient, 'nobody@customer.example');
      assert.equal(b.status, '5.1.1');
      assert.equal(b.reason, 'userunknown');
      assert.equal(b.hard, true);
      assert.match(b.diagnostic ?? '', /unknown/i);

      const events = new EventRepository(stack.store.db);
      const deps = { messages: stack.messages, suppressions: stack.suppressions, events };
      const result = await handleBounceOrComplaint(deps, TENANT, verdict, { channel: 'test', noticeId: null });
      assert.deepEqual(result, { messageId: id, recipients: [{ address: 'nobody@customer.example', matched: true, suppressed: true }] });
      // Another tenant cannot act on this tenant's message.
      const foreign = await handleBounceOrComplaint(deps, 'someone-else', verdict, { channel: 'test', noticeId: null });
      assert.equal(foreign.messageId, null);
      // Applying the same notice again changes nothing more.
      await handleBounceOrComplaint(deps, TENANT, verdict, { channel: 'test', noticeId: null });

      const m = await api(stack, 'GET', `/v1/messages/${id}`, { key });
      assert.equal(m.body.status, 'bounced', JSON.stringify(m.body));
      const stored = await stack.messages.get(TENANT, id);
      assert.equal(stored.recipients[0]!.status, 'bounced');
      assert.equal(stored.recipients[0]!.feedback?.reason, 'userunknown');
      assert.equal(stored.recipients[0]!.feedback?.hard, true);

      const s = await api(stack, 'GET', '/v1/suppressions/nobody@customer.example', { key });
      assert.equal(s.status, 200, JSON.stringify(s.body));
      assert.equal(s.body.source, 'bounce');
      assert.equal(s.body.reason, 'userunknown');
      const bounced = (await events.listForTenant(TENANT)).filter((e) => e.type === 'message.bounced');
      assert.equal(bounced.length, 1);
      assert.equal(bounced[0]!.messageId, id);
      assert.equal(bounced[0]!.data.recipient, 'nobody@customer.example');

      const again = await sendAndWait('nobody@customer.example', 'Once more', ['suppressed']);
      const skipped = await stack.messages.get(TENANT, again.id);
      assert.equal(skipped.recipients[0]!.status, 'suppressed');
    },
  );

  test(
    'deferred delivery: a delay notice (Action: delayed), kind delay, soft; applied: deferred event, no suppression',
    { timeout: 150_000 },
    async () => {
      const { id, messageId } = await sendAndWait('late@slow.example', 'To a host that refuses connections');
      const { verdict } = await noticeFor(messageId, (v) => v.kind === 'delay');
      assert.equal(verdict.rule, 'dsn-delayed');
      const b = verdict.bounces[0]!;
      assert.equal(b.recipient, 'late@slow.example');
      assert.match(b.status ?? '', /^4\./);
      assert.equal(b.hard, false);
      assert.equal(b.reason, 'networkerror', b.diagnostic ?? '');
      assert.match(b.diagnostic ?? '', /refused/i);

      const events = new EventRepository(stack.store.db);
      const deps = { messages: stack.messages, suppressions: stack.suppressions, events };
      const result = await handleBounceOrComplaint(deps, TENANT, verdict, { channel: 'test', noticeId: '<notice-1@localhost>' });
      assert.deepEqual(result.recipients, [{ address: 'late@slow.example', matched: true, suppressed: false }]);
      assert.equal((await api(stack, 'GET', '/v1/suppressions/late@slow.example', { key })).status, 404);
      const deferred = (await events.listForTenant(TENANT)).filter((e) => e.type === 'message.deferred' && e.messageId === id);
      assert.equal(deferred.length, 1);
      assert.equal(deferred[0]!.data.reason, 'networkerror');
      const stored = await stack.messages.get(TENANT, id);
      assert.equal(stored.status, 'sent', 'a delay does not change the message status');
      assert.equal(stored.recipients[0]!.status, 'sent');
      assert.equal(stored.recipients[0]!.feedback?.kind, 'delay');
    },
  );
});
