import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { classifyMail, type MailVerdict } from '../../src/domain/mail/classify';
import { fromRawMime, mailForClassification, mailFromRaw } from '../../src/inbound/mime';

/**
 * Every test/fixtures/mail/NAME.eml has NAME.json beside it: the exact verdict classifyMail must
 * give (docs/bounces.md describes where each sample's format comes from).
 */
const fixtures = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'mail');
const names = readdirSync(fixtures)
  .filter((f) => f.endsWith('.eml'))
  .map((f) => f.slice(0, -4))
  .sort();

test('every fixture has an expected verdict', () => {
  assert.ok(names.length > 0);
  for (const n of names) assert.doesNotThrow(() => readFileSync(path.join(fixtures, `${n}.json`)), `${n}.json is missing`);
});

/** What an inbound webhook carrying the same bytes sees (the default INBOUND_* limits). */
const INBOUND_LIMITS = { maxAttachmentBytes: 25 * 1024 * 1024, maxMimeParts: 500 };

for (const name of names) {
  test(`fixture ${name}`, async () => {
    const expected = JSON.parse(readFileSync(path.join(fixtures, `${name}.json`), 'utf8')) as MailVerdict;
    const raw = readFileSync(path.join(fixtures, `${name}.eml`));
    assert.deepEqual(classifyMail(await mailFromRaw(raw)), expected, 'bounce mailbox / CLI');
    assert.deepEqual(
      classifyMail(await mailForClassification(await fromRawMime(raw, 'mime', INBOUND_LIMITS))),
      expected,
      'inbound webhook',
    );
  });
}

test('a From that is no address (a bare MAILER-DAEMON) still reaches the classifier', async () => {
  const raw = Buffer.from('From: Mail Delivery System <MAILER-DAEMON>\r\nTo: a@acme.test\r\nSubject: Notice\r\n\r\nsee attached\r\n');
  const mail = await mailFromRaw(raw);
  assert.match(mail.from ?? '', /^Mail Delivery System MAILER-DAEMON$/);
});
