import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { SISIMAI_DEFAULTS, SisimaiBridge } from '../../src/inbound/sisimai';

/**
 * The long-lived Perl bridge to Sisimai (src/inbound/sisimai.ts). Runs the real bridge.pl against Debian's
 * libsisimai-perl, installed by scripts/ensure-sisimai.sh (npm test runs it).
 */
const fixtures = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'mail');
const mail = (name: string) => readFileSync(path.join(fixtures, name));

test('one Perl process answers many messages with Sisimai verdicts', async () => {
  const bridge = new SisimaiBridge();
  try {
    assert.match((await bridge.version()) ?? '', /^4\.25\./);
    const [qmail, human, arf] = await Promise.all([
      bridge.verdicts(mail('qmail-userunknown.eml')),
      bridge.verdicts(mail('human-reply.eml')),
      bridge.verdicts(mail('arf-abuse.eml')),
    ]);
    assert.equal(qmail?.length, 1);
    assert.equal(qmail[0]!.recipient, 'carol@example.com');
    assert.equal(qmail[0]!.deliverystatus, '5.1.1');
    assert.equal(qmail[0]!.reason, 'userunknown');
    assert.equal(qmail[0]!.softbounce, 0);
    assert.equal(qmail[0]!.smtpagent, 'qmail');
    assert.equal(qmail[0]!.messageid, '5e6f7a8b9c0d1e2f3a4b.cartero@acme.test');
    assert.deepEqual(human, []);
    assert.equal(arf?.[0]?.reason, 'feedback');
    assert.equal(arf[0].feedbacktype, 'abuse');
    assert.equal(bridge.starts, 1, 'one process for all three messages');
  } finally {
    await bridge.close();
  }
});

test('a bridge that never answers is killed at the time limit and started again for the next message', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cartero-sisimai-'));
  const script = path.join(dir, 'mute.pl');
  // Greets like the real bridge, then reads requests and never answers.
  writeFileSync(script, '$| = 1; print qq({"ready":1,"version":"4.25.0"}\\n); while (<STDIN>) { }\n');
  const bridge = new SisimaiBridge({ ...SISIMAI_DEFAULTS, script, timeoutMs: 300 });
  try {
    assert.equal(await bridge.verdicts(mail('qmail-userunknown.eml')), null);
    assert.equal(await bridge.verdicts(mail('qmail-userunknown.eml')), null);
    assert.equal(bridge.starts, 2);
  } finally {
    await bridge.close();
  }
});

test('a bridge that dies is started again, and the real one answers after it', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cartero-sisimai-'));
  const flag = path.join(dir, 'died-once');
  const real = path.resolve(__dirname, '..', '..', '..', 'src', 'inbound', 'sisimai', 'bridge.pl');
  const script = path.join(dir, 'dies-once.pl');
  // The first process dies on its first request; later ones run the real bridge.
  writeFileSync(
    script,
    `if (!-e '${flag}') { $| = 1; print qq({"ready":1,"version":"4.25.0"}\\n); my $l = <STDIN>; open(my $f, '>', '${flag}'); close $f; exit 3; }\ndo '${real}'; die $@ if $@;\n`,
  );
  const bridge = new SisimaiBridge({ ...SISIMAI_DEFAULTS, script });
  try {
    assert.equal(await bridge.verdicts(mail('qmail-userunknown.eml')), null);
    const again = await bridge.verdicts(mail('qmail-userunknown.eml'));
    assert.equal(again?.[0]?.reason, 'userunknown');
    assert.equal(bridge.starts, 2);
  } finally {
    await bridge.close();
  }
});

test('no Perl, or a message over the size cap: null at once (the caller keeps its own verdict)', async () => {
  const missing = new SisimaiBridge({ ...SISIMAI_DEFAULTS, perl: '/nonexistent/perl' });
  assert.equal(await missing.verdicts(mail('qmail-userunknown.eml')), null);
  assert.match(missing.unavailable ?? '', /cannot start/);
  assert.equal(await missing.version(), null);
  await missing.close();

  const small = new SisimaiBridge({ ...SISIMAI_DEFAULTS, maxBytes: 100 });
  assert.equal(await small.verdicts(mail('qmail-userunknown.eml')), null);
  assert.equal(small.starts, 0);
  await small.close();
});
