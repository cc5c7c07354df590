import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

/** Spawns the compiled CLI exactly as a user would run `node dist/cli.js parse-mail FILE.eml`. */
const cli = path.resolve(__dirname, '..', '..', 'src', 'cli.js');
const fixtures = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'mail');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

test('parse-mail prints one JSON verdict and exits 0', () => {
  const r = run('parse-mail', path.join(fixtures, 'exim-mailbox-disabled.eml'));
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n').length, 1);
  assert.deepEqual(JSON.parse(r.stdout), {
    kind: 'bounce',
    bounces: [
      {
        recipient: 'bob@example.net',
        status: '5.2.1',
        // A disabled mailbox: stop this message, keep the address (not suppressed).
        hard: false,
        permanent: true,
        reason: 'suspend',
        diagnostic:
          'host mx.example.net [192.0.2.50] SMTP error from remote mail server after RCPT TO:<bob@example.net>: 550 5.2.1 Mailbox disabled for this recipient',
      },
    ],
    originalMessageId: '<4d5e6f7a8b9c0d1e2f3a.cartero@acme.test>',
  });
});

test('parse-mail on a human reply: kind human, no bounces', () => {
  const r = run('parse-mail', path.join(fixtures, 'human-reply.eml'));
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { kind: 'human', bounces: [], originalMessageId: '<3a4b5c6d7e8f9a0b1c2d.cartero@acme.test>' });
});

test('bad files and usage: a clear message on stderr, exit 2, nothing on stdout', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cartero-cli-'));
  writeFileSync(path.join(dir, 'empty.eml'), '');
  writeFileSync(path.join(dir, 'json.eml'), '{"not":"mail"}\n');
  const cases: Array<[string[], RegExp]> = [
    [['parse-mail', path.join(dir, 'missing.eml')], /cannot read .*missing\.eml: no such file/],
    [['parse-mail', dir], /is a directory/],
    [['parse-mail', path.join(dir, 'empty.eml')], /empty\.eml is empty/],
    [['parse-mail', path.join(dir, 'json.eml')], /not an RFC 5322 message/],
    [['parse-mail'], /usage: node dist\/cli\.js parse-mail FILE\.eml/],
    [['frobnicate'], /usage:/],
  ];
  for (const [args, message] of cases) {
    const r = run(...args);
    assert.equal(r.status, 2, args.join(' '));
    assert.match(r.stderr, message);
    assert.equal(r.stdout, '');
  }
});
