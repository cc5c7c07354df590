import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { makeTestPki, type TestPki } from '../support/certs';
import { SmtpPeer } from '../support/smtp-peer';
import { api, startStack, type Stack } from '../support/stack';

/**
 * POST /v1/tenants/:id/verify through the real worker against real SMTP server processes
 * (smtp-server in child processes): STARTTLS and implicit TLS, good and bad credentials, an
 * untrusted certificate, a closed port.
 */
let stack: Stack;
let trusted: TestPki;
let untrusted: TestPki;
let starttlsPeer: SmtpPeer;
let implicitPeer: SmtpPeer;
let untrustedPeer: SmtpPeer;
const users = { 'ops@acme.example': 'right-password' };

before(async () => {
  trusted = makeTestPki(['localhost']);
  untrusted = makeTestPki(['localhost']);
  [stack, starttlsPeer, implicitPeer, untrustedPeer] = await Promise.all([
    startStack(),
    SmtpPeer.start({ implicitTls: false, key: trusted.serverKey, cert: trusted.serverCert, users }),
    SmtpPeer.start({ implicitTls: true, key: trusted.serverKey, cert: trusted.serverCert, users }),
    SmtpPeer.start({ implicitTls: false, key: untrusted.serverKey, cert: untrusted.serverCert, users }),
  ]);
});
after(async () => {
  await Promise.all([stack?.stop(), starttlsPeer?.stop(), implicitPeer?.stop(), untrustedPeer?.stop()]);
});

let n = 0;
async function tenantFor(
  port: number,
  opts: { security?: 'starttls' | 'tls'; password?: string; ca?: string; host?: string } = {},
): Promise<string> {
  const id = `verify-${++n}`;
  const r = await api(stack, 'POST', '/v1/tenants', {
    key: stack.adminKey,
    body: {
      id,
      name: 'Verify',
      domains: ['acme.example'],
      smtp: {
        host: opts.host ?? 'localhost',
        port,
        security: opts.security ?? 'starttls',
        ...(opts.ca === undefined ? { tls: { ca: trusted.caCert } } : opts.ca ? { tls: { ca: opts.ca } } : {}),
      },
      auth: { type: 'password', user: 'ops@acme.example', password: opts.password ?? 'right-password' },
    },
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return id;
}

const verify = (id: string) => api(stack, 'POST', `/v1/tenants/${id}/verify`, { key: stack.adminKey });

describe('verify', () => {
  test('STARTTLS with the tenant CA and a good password: every step passes', async () => {
    const id = await tenantFor(starttlsPeer.port);
    const r = await verify(id);
    assert.equal(r.status, 200);
    assert.equal(r.body.ok, true, JSON.stringify(r.body));
    assert.deepEqual(
      r.body.steps.map((s: { step: string }) => s.step),
      // After AUTH the envelope of the login address (issue 15), ended by RSET: nothing is sent.
      ['dns', 'tcp', 'greeting', 'ehlo', 'starttls', 'tls', 'ehlo', 'auth', 'mail', 'rcpt', 'rset'],
    );
    assert.match(r.body.tls.protocol, /^TLSv1\.[23]$/);
    assert.ok(r.body.capabilities.some((c: string) => c.startsWith('AUTH')));
    assert.match(r.body.steps.find((s: { step: string }) => s.step === 'auth').reply, /^235/);
    assert.equal(starttlsPeer.messages().length, 0);
    assert.ok(starttlsPeer.events.some((e) => e.type === 'auth' && e.ok));
  });

  test('implicit TLS (465 style) passes', async () => {
    const id = await tenantFor(implicitPeer.port, { security: 'tls' });
    const r = await verify(id);
    assert.equal(r.body.ok, true, JSON.stringify(r.body));
    assert.deepEqual(
      r.body.steps.map((s: { step: string }) => s.step),
      ['dns', 'tcp', 'tls', 'greeting', 'ehlo', 'auth', 'mail', 'rcpt', 'rset'],
    );
  });

  test("a bad password reports the auth step and the server's exact 535 reply", async () => {
    const id = await tenantFor(starttlsPeer.port, { password: 'wrong-password' });
    const r = await verify(id);
    assert.equal(r.status, 200);
    assert.equal(r.body.ok, false);
    assert.equal(r.body.failedStep, 'auth');
    assert.equal(r.body.reply, '535 5.7.8 Error: authentication failed: bad credentials');
    // The password is in neither the answer nor the workflow history.
    assert.ok(!JSON.stringify(r.body).includes('wrong-password'));
  });

  test('an untrusted certificate is a TLS step failure, and AUTH is never attempted', async () => {
    const id = await tenantFor(untrustedPeer.port, { ca: '' });
    const before = untrustedPeer.events.filter((e) => e.type === 'auth').length;
    const r = await verify(id);
    assert.equal(r.body.ok, false);
    assert.equal(r.body.failedStep, 'tls');
    assert.match(r.body.error, /SELF_SIGNED|UNABLE_TO_VERIFY|unable to (get|verify)/i);
    assert.equal(untrustedPeer.events.filter((e) => e.type === 'auth').length, before);
  });

  test('a certificate for another name is a TLS failure too', async () => {
    const id = await tenantFor(starttlsPeer.port, { host: '127.0.0.1' });
    await stack.tenants.get(id);
    const patched = await api(stack, 'PATCH', `/v1/tenants/${id}`, {
      key: stack.adminKey,
      // A new TLS name is a new endpoint: the password must come with it (decisions.md, "Secrets bound to their tenant and endpoint").
      body: {
        smtp: { tls: { servername: 'mail.other.example' } },
        auth: { type: 'password', user: 'ops@acme.example', password: 'right-password' },
      },
    });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    const r = await verify(id);
    assert.equal(r.body.failedStep, 'tls');
    assert.match(r.body.error, /ERR_TLS_CERT_ALTNAME_INVALID|altnames/i);
  });

  test('connection refused is a TCP step failure', async () => {
    const closed = await SmtpPeer.start({ implicitTls: false, key: trusted.serverKey, cert: trusted.serverCert, users });
    const port = closed.port;
    await closed.stop();
    const id = await tenantFor(port);
    const r = await verify(id);
    assert.equal(r.body.ok, false);
    assert.equal(r.body.failedStep, 'tcp');
    assert.match(r.body.error, /ECONNREFUSED/);
  });

  test('the verify workflow is visible by TenantId and its history holds no clear secrets', async () => {
    const id = await tenantFor(starttlsPeer.port, { password: 'history-canary-pw' });
    await verify(id);
    const handles = stack.temporal.workflow.list({ query: `TenantId = "${id}"` });
    const found: string[] = [];
    for await (const wf of handles) found.push(wf.workflowId);
    assert.equal(found.length, 1);
    const history = await stack.temporal.workflow.getHandle(found[0]!).fetchHistory();
    const raw = JSON.stringify(history);
    assert.ok(!raw.includes('history-canary-pw'));
    assert.ok(!raw.includes(id + '"'), 'workflow input should be encrypted, not readable JSON');
    assert.ok(raw.includes(Buffer.from('binary/encrypted').toString('base64')), 'payloads carry the encrypted encoding');
  });
});

describe('codec endpoint', () => {
  test('decodes what the worker encrypted; refuses without the admin key', async () => {
    const id = await tenantFor(starttlsPeer.port);
    await verify(id);
    const found: string[] = [];
    for await (const wf of stack.temporal.workflow.list({ query: `TenantId = "${id}"` })) found.push(wf.workflowId);
    const history = await stack.temporal.workflow.getHandle(found[0]!).fetchHistory();
    const started = history.events!.find((e) => e.workflowExecutionStartedEventAttributes)!;
    const payload = started.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
    const wire = {
      payloads: [
        {
          metadata: Object.fromEntries(Object.entries(payload.metadata!).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
          data: Buffer.from(payload.data!).toString('base64'),
        },
      ],
    };
    const unauth = await api(stack, 'POST', '/codec/decode', { body: wire });
    assert.equal(unauth.status, 401);
    const r = await api(stack, 'POST', '/codec/decode', { key: stack.adminKey, body: wire });
    assert.equal(r.status, 200);
    const decoded = r.body.payloads[0];
    assert.equal(Buffer.from(decoded.metadata.encoding, 'base64').toString(), 'json/plain');
    assert.equal(JSON.parse(Buffer.from(decoded.data, 'base64').toString()), id);
  });
});
