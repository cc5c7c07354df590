import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { makeTestPki, type TestPki } from '../support/certs';
import { startPostfix, type PostfixInstance } from '../support/postfix';
import { eventually } from '../support/smtp-peer';
import { api, startStack, type Stack } from '../support/stack';

/**
 * End to end against a real MTA: a private Postfix from Debian's package (see
 * test/support/postfix.ts; install with `bash scripts/ensure-postfix.sh`) with STARTTLS required
 * and SASL PLAIN through a private Dovecot, delivering customer.example into Maildirs we read back.
 * API → Temporal workflow → nodemailer → Postfix submission → virtual(8) → Maildir.
 */
let stack: Stack;
let pki: TestPki;
let pf: PostfixInstance;

before(async () => {
  pki = makeTestPki(['localhost']);
  const t0 = Date.now();
  let postfixMs = 0;
  [pf, stack] = await Promise.all([
    startPostfix({ caCert: pki.caCert, serverKey: pki.serverKey, serverCert: pki.serverCert }).then((p) => {
      postfixMs = Date.now() - t0;
      return p;
    }),
    startStack(),
  ]);
  process.stdout.write(`private postfix ready on 127.0.0.1:${pf.port} in ${postfixMs} ms; postfix + stack in ${Date.now() - t0} ms\n`);
});
after(async () => {
  await Promise.all([stack?.stop(), pf?.stop()]);
});

async function createTenant(id: string, password: string): Promise<string> {
  const r = await api(stack, 'POST', '/v1/tenants', {
    key: stack.adminKey,
    body: {
      id,
      name: 'Postfix',
      domains: ['acme.example'],
      smtp: { host: 'localhost', port: pf.port, security: 'starttls', tls: { ca: pki.caCert } },
      auth: { type: 'password', user: pf.user, password },
      // This Postfix delivers customer.example only (no outbound), so verify's RCPT probe names a local mailbox.
      verify: { probeRecipient: 'postmaster@customer.example' },
    },
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal(typeof r.body.apiKey, 'string');
  return r.body.apiKey as string;
}

const verify = (id: string) => api(stack, 'POST', `/v1/tenants/${id}/verify`, { key: stack.adminKey });

/** The header block of a raw message, with folded lines unfolded. */
function headers(raw: string): string {
  const end = raw.search(/\r?\n\r?\n/);
  return (end >= 0 ? raw.slice(0, end) : raw).replace(/\r?\n[ \t]+/g, ' ');
}

function header(raw: string, name: string): string[] {
  const re = new RegExp(`^${name}:[ \\t]*(.*)$`, 'gim');
  return [...headers(raw).matchAll(re)].map((m) => m[1]!.trim());
}

describe('real Postfix (STARTTLS + SASL PLAIN, Maildir delivery)', { timeout: 180_000 }, () => {
  test('verify passes, the message is sent and lands once in each Maildir via ESMTPSA', { timeout: 150_000 }, async () => {
    const key = await createTenant('postfix-e2e', pf.password);

    const v = await verify('postfix-e2e');
    assert.equal(v.status, 200, JSON.stringify(v.body));
    assert.equal(v.body.ok, true, JSON.stringify(v.body));
    const steps: string[] = v.body.steps.map((s: { step: string }) => s.step);
    for (const step of ['starttls', 'tls', 'auth']) assert.ok(steps.includes(step), `verify steps ${steps.join(',')} lack ${step}`);
    assert.match(v.body.steps.find((s: { step: string }) => s.step === 'auth').reply, /^235/);

    const sent = await api(stack, 'POST', '/v1/messages', {
      key,
      body: {
        from: 'support@acme.example',
        to: ['alice@customer.example', 'bob@customer.example'],
        subject: 'Postfix end-to-end',
        text: 'delivered through a real MTA',
      },
    });
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    const { id, messageId } = sent.body as { id: string; messageId: string };
    assert.equal(typeof id, 'string');
    assert.match(messageId, /^<[^<>@\s]+@[^<>\s]+>$/);

    const done = await eventually(
      async () => {
        const r = await api(stack, 'GET', `/v1/messages/${id}`, { key });
        if (r.body?.status === 'failed' || r.body?.status === 'partially_sent') throw new Error(`message ended ${JSON.stringify(r.body)}`);
        return r.body?.status === 'sent' ? r.body : undefined;
      },
      60_000,
      `message ${id} to be sent`,
    );
    assert.equal(done.status, 'sent');

    for (const local of ['alice', 'bob']) {
      const messages = await eventually(
        async () => {
          const all = await pf.readMessages(local);
          return all.length > 0 ? all : undefined;
        },
        60_000,
        `a message in ${pf.mailboxDir(local)}`,
      );
      // Give a duplicate a moment to show up before asserting there is exactly one.
      await new Promise((r) => setTimeout(r, 500));
      const final = await pf.readMessages(local);
      assert.equal(final.length, 1, `${local} got ${messages.length} -> ${final.length} messages`);
      const raw = final[0]!;
      assert.deepEqual(header(raw, 'Message-ID'), [messageId], `${local}'s Message-ID`);
      assert.ok(raw.includes('delivered through a real MTA'), `${local}'s body:\n${raw}`);
      assert.deepEqual(header(raw, 'Subject'), ['Postfix end-to-end']);
      assert.ok(
        header(raw, 'Received').some((r) => / with ESMTPSA /.test(r)),
        `no Received header "with ESMTPSA" (authenticated over TLS) for ${local}:\n${headers(raw)}`,
      );
      assert.deepEqual(header(raw, 'Delivered-To'), [`${local}@customer.example`]);
    }
  });

  test('wrong password: verify fails at auth with the server 535', { timeout: 60_000 }, async () => {
    await createTenant('postfix-e2e-badpw', `${pf.password}-wrong`);
    const v = await verify('postfix-e2e-badpw');
    assert.equal(v.status, 200, JSON.stringify(v.body));
    assert.equal(v.body.ok, false, JSON.stringify(v.body));
    assert.equal(v.body.failedStep, 'auth', JSON.stringify(v.body));
    assert.match(v.body.reply ?? '', /^535 /, JSON.stringify(v.body));
    assert.equal(v.body.steps.at(-1).step, 'auth');
  });
});
