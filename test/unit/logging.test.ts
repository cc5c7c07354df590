import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger, loggablePath } from '../../src/logging';

test('secrets are redacted wherever they sit in a log object', () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  const log = createLogger('info', 'test', sink);
  log.info(
    {
      password: 'p1-secret',
      auth: { password: 'p2-secret', refreshToken: 'rt-secret', clientSecret: 'cs-secret' },
      body: { auth: { password: 'p3-secret' } },
      req: { headers: { authorization: 'Bearer ck_secret' } },
      accessToken: 'at-secret',
    },
    'hello',
  );
  const out = lines.join('');
  for (const s of ['p1-secret', 'p2-secret', 'p3-secret', 'rt-secret', 'cs-secret', 'ck_secret', 'at-secret']) {
    assert.ok(!out.includes(s), `${s} leaked: ${out}`);
  }
  assert.ok(out.includes('[redacted]'));
});

test('the inbound key in a webhook path is not logged', () => {
  assert.equal(loggablePath('/v1/inbound/mime/ib_secretkey123'), '/v1/inbound/mime/[redacted]');
  assert.equal(loggablePath('/v1/inbound/mailgun/ib_secretkey123/mime'), '/v1/inbound/mailgun/[redacted]/mime');
  assert.equal(loggablePath('/v1/messages/m_1'), '/v1/messages/m_1');
});
