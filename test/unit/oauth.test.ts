import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { classifyTokenError, consentProblem, missingCredential, refreshAt, usableUntil, type OAuth2Auth } from '../../src/domain/oauth';
import { authSchema } from '../../src/domain/tenant';
import { ConsentError } from '../../src/errors';
import { newPkce, signState, verifyState } from '../../src/oauth/state';
import { Keyring } from '../../src/security/crypto';

const keyring = (kid = 'k1') => new Keyring(new Map([[kid, randomBytes(32)]]), kid);

describe('consent state', () => {
  const ring = keyring();
  const make = (exp = Date.now() + 60_000) => signState(ring, { tenantId: 'acme', provider: 'google', exp, codeVerifier: 'v'.repeat(43) });

  test('round trip: tenant, provider, sealed PKCE verifier; the verifier is not readable in the state', () => {
    const { state, sid } = make();
    const s = verifyState(ring, state);
    assert.equal(s.tenantId, 'acme');
    assert.equal(s.provider, 'google');
    assert.equal(s.sid, sid);
    assert.equal(s.codeVerifier, 'v'.repeat(43));
    assert.ok(!Buffer.from(state.split('.')[0]!, 'base64url').toString().includes('vvvv'));
  });

  test('a changed payload, a changed signature, another keyring or garbage: invalid_state', () => {
    const { state } = make();
    const [payload, kid, sig] = state.split('.') as [string, string, string];
    const other = Buffer.from(Buffer.from(payload, 'base64url').toString().replace('"acme"', '"evil"')).toString('base64url');
    const codeOf = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        assert.ok(err instanceof ConsentError);
        return err.code;
      }
      return 'accepted';
    };
    assert.equal(
      codeOf(() => verifyState(ring, `${other}.${kid}.${sig}`)),
      'invalid_state',
    );
    assert.equal(
      codeOf(() => verifyState(ring, `${payload}.${kid}.${sig.slice(0, -2)}AA`)),
      'invalid_state',
    );
    assert.equal(
      codeOf(() => verifyState(keyring(), state)),
      'invalid_state',
    );
    assert.equal(
      codeOf(() => verifyState(ring, `${payload}.nokey.${sig}`)),
      'invalid_state',
    );
    assert.equal(
      codeOf(() => verifyState(ring, 'garbage')),
      'invalid_state',
    );
  });

  test('expired: expired_state', () => {
    const { state } = make(Date.now() - 1);
    assert.throws(
      () => verifyState(ring, state),
      (e: unknown) => e instanceof ConsentError && e.code === 'expired_state',
    );
  });

  test('PKCE: S256 challenge of a 43-character verifier', () => {
    const { codeVerifier, codeChallenge } = newPkce();
    assert.match(codeVerifier, /^[\w-]{43}$/);
    assert.equal(codeChallenge, createHash('sha256').update(codeVerifier).digest('base64url'));
  });
});

describe('token decisions', () => {
  test('token endpoint errors: outages retry, refusals need a person', () => {
    assert.equal(classifyTokenError(undefined, undefined), 'unavailable');
    assert.equal(classifyTokenError(503, undefined), 'unavailable');
    assert.equal(classifyTokenError(429, undefined), 'unavailable');
    assert.equal(classifyTokenError(400, 'temporarily_unavailable'), 'unavailable');
    assert.equal(classifyTokenError(400, 'invalid_grant'), 'credentials');
    assert.equal(classifyTokenError(401, 'invalid_client'), 'credentials');
    assert.equal(classifyTokenError(400, undefined), 'credentials');
  });

  test('refresh margin before expiry, but not before half a short life', () => {
    assert.equal(refreshAt(0, 3_600_000, 300_000), 3_300_000);
    assert.equal(refreshAt(1000, 5000, 2000), 3000);
    assert.equal(refreshAt(0, 4000, 300_000), 2000);
  });

  test('a token is handed out with 30 s (or a quarter of a short life) left', () => {
    assert.equal(usableUntil({ obtainedAt: 0, expiresAt: 3_600_000 }), 3_570_000);
    assert.equal(usableUntil({ obtainedAt: 0, expiresAt: 4000 }), 3000);
  });

  const google: OAuth2Auth = {
    type: 'oauth2',
    provider: 'google',
    mode: 'refresh_token',
    user: 'a@b.example',
    clientId: 'c',
    clientSecret: 's',
  };
  test('consent only for delegated modes with a client secret; a refresh token is what is missing before it', () => {
    assert.equal(consentProblem(google, 'google'), null);
    assert.match(consentProblem(google, 'microsoft') ?? '', /not microsoft/);
    assert.match(consentProblem({ ...google, mode: 'service_account' }, 'google') ?? '', /needs no user consent/);
    assert.match(consentProblem({ type: 'password', user: 'u', password: 'p' }, 'google') ?? '', /not oauth2/);
    assert.match(missingCredential(google) ?? '', /consent flow/);
    assert.equal(missingCredential({ ...google, refreshToken: 'rt' }), null);
  });

  test('a service account private key keeps its PEM line breaks; other secrets may not carry CR/LF', () => {
    const { privateKey } = generateKeyPairSync('rsa', {
      modulusLength: 1024,
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    const sa = {
      type: 'oauth2',
      provider: 'google',
      mode: 'service_account',
      user: 'a@b.example',
      serviceAccountEmail: 'x@p.iam.gserviceaccount.com',
    };
    assert.equal(authSchema.safeParse({ ...sa, serviceAccountPrivateKey: privateKey }).success, true);
    assert.equal(authSchema.safeParse({ ...sa, serviceAccountPrivateKey: 'not a key' }).success, false);
    assert.equal(authSchema.safeParse({ ...sa, serviceAccountPrivateKey: `${privateKey}\u0000` }).success, false);
    assert.equal(authSchema.safeParse({ ...google, clientSecret: 'a\r\nb' }).success, false);
  });
});
