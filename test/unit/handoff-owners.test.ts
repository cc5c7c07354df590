import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import * as bounceWatch from '../../src/temporal/handoffs/bounce-mailbox-watch';
import * as cases from '../../src/temporal/handoffs/case';
import * as oauthToken from '../../src/temporal/handoffs/oauth-token';
import * as rateLimiter from '../../src/temporal/handoffs/rate-limiter';
import * as reconciler from '../../src/temporal/handoffs/reconciler';
import * as sendMessage from '../../src/temporal/handoffs/send-message';
import * as sentCopy from '../../src/temporal/handoffs/sent-copy';
import * as tenantDeletion from '../../src/temporal/handoffs/tenant-deletion';
import * as verify from '../../src/temporal/handoffs/verify-connection';
import * as webhooks from '../../src/temporal/handoffs/webhook-delivery';

/**
 * Every Temporal hand-off (workflow type, signal, update, query, workflow id) is named only by its
 * owner module in src/temporal/handoffs/. This test reads the sources of src/ and test/ and fails on
 * any other place that names one as a string.
 */
const root = path.resolve(__dirname, '..', '..', '..');
const OWNERS = path.join('src', 'temporal', 'handoffs') + path.sep;
const modules = { bounceWatch, cases, oauthToken, rateLimiter, reconciler, sendMessage, sentCopy, tenantDeletion, verify, webhooks };

const workflowTypes = Object.values(modules).flatMap((m) =>
  Object.entries(m)
    .filter(([k, v]) => k.endsWith('_WORKFLOW') && typeof v === 'string')
    .map(([, v]) => v as string),
);
const handlerNames = Object.values(modules).flatMap((m) =>
  Object.values(m)
    .filter((v): v is { type: string; name: string } => typeof v === 'object' && v !== null && 'type' in v && 'name' in v)
    .filter((v) => ['signal', 'update', 'query'].includes(v.type))
    .map((v) => v.name),
);

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const p = path.join(dir, entry);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

const files = [...sources(path.join(root, 'src')), ...sources(path.join(root, 'test'))]
  .map((p) => path.relative(root, p))
  .filter((p) => !p.startsWith(OWNERS) && p !== path.join('test', 'unit', 'handoff-owners.test.ts'));

/** Places where a string literal would be a Temporal name: the client and workflow calls that take one. */
const CALL_WITH_LITERAL = [
  /workflow\.(?:start|execute|signalWithStart|executeUpdateWithStart)\s*(?:<[^>()]*>)?\(\s*['"`]/,
  /\.(?:signal|query|executeUpdate|startUpdate)\s*(?:<[^>()]*>)?\(\s*['"`]/,
  /new WithStartWorkflowOperation\s*(?:<[^>()]*>)?\(\s*['"`]/,
  /\bsignal:\s*['"`]/,
  /\bdefine(?:Signal|Update|Query)\s*(?:<[^>()]*>)?\(\s*['"`]/,
];
/** Workflow ids built or written by hand: a literal where an id goes, or a family's two-part shape. */
const ID_BY_HAND = [
  /getHandle\s*\(\s*['"`]/,
  /\bworkflowId:\s*['"`]/,
  /`(?:send|case|verify)-\$\{[^}]*\}[-:]\$\{/,
  /`(?:oauth|ratelimit|webhooks|imap|delete|webhook-sweeper)-\$\{[^}]*\}`/,
];

test('the owner modules define every workflow type and handler the worker runs', () => {
  const index = readFileSync(path.join(root, 'src', 'workflows', 'index.ts'), 'utf8');
  const exported = [...index.matchAll(/export \{ (\w+) \}/g)].map((m) => m[1]);
  assert.deepEqual([...workflowTypes].sort(), [...exported].sort());
  assert.ok(handlerNames.length >= 20, `found only ${handlerNames.length} signal/update/query definitions`);
});

test('no workflow, signal, update or query name and no workflow id is spelled outside its owner module', () => {
  // Names that are also ordinary words elsewhere (`sent`, `state`…) are caught by the call shapes;
  // camelCase names are Temporal's alone, so any literal of one is a hand-off written by hand.
  const distinctive = [...new Set([...workflowTypes, ...handlerNames])].filter((n) => /[A-Z]/.test(n));
  const literal = new RegExp(`['"\`](?:${distinctive.join('|')})['"\`]`);
  const offences: string[] = [];
  for (const file of files) {
    readFileSync(path.join(root, file), 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (/^\s*(?:\/\/|\*)/.test(line)) return;
        const hit = [...CALL_WITH_LITERAL, literal, ...ID_BY_HAND].find((re) => re.test(line));
        if (hit) offences.push(`${file}:${i + 1}: ${line.trim()}`);
      });
  }
  assert.deepEqual(offences, [], `hand-offs outside src/temporal/handoffs/:\n${offences.join('\n')}`);
});

test('the check itself finds what it looks for', () => {
  const bad = [
    "await client.workflow.start('sendMessage', {",
    "handle.signal('cancel')",
    'handle.query<CaseSummary>(`summary`)',
    "signal: 'settingsChanged',",
    'const id = `case-${tenantId}-${caseId}`;',
    "getHandle('ratelimit-limited')",
    'getHandle(`oauth-${id}`)',
    'const w = `oauth-${tenantId}`;',
  ];
  const literal = /['"`](?:sendMessage|settingsChanged)['"`]/;
  for (const line of bad)
    assert.ok(
      [...CALL_WITH_LITERAL, literal, ...ID_BY_HAND].some((re) => re.test(line)),
      line,
    );
  for (const line of ["const kind = 'sent';", 'const id = `send-${++n}`;', "const TENANT = 'imap-watch';"])
    assert.ok(![...CALL_WITH_LITERAL, literal, ...ID_BY_HAND].some((re) => re.test(line)), line);
});
