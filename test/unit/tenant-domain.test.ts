import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addressRefusal, classifyAddress } from '../../src/domain/network';
import { PRESETS, PRESET_NAMES } from '../../src/domain/presets';
import {
  ehloNameOf,
  mergeTenantPatch,
  resolveTenantSettings,
  tenantCreateSchema,
  tenantPatchSchema,
  type SettingsInput,
} from '../../src/domain/tenant';

const base: SettingsInput = { name: 'Acme', domains: ['acme.example'] };

test('every preset names its port, TLS mode and a message size', () => {
  assert.equal(PRESET_NAMES.length, 11);
  for (const name of PRESET_NAMES) {
    const p = PRESETS[name];
    assert.ok([465, 587, 25].includes(p.port), name);
    assert.ok(p.limits.maxMessageBytes >= 1024 * 1024, name);
  }
});

test('microsoft365 preset: 30 messages/minute and 10,000 recipients/day', () => {
  const { settings, problems } = resolveTenantSettings({ ...base, preset: 'microsoft365' }, 'oauth2');
  assert.deepEqual(problems, []);
  assert.equal(settings.smtp.host, 'smtp.office365.com');
  assert.equal(settings.smtp.port, 587);
  assert.equal(settings.smtp.security, 'starttls');
  assert.deepEqual(settings.limits.perMinute, { max: 30, countBy: 'messages' });
  assert.deepEqual(settings.limits.perDay, { max: 10000, countBy: 'recipients' });
});

test('gmail preset: 2,000/day; explicit values override the preset; null removes a limit', () => {
  const { settings } = resolveTenantSettings(
    { ...base, preset: 'gmail', smtp: { port: 465 }, limits: { perDay: null, perMinute: { max: 5, countBy: 'messages' } } },
    'password',
  );
  assert.equal(settings.smtp.host, 'smtp.gmail.com');
  assert.equal(settings.smtp.port, 465);
  assert.equal(settings.smtp.security, 'tls', 'port 465 implies implicit TLS');
  assert.equal(settings.limits.perDay, null);
  assert.deepEqual(settings.limits.perMinute, { max: 5, countBy: 'messages' });
  assert.equal(resolveTenantSettings({ ...base, preset: 'gmail' }, 'password').settings.limits.perDay?.max, 2000);
});

test('presets without a fixed host require smtp.host; ses requires a region', () => {
  for (const preset of ['cpanel', 'zimbra', 'exchange'] as const) {
    const { problems } = resolveTenantSettings({ ...base, preset }, 'password');
    assert.deepEqual(
      problems.map((p) => p.field),
      ['smtp.host'],
      preset,
    );
  }
  assert.deepEqual(
    resolveTenantSettings({ ...base, preset: 'ses' }, 'password').problems.map((p) => p.field),
    ['presetOptions.region'],
  );
  const ses = resolveTenantSettings({ ...base, preset: 'ses', presetOptions: { region: 'eu-west-1' } }, 'password');
  assert.equal(ses.settings.smtp.host, 'email-smtp.eu-west-1.amazonaws.com');
  assert.deepEqual(
    resolveTenantSettings(base, 'password').problems.map((p) => p.field),
    ['smtp.host'],
  );
});

test('an auth type the provider does not take is refused', () => {
  const { problems } = resolveTenantSettings({ ...base, preset: 'sendgrid' }, 'oauth2');
  assert.deepEqual(
    problems.map((p) => p.field),
    ['auth.type'],
  );
});

test('schema: CR/LF in host, port out of range, unknown field, unknown preset', () => {
  const r = tenantCreateSchema.safeParse({
    name: 'x',
    preset: 'hotmail',
    domains: ['a.example'],
    smtp: { host: 'evil\r\nRCPT TO:<x>', port: 0, colour: 'red' },
    auth: { type: 'password', user: 'u', password: 'p' },
  });
  assert.ok(!r.success);
  const paths = r.error.issues.map((i) => [...i.path, ...(i.code === 'unrecognized_keys' ? i.keys : [])].join('.'));
  assert.deepEqual(paths.sort(), ['preset', 'smtp.colour', 'smtp.host', 'smtp.port']);
});

test('schema: auth variants are discriminated and strict', () => {
  assert.ok(tenantCreateSchema.safeParse({ name: 'x', domains: ['a.example'], auth: { type: 'none' } }).success);
  const bad = tenantCreateSchema.safeParse({ name: 'x', domains: ['a.example'], auth: { type: 'oauth2', provider: 'yahoo' } });
  assert.ok(!bad.success);
  assert.deepEqual(bad.error.issues[0]!.path, ['auth', 'provider']);
});

test('PATCH merges nested objects and keeps unspecified settings', () => {
  const { settings } = resolveTenantSettings({ ...base, preset: 'microsoft365', tracking: { opens: true } }, 'password');
  const patch = tenantPatchSchema.parse({ smtp: { port: 25 }, tracking: { clicks: true }, limits: { perMinute: null } });
  const merged = mergeTenantPatch(settings, patch);
  const { settings: after, problems } = resolveTenantSettings(merged, 'password');
  assert.deepEqual(problems, []);
  assert.equal(after.smtp.host, 'smtp.office365.com');
  assert.equal(after.smtp.port, 25);
  assert.deepEqual(after.tracking, { opens: true, clicks: true, aggregateOnly: false });
  assert.equal(after.limits.perMinute, null);
  assert.deepEqual(after.limits.perDay, { max: 10000, countBy: 'recipients' });
});

test('EHLO name defaults to the first sending domain', () => {
  const { settings } = resolveTenantSettings({ ...base, smtp: { host: 'mail.acme.example' } }, 'password');
  assert.equal(ehloNameOf(settings), 'acme.example');
});

test('address classes, including IPv4-mapped IPv6 that would dodge a naive check', () => {
  assert.equal(classifyAddress('8.8.8.8'), 'public');
  assert.equal(classifyAddress('127.0.0.1'), 'loopback');
  assert.equal(classifyAddress('::1'), 'loopback');
  assert.equal(classifyAddress('::ffff:127.0.0.1'), 'loopback');
  assert.equal(classifyAddress('10.1.2.3'), 'private');
  assert.equal(classifyAddress('192.168.0.1'), 'private');
  assert.equal(classifyAddress('169.254.169.254'), 'linklocal');
  assert.equal(classifyAddress('fd00::1'), 'uniquelocal');
  assert.equal(classifyAddress('0.0.0.0'), 'reserved');
  assert.equal(addressRefusal('127.0.0.1', ['loopback']), null);
  assert.match(addressRefusal('127.0.0.1', [])!, /loopback.*SMTP_ALLOW_PRIVATE_NETWORKS/);
  assert.match(addressRefusal('0.0.0.0', ['loopback', 'private'])!, /reserved/);
});

test('verify settings: validated, senders must be in the sending domains, PATCH merges and null removes the probe address', () => {
  const input = tenantCreateSchema.parse({
    name: 'Acme',
    domains: ['acme.example'],
    auth: { type: 'none' },
    verify: { senders: ['Sales@acme.example'], probeRecipient: 'probe@ops.example', dkimSelectors: ['S1'] },
  });
  const { settings, problems } = resolveTenantSettings({ ...input, smtp: { host: 'mail.acme.example' } }, 'none');
  assert.deepEqual(problems, []);
  assert.deepEqual(settings.verify, { senders: ['sales@acme.example'], probeRecipient: 'probe@ops.example', dkimSelectors: ['s1'] });

  const outside = resolveTenantSettings({ ...base, smtp: { host: 'h.example' }, verify: { senders: ['a@other.example'] } }, 'none');
  assert.deepEqual(outside.problems, [{ field: 'verify.senders.0', message: "other.example is not one of the tenant's sending domains" }]);

  assert.equal(tenantCreateSchema.safeParse({ ...input, verify: { dkimSelectors: ['bad selector'] } }).success, false);
  assert.equal(tenantCreateSchema.safeParse({ ...input, verify: { unknown: 1 } }).success, false);

  const patched = resolveTenantSettings(mergeTenantPatch(settings, tenantPatchSchema.parse({ verify: { probeRecipient: null } })), 'none');
  assert.deepEqual(patched.settings.verify, { senders: ['sales@acme.example'], dkimSelectors: ['s1'] });
  const untouched = resolveTenantSettings(mergeTenantPatch(settings, tenantPatchSchema.parse({ name: 'New' })), 'none');
  assert.deepEqual(untouched.settings.verify, settings.verify);
  // Tenants stored before `verify` existed have none, and stay without one.
  assert.equal(resolveTenantSettings({ ...base, smtp: { host: 'h.example' } }, 'none').settings.verify, undefined);
});
