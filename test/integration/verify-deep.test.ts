import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { makeTestPki, type TestPki } from '../support/certs';
import { createDnsLookup } from '../../src/activities/dns-lookup';
import { probeSmtp } from '../../src/activities/smtp-probe';
import { DnsServer } from '../support/dns-server';
import { startPostfix, type PostfixInstance } from '../support/postfix';
import { SmtpPeer } from '../support/smtp-peer';
import { api, startStack, type Stack } from '../support/stack';

/**
 * `verify` past AUTH (issue 15): MAIL FROM per sender, RCPT TO the probe address, RSET; SIZE against
 * maxMessageBytes; SPF/DKIM/DMARC of the sending domains. Against real processes: smtp-server peers
 * scripted to answer like Microsoft 365 (5.7.60 at MAIL FROM) or a relay-refusing server, a private
 * Postfix (sender login maps, relay restrictions, message_size_limit), and a local authoritative DNS
 * server the worker's resolver is pointed at (DNS_SERVERS).
 */
interface Finding {
  check: string;
  status: 'pass' | 'warn' | 'fail';
  subject?: string;
  message: string;
  reply?: string;
  record?: string;
  fix?: string;
}

let stack: Stack;
let pki: TestPki;
let dns: DnsServer;
let peer: SmtpPeer;
let pf: PostfixInstance;
const users = { 'ops@acme.example': 'right-password' };
const SEND_AS = '5.7.60 SMTP; Client does not have permissions to send as this sender';
const RELAY = '5.7.1 Unable to relay for probe@elsewhere.example';
const KEY = 'MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtest';

before(async () => {
  pki = makeTestPki(['localhost']);
  dns = await DnsServer.start({
    // acme.example: SPF names the own server (loopback) and Google; DKIM s1 and google; DMARC reject.
    'acme.example': { txt: ['v=spf1 ip4:127.0.0.1 include:_spf.acme.example -all', 'some-site-verification=1'] },
    '_spf.acme.example': { txt: ['v=spf1 include:_spf.google.com ~all'] },
    's1._domainkey.acme.example': { txt: [`v=DKIM1; k=rsa; p=${KEY}`] },
    'google._domainkey.acme.example': { txt: [`v=DKIM1; k=rsa; p=${KEY}`] },
    '_dmarc.acme.example': { txt: ['v=DMARC1; p=reject; adkim=s; rua=mailto:dmarc@acme.example'] },
    // beta.example: SPF without the server, no DKIM key, no DMARC.
    'beta.example': { txt: ['v=spf1 ip4:192.0.2.1 -all'] },
    // slow.example: its DNS never answers.
    'slow.example': { silent: true },
    '_dmarc.slow.example': { silent: true },
    's1._domainkey.slow.example': { silent: true },
  });
  [stack, peer, pf] = await Promise.all([
    startStack({ DNS_SERVERS: dns.address, DNS_TIMEOUT_MS: '300' }),
    SmtpPeer.start({
      implicitTls: false,
      key: pki.serverKey,
      cert: pki.serverCert,
      users,
      size: 1024 * 1024,
      mailFromReplies: { 'sales@acme.example': { code: 550, text: SEND_AS } },
      rcptReplies: { 'probe@elsewhere.example': { code: 550, text: RELAY } },
    }),
    startPostfix({
      caCert: pki.caCert,
      serverKey: pki.serverKey,
      serverCert: pki.serverCert,
      extraMainCf: [
        'message_size_limit = 2097152',
        'smtpd_sender_login_maps = inline:{ ops@acme.example=ops@acme.example }',
        'smtpd_sender_restrictions = reject_sender_login_mismatch',
      ],
    }),
  ]);
});
after(async () => {
  await Promise.all([stack?.stop(), peer?.stop(), pf?.stop(), dns?.stop()]);
});

let n = 0;
async function tenant(body: Record<string, unknown>): Promise<string> {
  const id = `deep-${++n}`;
  const r = await api(stack, 'POST', '/v1/tenants', {
    key: stack.adminKey,
    body: {
      id,
      name: 'Deep verify',
      domains: ['acme.example'],
      auth: { type: 'password', user: 'ops@acme.example', password: 'right-password' },
      ...body,
    },
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return id;
}

const smtpTo = (port: number) => ({ host: 'localhost', port, security: 'starttls', tls: { ca: pki.caCert } });
const verify = async (id: string) => {
  const r = await api(stack, 'POST', `/v1/tenants/${id}/verify`, { key: stack.adminKey });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body as {
    ok: boolean;
    status: string;
    failedStep?: string;
    reply?: string;
    sizeLimit?: number;
    findings: Finding[];
    warnings: Array<{ code: string; docs: string }>;
    steps: Array<{ step: string; ok: boolean; reply?: string }>;
    envelope: Array<{ sender: string; recipient: string; ok: boolean; mailFrom?: string; rcptTo?: string }>;
  };
};
const find = (fs: Finding[], check: string, subject?: string) =>
  fs.find((f) => f.check === check && (subject === undefined || f.subject === subject));

describe('verify past AUTH against an smtp-server peer', () => {
  test('Microsoft 365: a sender without Send As is refused at MAIL FROM with 5.7.60, reported with the reply and the fix; the basic-auth warning shows in verify and the tenant view', async () => {
    const id = await tenant({
      preset: 'microsoft365',
      smtp: smtpTo(peer.port),
      verify: { senders: ['ops@acme.example', 'sales@acme.example'] },
    });
    const before = peer.messages().length;
    const r = await verify(id);
    assert.equal(r.ok, false);
    assert.equal(r.failedStep, 'mail');
    assert.equal(r.reply, `550 ${SEND_AS}`);
    assert.deepEqual(
      r.envelope.map((e) => [e.sender, e.ok, e.mailFrom?.slice(0, 3)]),
      [
        ['ops@acme.example', true, '250'],
        ['sales@acme.example', false, '550'],
      ],
    );
    const denied = find(r.findings, 'send_as', 'sales@acme.example')!;
    assert.equal(denied.status, 'fail');
    assert.equal(denied.reply, `550 ${SEND_AS}`);
    assert.match(denied.fix!, /Delegation → Send As.*ops@acme\.example/);
    // Every transaction ended by RSET, none by DATA: nothing was sent.
    assert.equal(r.steps.filter((s) => s.step === 'rset').length, 2);
    assert.equal(peer.messages().length, before);
    assert.ok(peer.events.some((e) => e.type === 'rejected' && e.stage === 'mail'));
    // SIZE 1 MB < Microsoft 365's 25 MB default.
    assert.equal(r.sizeLimit, 1024 * 1024);
    const size = find(r.findings, 'size')!;
    assert.equal(size.status, 'warn');
    assert.match(size.fix!, /maxMessageBytes ≤ 1048576/);
    // Password on Microsoft 365: basic_auth_retirement, in the answer and the tenant view.
    assert.deepEqual(
      r.warnings.map((w) => [w.code, w.docs]),
      [['basic_auth_retirement', 'docs/oauth.md']],
    );
    assert.equal(find(r.findings, 'basic_auth_retirement')?.status, 'warn');
    const view = await api(stack, 'GET', `/v1/tenants/${id}`, { key: stack.adminKey });
    assert.deepEqual(
      view.body.warnings.map((w: { code: string }) => w.code),
      ['basic_auth_retirement'],
    );
    assert.deepEqual(view.body.verify, { senders: ['ops@acme.example', 'sales@acme.example'] });
    assert.equal(r.status, 'fail');
  });

  test('a relay refusal at RCPT TO the probe address is a relay finding with the exact reply', async () => {
    const id = await tenant({ smtp: smtpTo(peer.port), verify: { probeRecipient: 'probe@elsewhere.example' } });
    const r = await verify(id);
    assert.equal(r.ok, false);
    assert.equal(r.failedStep, 'rcpt');
    const relay = find(r.findings, 'relay')!;
    assert.equal(relay.status, 'fail');
    assert.equal(relay.reply, `550 ${RELAY}`);
    assert.match(relay.message, /refuses to relay for ops@acme\.example to probe@elsewhere\.example/);
  });

  test('Gmail: a sender other than the login is accepted at MAIL FROM and reported as a From-rewrite warning; DNS passes with the preset include and selector', async () => {
    const id = await tenant({ preset: 'gmail', smtp: smtpTo(peer.port), verify: { senders: ['ops@acme.example', 'team@acme.example'] } });
    const r = await verify(id);
    assert.equal(r.ok, true, JSON.stringify(r.findings));
    const rewrite = find(r.findings, 'send_as', 'team@acme.example')!;
    assert.equal(rewrite.status, 'warn');
    assert.match(rewrite.fix!, /Send mail as/);
    assert.equal(find(r.findings, 'mail_from', 'ops@acme.example')?.status, 'pass');
    const spf = find(r.findings, 'spf', 'acme.example')!;
    assert.equal(spf.status, 'pass', spf.message);
    assert.match(spf.message, /include:_spf\.acme\.example → include:_spf\.google\.com/);
    assert.equal(spf.record, 'v=spf1 ip4:127.0.0.1 include:_spf.acme.example -all');
    assert.equal(find(r.findings, 'dkim', 'google._domainkey.acme.example')?.status, 'pass');
    const dmarc = find(r.findings, 'dmarc')!;
    assert.equal(dmarc.status, 'pass');
    assert.match(dmarc.message, /p=reject \(alignment: DKIM strict, SPF relaxed\)/);
    assert.deepEqual(r.warnings, []);
  });
});

describe('DNS checks', () => {
  test('per domain: pass with the records seen, fail and warn with fixes, and a silent DNS server is a finding not a crash', async () => {
    const id = await tenant({
      domains: ['acme.example', 'beta.example', 'slow.example'],
      smtp: smtpTo(peer.port),
      verify: { dkimSelectors: ['s1'] },
    });
    const r = await verify(id);
    assert.equal(r.ok, true, 'DNS findings do not make the server fail');
    assert.equal(r.status, 'fail');
    // acme.example: the server's own address (localhost → 127.0.0.1) is in ip4:.
    assert.equal(find(r.findings, 'spf', 'acme.example')?.status, 'pass');
    assert.equal(find(r.findings, 'dkim', 's1._domainkey.acme.example')?.record, `v=DKIM1; k=rsa; p=${KEY}`);
    assert.equal(find(r.findings, 'dmarc', '_dmarc.acme.example')?.status, 'pass');
    // beta.example: SPF -all without the server, no key, no DMARC.
    const spf = find(r.findings, 'spf', 'beta.example')!;
    assert.equal(spf.status, 'fail');
    assert.equal(spf.record, 'v=spf1 ip4:192.0.2.1 -all');
    assert.match(spf.fix!, /ip4:\/ip6: mechanisms/);
    const dkim = find(r.findings, 'dkim', 's1._domainkey.beta.example')!;
    assert.equal(dkim.status, 'fail');
    assert.match(dkim.message, /NXDOMAIN/);
    assert.equal(find(r.findings, 'dmarc', '_dmarc.beta.example')?.status, 'warn');
    // slow.example: timeouts everywhere.
    const slow = r.findings.filter((f) => (f.subject ?? '').includes('slow.example'));
    assert.ok(slow.length >= 3, JSON.stringify(slow));
    for (const f of slow) assert.match(f.message, /timed out/, JSON.stringify(f));
    assert.ok(dns.queries.some((q) => q.name === 's1._domainkey.beta.example' && q.qtype === 16));
  });
});

describe('time budgets', () => {
  test('senders left when the envelope budget is spent are reported untried, not run past the deadline', async () => {
    const r = await probeSmtp({
      host: 'localhost',
      port: peer.port,
      security: 'starttls',
      tls: { ca: pki.caCert },
      ehloName: 'acme.example',
      auth: { type: 'password', user: 'ops@acme.example', password: 'right-password' },
      allowPrivateNetworks: ['loopback'],
      timeoutMs: 5000,
      envelope: [{ sender: 'ops@acme.example', recipient: 'ops@acme.example' }],
      envelopeBudgetMs: -1,
    });
    assert.equal(r.ok, false);
    assert.match(r.envelope![0]!.error!, /not tried/);
    assert.equal(r.steps.filter((s) => s.step === 'mail').length, 0);
  });

  test('DNS queries after the deadline are timeouts without asking; before it the local server answers', async () => {
    const late = createDnsLookup({ servers: [dns.address], timeoutMs: 300, deadline: Date.now() - 1 });
    const before = dns.queries.length;
    assert.deepEqual(await late.txt('acme.example'), { ok: false, error: 'timeout', detail: "verify's time for DNS checks is spent" });
    const live = createDnsLookup({ servers: [dns.address], timeoutMs: 300 });
    const txt = await live.txt('_dmarc.acme.example');
    assert.ok(txt.ok && txt.records[0]!.startsWith('v=DMARC1'));
    assert.equal(
      dns.queries.filter((q) => q.name === 'acme.example').length,
      dns.queries.slice(0, before).filter((q) => q.name === 'acme.example').length,
    );
    assert.deepEqual(await live.txt('nowhere.example'), {
      ok: false,
      error: 'nxdomain',
      detail: 'ENOTFOUND: queryTxt ENOTFOUND nowhere.example',
    });
  });
});

describe('verify past AUTH against Postfix', () => {
  const pfTenant = (body: Record<string, unknown>) =>
    tenant({ smtp: smtpTo(pf.port), auth: { type: 'password', user: pf.user, password: pf.password }, ...body });

  test("the login address passes; a sender not owned by the login is refused (at RCPT, smtpd_delay_reject) with Postfix's reply; SIZE is message_size_limit", async () => {
    // The probe address is a mailbox this Postfix delivers (it refuses every other domain at RCPT).
    const id = await pfTenant({
      verify: { senders: ['ops@acme.example', 'other@acme.example'], probeRecipient: 'alice@customer.example' },
    });
    const r = await verify(id);
    assert.equal(r.ok, false);
    assert.equal(r.envelope[0]!.ok, true, JSON.stringify(r.envelope));
    assert.equal(r.envelope[1]!.ok, false);
    const refused = find(r.findings, 'mail_from', 'other@acme.example')!;
    assert.equal(refused.status, 'fail', JSON.stringify(r.findings));
    assert.match(refused.reply!, /^553 5\.7\.1 <other@acme\.example>: Sender address rejected: not owned by user ops@acme\.example/);
    assert.match(refused.message, /at RCPT TO/);
    assert.equal(r.sizeLimit, 2097152);
    assert.equal(find(r.findings, 'size')?.status, 'warn');
  });

  test('without AUTH Postfix refuses to relay to the probe address', async () => {
    const id = await pfTenant({ auth: { type: 'none' }, verify: { probeRecipient: 'probe@elsewhere.example' } });
    const r = await verify(id);
    assert.equal(r.failedStep, 'rcpt');
    const relay = find(r.findings, 'relay')!;
    assert.equal(relay.status, 'fail');
    // The submission service's smtpd_relay_restrictions end in a bare `reject`: Postfix words it "Access denied".
    assert.equal(relay.reply, '554 5.7.1 <probe@elsewhere.example>: Recipient address rejected: Access denied');
    assert.match(relay.message, /refuses to relay/);
    assert.match(relay.fix!, /AUTH/);
  });
});
