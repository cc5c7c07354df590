import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  checkDkim,
  checkDmarc,
  checkSpf,
  parseSpf,
  parseTags,
  SPF_LOOKUP_LIMIT,
  type DnsAnswer,
  type DnsLookup,
} from '../../src/domain/mail-auth';
import {
  connectionFinding,
  dkimSelectorsFor,
  envelopeFindings,
  probeRecipientFor,
  sendersToVerify,
  sizeFinding,
  tenantWarnings,
} from '../../src/domain/verify-findings';

/** A DNS table: name → records per type; a missing name is NXDOMAIN, `timeout` names time out. */
function table(
  zone: Record<string, { txt?: string[]; a?: string[]; aaaa?: string[]; mx?: string[]; timeout?: boolean }>,
): DnsLookup & { queries: string[] } {
  const queries: string[] = [];
  const ask =
    (type: 'txt' | 'a' | 'aaaa' | 'mx') =>
    async (name: string): Promise<DnsAnswer> => {
      queries.push(`${type} ${name}`);
      const z = zone[name.toLowerCase()];
      if (!z) return { ok: false, error: 'nxdomain', detail: 'ENOTFOUND' };
      if (z.timeout) return { ok: false, error: 'timeout', detail: 'ETIMEOUT' };
      const r = z[type];
      return r && r.length > 0 ? { ok: true, records: r } : { ok: false, error: 'nodata', detail: 'ENODATA' };
    };
  return { txt: ask('txt'), a: ask('a'), aaaa: ask('aaaa'), mx: ask('mx'), queries };
}

const google = { includes: ['_spf.google.com'], ips: [] };

test('parseSpf: qualifiers, mechanisms with values and prefix lengths, redirect', () => {
  const p = parseSpf('v=spf1 ip4:192.0.2.0/24 -a:mail.example.com/28 ~mx ?include:x.example redirect=y.example exp=e.example');
  assert.ok(p);
  assert.deepEqual(
    p.terms.map((t) => [t.qualifier, t.name, t.value]),
    [
      ['+', 'ip4', '192.0.2.0/24'],
      ['-', 'a', 'mail.example.com/28'],
      ['~', 'mx', ''],
      ['?', 'include', 'x.example'],
    ],
  );
  assert.equal(p.redirect, 'y.example');
  assert.equal(parseSpf('v=spf10 -all'), null);
  assert.equal(parseSpf('spf1 -all'), null);
});

test('SPF: the preset include found directly or through a nested include passes, with the record shown', async () => {
  const dns = table({
    'acme.example': { txt: ['v=spf1 include:_spf.acme.example -all', 'google-site-verification=abc'] },
    '_spf.acme.example': { txt: ['v=spf1 ip4:198.51.100.1 include:_spf.google.com ~all'] },
  });
  const r = await checkSpf('acme.example', google, dns);
  assert.equal(r.authorized, true);
  assert.equal(r.finding.status, 'pass');
  assert.equal(r.finding.record, 'v=spf1 include:_spf.acme.example -all');
  assert.match(r.finding.message, /include:_spf\.acme\.example → include:_spf\.google\.com/);
});

test('SPF: a record that does not name the provider fails on -all and warns on ~all, with the include to add', async () => {
  const hard = await checkSpf('acme.example', google, table({ 'acme.example': { txt: ['v=spf1 ip4:198.51.100.0/24 -all'] } }));
  assert.equal(hard.authorized, false);
  assert.equal(hard.finding.status, 'fail');
  assert.match(hard.finding.fix ?? '', /add include:_spf\.google\.com to the SPF record of acme\.example/);
  const soft = await checkSpf('acme.example', google, table({ 'acme.example': { txt: ['v=spf1 mx ~all'] } }));
  assert.equal(soft.finding.status, 'warn');
});

test('SPF: own server found by ip4 CIDR, ip6, a and mx', async () => {
  const own = (ip: string) => ({ includes: [], ips: [ip] });
  const zone = table({
    'acme.example': { txt: ['v=spf1 ip4:203.0.113.0/28 ip6:2001:db8::/32 a:out.acme.example mx -all'], mx: ['mx1.acme.example'] },
    'out.acme.example': { a: ['192.0.2.7'] },
    'mx1.acme.example': { a: ['192.0.2.25'] },
  });
  for (const ip of ['203.0.113.9', '2001:db8::25', '192.0.2.7', '192.0.2.25']) {
    const r = await checkSpf('acme.example', own(ip), zone);
    assert.equal(r.finding.status, 'pass', `${ip}: ${r.finding.message}`);
  }
  const miss = await checkSpf('acme.example', own('203.0.113.99'), zone);
  assert.equal(miss.finding.status, 'fail');
  assert.match(miss.finding.fix ?? '', /ip4:\/ip6: .*203\.0\.113\.99/);
});

test('SPF: more than 10 lookups is a fail naming RFC 7208, and the walk stops there', async () => {
  const zone: Record<string, { txt: string[] }> = { 'acme.example': { txt: ['v=spf1 include:i0.example -all'] } };
  for (let i = 0; i < 30; i++) zone[`i${i}.example`] = { txt: [`v=spf1 include:i${i + 1}.example -all`] };
  const dns = table(zone);
  const r = await checkSpf('acme.example', google, dns);
  assert.equal(r.finding.status, 'fail');
  assert.match(r.finding.message, /more than 10 DNS lookups/);
  assert.ok(dns.queries.length <= SPF_LOOKUP_LIMIT + 1, `asked ${dns.queries.length}`);
});

test('SPF: an include loop, two records, a missing record and a timeout are findings, not crashes', async () => {
  const loop = await checkSpf(
    'a.example',
    google,
    table({ 'a.example': { txt: ['v=spf1 include:b.example -all'] }, 'b.example': { txt: ['v=spf1 include:a.example -all'] } }),
  );
  assert.equal(loop.finding.status, 'fail');
  const two = await checkSpf('a.example', google, table({ 'a.example': { txt: ['v=spf1 -all', 'v=spf1 include:_spf.google.com -all'] } }));
  assert.equal(two.finding.status, 'fail');
  assert.match(two.finding.message, /2 SPF records/);
  const none = await checkSpf('a.example', google, table({}));
  assert.equal(none.finding.status, 'warn');
  assert.match(none.finding.fix ?? '', /v=spf1 include:_spf\.google\.com ~all/);
  const slow = await checkSpf('a.example', google, table({ 'a.example': { timeout: true } }));
  assert.equal(slow.finding.status, 'fail');
  assert.match(slow.finding.message, /timed out/);
});

test('SPF: +all authorizes everyone and is a warning', async () => {
  const r = await checkSpf('a.example', google, table({ 'a.example': { txt: ['v=spf1 +all'] } }));
  assert.equal(r.finding.status, 'warn');
  assert.match(r.finding.message, /every server/);
});

test('SPF: a huge hostile record is parsed in bounded time and size', async () => {
  const record = 'v=spf1 ' + 'ip4:1.2.3.4 '.repeat(100_000) + '-all';
  const r = await checkSpf('a.example', google, table({ 'a.example': { txt: [record] } }));
  assert.equal(r.finding.status, 'warn'); // truncated to 4 KB: no -all seen, so neutral
  assert.ok((r.finding.record ?? '').length <= 520);
});

test('DKIM: key found, revoked key, missing selector', async () => {
  const dns = table({
    'google._domainkey.acme.example': { txt: ['v=DKIM1; k=rsa; p=MIIBIjANBgkq'] },
    'selector1._domainkey.acme.example': { txt: ['v=DKIM1; p='] },
  });
  const ok = await checkDkim('acme.example', ['google'], dns);
  assert.equal(ok.found, true);
  assert.equal(ok.findings[0]!.status, 'pass');
  assert.equal(ok.findings[0]!.record, 'v=DKIM1; k=rsa; p=MIIBIjANBgkq');
  const m = await checkDkim('acme.example', ['selector1', 'selector2'], dns);
  assert.equal(m.found, false);
  assert.deepEqual(
    m.findings.map((f) => [f.subject, f.status]),
    [
      ['selector1._domainkey.acme.example', 'fail'],
      ['selector2._domainkey.acme.example', 'fail'],
    ],
  );
  assert.match(m.findings[0]!.message, /revoked/);
  assert.match(m.findings[1]!.message, /NXDOMAIN/);
});

test('DMARC: policy and alignment shown; p=none warns; reject without SPF or DKIM fails; organizational fallback', async () => {
  const base = { domain: 'acme.example', spfAuthorized: true, spfCanAlign: true, dkimFound: false, dkimChecked: true };
  const reject = table({ '_dmarc.acme.example': { txt: ['v=DMARC1; p=reject; adkim=s; aspf=r; rua=mailto:d@acme.example'] } });
  const pass = await checkDmarc(base, reject);
  assert.equal(pass.status, 'pass');
  assert.match(pass.message, /p=reject \(alignment: DKIM strict, SPF relaxed\); passes through SPF/);
  assert.equal(pass.record, 'v=DMARC1; p=reject; adkim=s; aspf=r; rua=mailto:d@acme.example');
  const fail = await checkDmarc({ ...base, spfAuthorized: false }, reject);
  assert.equal(fail.status, 'fail');
  assert.match(fail.message, /receivers will reject this mail/);
  const relay = await checkDmarc({ ...base, spfCanAlign: false }, reject);
  assert.equal(relay.status, 'fail');
  assert.match(relay.fix ?? '', /SPF cannot align/);
  const none = await checkDmarc(base, table({ '_dmarc.acme.example': { txt: ['v=DMARC1; p=none'] } }));
  assert.equal(none.status, 'warn');
  const org = await checkDmarc(
    { ...base, domain: 'mail.acme.example' },
    table({ '_dmarc.acme.example': { txt: ['v=DMARC1; p=none; sp=quarantine'] } }),
  );
  assert.equal(org.subject, '_dmarc.acme.example');
  assert.match(org.message, /p=quarantine/, 'a subdomain takes sp=');
  const missing = await checkDmarc(base, table({}));
  assert.equal(missing.status, 'warn');
  assert.match(missing.fix ?? '', /v=DMARC1; p=none/);
  const two = await checkDmarc(base, table({ '_dmarc.acme.example': { txt: ['v=DMARC1; p=none', 'v=DMARC1; p=reject'] } }));
  assert.equal(two.status, 'fail');
  const bad = await checkDmarc(base, table({ '_dmarc.acme.example': { txt: ['v=DMARC1; p=maybe'] } }));
  assert.equal(bad.status, 'fail');
});

test('parseTags: first value wins, bounded', () => {
  const t = parseTags('v=DKIM1; p=AB CD; p=other; =x; k=ed25519');
  assert.equal(t.get('p'), 'ABCD');
  assert.equal(t.get('k'), 'ed25519');
  assert.equal(parseTags('a=b;'.repeat(100_000)).size, 1);
});

test('senders, probe recipient and selectors: configured first, then the defaults', () => {
  assert.deepEqual(sendersToVerify({ domains: ['acme.example'] }, 'ops@acme.example'), ['ops@acme.example']);
  assert.deepEqual(sendersToVerify({ domains: ['acme.example'] }, 'apikey'), ['postmaster@acme.example']);
  assert.deepEqual(sendersToVerify({ domains: ['acme.example'], verify: { senders: ['a@acme.example'] } }, 'ops@acme.example'), [
    'a@acme.example',
  ]);
  assert.equal(probeRecipientFor({}, undefined, 'a@acme.example'), 'a@acme.example');
  assert.equal(probeRecipientFor({}, 'probe@operator.example', 'a@acme.example'), 'probe@operator.example');
  assert.equal(probeRecipientFor({ verify: { probeRecipient: 'x@y.example' } }, 'probe@operator.example', 'a@acme.example'), 'x@y.example');
  assert.deepEqual(dkimSelectorsFor('gmail', undefined), ['google']);
  assert.deepEqual(dkimSelectorsFor('microsoft365', []), ['selector1', 'selector2']);
  assert.deepEqual(dkimSelectorsFor('cpanel', ['default']), ['default']);
  assert.deepEqual(dkimSelectorsFor(null, undefined), []);
});

test('finding texts: SendAsDenied, relay refusal, Gmail rewrite, SIZE, basic auth retirement', () => {
  const denied = envelopeFindings(
    {
      sender: 'sales@acme.example',
      recipient: 'p@x.example',
      ok: false,
      mailFrom: '550 5.7.60 SMTP; Client does not have permissions to send as this sender',
    },
    'microsoft365',
    'ops@acme.example',
  );
  assert.equal(denied[0]!.check, 'send_as');
  assert.equal(denied[0]!.status, 'fail');
  assert.equal(denied[0]!.reply, '550 5.7.60 SMTP; Client does not have permissions to send as this sender');
  assert.match(denied[0]!.fix ?? '', /Delegation → Send As.*ops@acme\.example/);

  const relay = envelopeFindings(
    {
      sender: 'a@acme.example',
      recipient: 'p@x.example',
      ok: false,
      mailFrom: '250 OK',
      rcptTo: '554 5.7.1 <p@x.example>: Relay access denied',
    },
    'cpanel',
    'a@acme.example',
  );
  assert.equal(relay[0]!.check, 'relay');
  assert.match(relay[0]!.message, /refuses to relay/);

  const gmail = envelopeFindings(
    { sender: 'sales@acme.example', recipient: 'p@x.example', ok: true, mailFrom: '250 2.1.0 OK', rcptTo: '250 2.1.5 OK' },
    'gmail',
    'ops@gmail.com',
  );
  assert.equal(gmail[0]!.status, 'warn');
  assert.match(gmail[0]!.message, /rewrites the From header to ops@gmail\.com/);
  assert.match(gmail[0]!.fix ?? '', /Send mail as/);
  const self = envelopeFindings(
    { sender: 'ops@gmail.com', recipient: 'ops@gmail.com', ok: true, mailFrom: '250 OK', rcptTo: '250 OK' },
    'gmail',
    'ops@gmail.com',
  );
  assert.equal(self[0]!.status, 'pass');

  assert.equal(sizeFinding(10 * 1024 * 1024, 25 * 1024 * 1024)?.status, 'warn');
  assert.match(sizeFinding(10 * 1024 * 1024, 25 * 1024 * 1024)?.fix ?? '', /maxMessageBytes ≤ 10485760/);
  assert.equal(sizeFinding(50 * 1024 * 1024, 25 * 1024 * 1024)?.status, 'pass');
  assert.equal(sizeFinding(undefined, 1), null);

  assert.deepEqual(
    tenantWarnings('microsoft365', 'password').map((w) => [w.code, w.docs]),
    [['basic_auth_retirement', 'docs/oauth.md']],
  );
  assert.deepEqual(tenantWarnings('microsoft365', 'oauth2'), []);
  assert.deepEqual(tenantWarnings('gmail', 'password'), []);

  const m365 = connectionFinding(
    {
      ok: false,
      host: 'smtp.office365.com',
      port: 587,
      security: 'starttls',
      steps: [],
      failedStep: 'auth',
      reply: '535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.',
    },
    'microsoft365',
  );
  assert.match(m365?.fix ?? '', /Authenticated SMTP/);
});
