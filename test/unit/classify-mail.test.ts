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

test("Cartero's own rules (without Sisimai) read Outlook.com JMRP junk reports, SendGrid's `Action: expired` and DragonFly notices", async () => {
  const corpus = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'bounces');
  const read = async (f: string) => classifyMail(await mailFromRaw(readFileSync(path.join(corpus, f))));
  const jmrp = await read('jmrp/outlookcom-jmrp-0.eml');
  assert.equal(jmrp.kind, 'complaint');
  assert.equal(jmrp.rule, 'jmrp');
  assert.deepEqual(
    jmrp.bounces.map((b) => b.recipient),
    ['hanna.7c1@outlook.example'],
  );
  assert.equal(jmrp.originalMessageId, '<3f0c2d9e8b7a6f5e4d3c.cartero@acme.example>');
  const expired = await read('sendgrid-legacy/sendgrid-expired-0.eml');
  assert.equal(expired.kind, 'bounce', 'a failure, not a success report');
  assert.deepEqual(
    expired.bounces.map((b) => [b.recipient, b.hard]),
    [['ines.4d2@mail.example.net', false]],
  );
  const dma = await read('dragonfly/dragonfly-dmarc-0.eml');
  assert.equal(dma.rule, 'ndr-dragonfly');
  assert.deepEqual(
    dma.bounces.map((b) => [b.recipient, b.status, b.hard]),
    [['jonas.9e4@mail.example.com', '5.7.26', false]],
  );
  assert.match(dma.bounces[0]!.diagnostic ?? '', /DMARC policy/);
  assert.equal(dma.originalMessageId, '<5d4c3b2a19f8e7d6c5b4.cartero@acme.example>');
});
