import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  credentialMoveProblems,
  endpointKey,
  imapCredentialEndpoint,
  movedEndpointFields,
  tenantCredentialEndpoint,
} from '../../src/domain/credential-endpoint';
import { DecryptionError, Keyring } from '../../src/security/crypto';
import { openTenantSecret, sealScopeOf, sealTenantSecret, type SealPlace, type TenantSealScope } from '../../src/store/tenant-seal';

const ring = new Keyring(new Map([['k1', randomBytes(32)]]), 'k1');
const settings = (over: Partial<{ host: string; port: number; ca: string; servername: string; preset: string | null }> = {}) => ({
  preset: over.preset === undefined ? null : over.preset,
  smtp: {
    host: over.host ?? 'smtp.acme.example',
    port: over.port ?? 587,
    tls: { ...(over.ca ? { ca: over.ca } : {}), ...(over.servername ? { servername: over.servername } : {}) },
  },
});
const password = { type: 'password' };
const generic = (tokenUrl: string) => ({ type: 'oauth2', provider: 'generic', tokenUrl });

test('the credential endpoint: host, port, TLS trust and name, preset; host compared without case or trailing dot', () => {
  const base = tenantCredentialEndpoint(settings(), password);
  assert.deepEqual(movedEndpointFields(base, tenantCredentialEndpoint(settings({ host: 'SMTP.Acme.Example.' }), password)), []);
  assert.deepEqual(movedEndpointFields(base, tenantCredentialEndpoint(settings({ port: 2525 }), password)), ['smtp.port']);
  assert.deepEqual(movedEndpointFields(base, tenantCredentialEndpoint(settings({ host: 'evil.example', port: 25 }), password)), [
    'smtp.host',
    'smtp.port',
  ]);
  assert.deepEqual(movedEndpointFields(base, tenantCredentialEndpoint(settings({ ca: '-----BEGIN CERTIFICATE-----x' }), password)), [
    'smtp.tls.ca',
  ]);
  assert.deepEqual(movedEndpointFields(base, tenantCredentialEndpoint(settings({ servername: 'mx.evil.example' }), password)), [
    'smtp.tls.servername',
  ]);
  assert.deepEqual(movedEndpointFields(base, tenantCredentialEndpoint(settings({ preset: 'gmail' }), password)), ['preset']);
});

test('OAuth2 adds the token endpoint: provider, token URL, authority, Entra tenant', () => {
  const a = tenantCredentialEndpoint(settings(), generic('https://idp.example/token'));
  const b = tenantCredentialEndpoint(settings(), generic('https://evil.example/token'));
  assert.deepEqual(movedEndpointFields(a, b), ['auth.tokenUrl']);
  const ms = (authority: string, entraTenantId: string) =>
    tenantCredentialEndpoint(settings(), { type: 'oauth2', provider: 'microsoft', authority, entraTenantId });
  assert.deepEqual(movedEndpointFields(ms('https://login.example', 'contoso'), ms('https://evil.example', 'contoso')), ['auth.authority']);
  assert.deepEqual(movedEndpointFields(ms('', 'contoso'), ms('', 'fabrikam')), ['auth.entraTenantId']);
  assert.notEqual(endpointKey(a), endpointKey(b));
});

test('IMAP endpoint: host, port, TLS trust; the mailbox and folders are not part of it', () => {
  const e = (host: string, port: number, ca?: string) => imapCredentialEndpoint({ host, port, tls: ca ? { ca } : {} });
  assert.deepEqual(movedEndpointFields(e('imap.acme.example', 993), e('IMAP.acme.example', 993)), []);
  assert.deepEqual(movedEndpointFields(e('imap.acme.example', 993), e('imap.evil.example', 993, 'pem')), ['host', 'tls.ca']);
});

test('a move that keeps stored secrets is refused naming each moved field and the one to re-supply', () => {
  const before = tenantCredentialEndpoint(settings(), password);
  const after = tenantCredentialEndpoint(settings({ port: 25 }), password);
  const problems = credentialMoveProblems(before, after, ['auth.password'], 'auth');
  assert.deepEqual(
    problems.map((p) => p.field),
    ['smtp.port', 'auth'],
  );
  assert.match(problems[0]!.message, /auth\.password/);
  // Nothing stored, or nothing moved: nothing to refuse.
  assert.deepEqual(credentialMoveProblems(before, after, [], 'auth'), []);
  assert.deepEqual(credentialMoveProblems(before, before, ['auth.password'], 'auth'), []);
});

const place = (bound: string): SealPlace => ({ place: 'auth.password', bound, legacyAad: 'tenant:acme:auth.password' });
const scope = (salt: string | null, acceptLegacy = false): TenantSealScope => ({ tenantId: 'acme', salt, acceptLegacy });

test('v2 values open only for the same tenant salt, place and endpoint', () => {
  const p1 = place(endpointKey(tenantCredentialEndpoint(settings(), password)));
  const sealed = sealTenantSecret(ring, scope('salt-1'), p1, 'hunter2');
  assert.match(sealed, /^v2\.k1\./);
  assert.equal(openTenantSecret(ring, scope('salt-1'), p1, sealed), 'hunter2');
  // Moved endpoint.
  const moved = place(endpointKey(tenantCredentialEndpoint(settings({ port: 2525 }), password)));
  assert.throws(() => openTenantSecret(ring, scope('salt-1'), moved, sealed), DecryptionError);
  // A new tenant with the same id (new salt).
  assert.throws(() => openTenantSecret(ring, scope('salt-2'), p1, sealed), DecryptionError);
  // Another field.
  assert.throws(() => openTenantSecret(ring, scope('salt-1'), { ...p1, place: 'auth.clientSecret' }, sealed), DecryptionError);
  // Relabelled as the old format: opened with the old associated data, and refused.
  assert.throws(() => openTenantSecret(ring, scope('salt-1', true), p1, sealed.replace(/^v2\./, 'v1.')), DecryptionError);
});

test('v1 values (before salts) open only while the tenant is from before salts or being upgraded', () => {
  const p1 = place('anything');
  const legacy = ring.seal('hunter2', p1.legacyAad);
  assert.equal(openTenantSecret(ring, scope(null, true), p1, legacy), 'hunter2');
  assert.equal(openTenantSecret(ring, scope('salt-1', true), p1, legacy), 'hunter2');
  assert.throws(() => openTenantSecret(ring, scope('salt-1', false), p1, legacy), /sealed before tenant acme was created/);
  // A tenant without a salt still seals the old way (until the upgrade reseals it).
  assert.match(sealTenantSecret(ring, scope(null, true), p1, 'x'), /^v1\./);
});

test('sealScopeOf: salt and legacy acceptance from the tenant document', () => {
  assert.deepEqual(sealScopeOf({ _id: 'a', salt: 's' }), { tenantId: 'a', salt: 's', acceptLegacy: false });
  assert.deepEqual(sealScopeOf({ _id: 'a', salt: 's', legacySeals: true }), { tenantId: 'a', salt: 's', acceptLegacy: true });
  assert.deepEqual(sealScopeOf({ _id: 'a' }), { tenantId: 'a', salt: null, acceptLegacy: true });
});

test('Keyring: both formats open with their AAD; formatOf and keyIdOf read them', () => {
  const v2 = ring.seal('x', 'aad', 'v2');
  assert.equal(Keyring.formatOf(v2), 'v2');
  assert.equal(Keyring.formatOf(ring.seal('x', 'aad')), 'v1');
  assert.equal(Keyring.formatOf('v3.k1.a.b.c'), undefined);
  assert.equal(Keyring.keyIdOf(v2), 'k1');
  assert.equal(ring.open(v2, 'aad'), 'x');
  assert.throws(() => ring.open('v3.k1.a.b.c', 'aad'), DecryptionError);
});
