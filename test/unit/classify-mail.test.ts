import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { classifyMail, type MailVerdict } from '../../src/domain/mail/classify';
import { mailFromRaw } from '../../src/mail/from-mime';

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

for (const name of names) {
  test(`fixture ${name}`, async () => {
    const expected = JSON.parse(readFileSync(path.join(fixtures, `${name}.json`), 'utf8')) as MailVerdict;
    const verdict = classifyMail(await mailFromRaw(readFileSync(path.join(fixtures, `${name}.eml`))));
    assert.deepEqual(verdict, expected);
  });
}
