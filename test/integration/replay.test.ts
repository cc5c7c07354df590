import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { parseEncryptionKeys } from '../../src/config/env';
import { Keyring } from '../../src/security/crypto';
import { dataConverter } from '../../src/temporal/connection';
import { workflowSource } from '../../src/worker';
import { historyFromFile } from '../support/history-json';

/**
 * Replay safety (docs/decisions.md, "Changing workflow code"): every recorded history under
 * test/fixtures/histories/ — from the current code and from older commits (`<commit>-<scenario>.json`)
 * — replays against the current workflow bundle with the production data converter. A change to a
 * workflow's command sequence that is not guarded by patched() fails here with the run's workflow id
 * and the non-determinism. Needs no server: the replayer reads the histories alone.
 */
Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });
const root = path.resolve(__dirname, '..', '..', '..');
const dir = path.join(root, 'test', 'fixtures', 'histories');

const keyLine = readFileSync(path.join(dir, 'encryption-key.txt'), 'utf8').trim();
const keys = parseEncryptionKeys(keyLine);
const keyring = new Keyring(keys, [...keys.keys()][0]!);

const fixtures = readdirSync(dir, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .flatMap((d) =>
    readdirSync(path.join(dir, d.name))
      .filter((f) => f.endsWith('.json'))
      .map((f) => ({ file: `${d.name}/${f}`, type: d.name, ...historyFromFile(readFileSync(path.join(dir, d.name, f), 'utf8')) })),
  )
  .sort((a, b) => a.file.localeCompare(b.file));

/** `<commit>-<scenario>.json`: recorded by an older commit's code. */
const OLDER = /^[0-9a-f]{7}-/;

const typeOf = (h: (typeof fixtures)[number]['history']) => h.events[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name;

test('every workflow type the worker runs has histories recorded by the current code', () => {
  const index = readFileSync(path.join(root, 'src', 'workflows', 'index.ts'), 'utf8');
  const types = [...index.matchAll(/export \{ (\w+) \}/g)].map((m) => m[1]!).sort();
  for (const f of fixtures) assert.equal(typeOf(f.history), f.type, `${f.file} is not a history of ${f.type}`);
  const current = new Set(fixtures.filter((f) => !OLDER.test(path.basename(f.file))).map((f) => f.type));
  assert.deepEqual([...current].sort(), types, 'a workflow type without a history recorded by the current code');
});

test('every recorded history replays on the current workflow code without non-determinism', { timeout: 300_000 }, async () => {
  const failures: string[] = [];
  let replayed = 0;
  const results = Worker.runReplayHistories(
    { ...workflowSource(), dataConverter: dataConverter(keyring), replayName: 'fixtures' },
    fixtures.map((f) => ({ workflowId: f.workflowId, history: f.history })),
  );
  // Histories are replayed one at a time, in the order given.
  for await (const r of results) {
    const f = fixtures[replayed++]!;
    if (r.error) failures.push(`${f.file} (workflow id ${r.workflowId}): ${r.error.name}: ${r.error.message}`);
  }
  assert.equal(replayed, fixtures.length);
  assert.deepEqual(failures, [], `histories that no longer replay:\n${failures.join('\n')}`);
});

/** The SendStatus values a run upserted, in order (search attributes are not encrypted by the codec). */
function sendStatuses(history: (typeof fixtures)[number]['history']): string[] {
  return history.events.flatMap((e) => {
    const field = e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields?.SendStatus;
    return field?.data ? [JSON.parse(Buffer.from(field.data).toString()) as string] : [];
  });
}

/** The ids of the patches a run recorded (Core's `core_patch` markers). */
function patchIds(history: (typeof fixtures)[number]['history']): string[] {
  return history.events.flatMap((e) => {
    const m = e.markerRecordedEventAttributes;
    const data = m?.markerName === 'core_patch' ? m.details?.['patch-data']?.payloads?.[0]?.data : undefined;
    return data ? [(JSON.parse(Buffer.from(data).toString()) as { id: string }).id] : [];
  });
}

test('send-no-invisible-sending-upsert: runs from before the patch keep the upsert and replay; new runs skip it, still show sending after a wait, and replay', async () => {
  const PATCH = 'send-no-invisible-sending-upsert';
  const fixture = (file: string) => {
    const f = fixtures.find((x) => x.file === `sendMessage/${file}.json`);
    assert.ok(f, `missing fixture sendMessage/${file}.json`);
    return f;
  };
  const pairs: Array<[string, string[], string[]]> = [
    // scenario, SendStatus upserts before the patch, after it
    ['immediate-250', ['sending', 'sent'], ['sent']],
    ['retry-after-4xx', ['sending', 'retrying', 'sending', 'sent'], ['retrying', 'sending', 'sent']],
    ['rate-limit-wait', ['sending', 'waiting_rate_limit', 'sending', 'sent'], ['waiting_rate_limit', 'sending', 'sent']],
    ['credentials-wait-woken', ['sending', 'waiting_credentials', 'sending', 'sent'], ['waiting_credentials', 'sending', 'sent']],
  ];
  const chosen: Array<(typeof fixtures)[number]> = [];
  for (const [scenario, before, after] of pairs) {
    for (const old of [fixture(`5ee1e52-${scenario}`), fixture(`06ab728-${scenario}`)]) {
      assert.deepEqual(sendStatuses(old.history), before, old.file);
      assert.deepEqual(patchIds(old.history), [], old.file);
      chosen.push(old);
    }
    const current = fixture(scenario);
    assert.deepEqual(sendStatuses(current.history), after, current.file);
    assert.equal(patchIds(current.history)[0], PATCH, current.file);
    chosen.push(current);
  }
  const errors: string[] = [];
  let i = 0;
  for await (const r of Worker.runReplayHistories(
    { ...workflowSource(), dataConverter: dataConverter(keyring), replayName: 'patch' },
    chosen.map((f) => ({ workflowId: f.workflowId, history: f.history })),
  )) {
    const f = chosen[i++]!;
    if (r.error) errors.push(`${f.file}: ${r.error.message}`);
  }
  assert.equal(i, chosen.length);
  assert.deepEqual(errors, []);
});

test('send patches of issue 13: old credentials waits replay without them; new runs record them only on their path', async () => {
  const fixture = (file: string) => {
    const f = fixtures.find((x) => x.file === `sendMessage/${file}.json`);
    assert.ok(f, `missing fixture sendMessage/${file}.json`);
    return f;
  };
  const BUSY = 'send-tenant-busy-activity';
  const VERSION_WAIT = 'send-credentials-version-wait';
  const ONE_DEADLINE = 'send-one-credentials-deadline';
  for (const old of ['f5599aa-credentials-wait-woken', 'f5599aa-oauth-credentials-wait']) {
    assert.deepEqual(patchIds(fixture(old).history), ['send-no-invisible-sending-upsert'], old);
  }
  for (const current of ['credentials-wait-woken', 'oauth-credentials-wait']) {
    const ids = patchIds(fixture(current).history);
    assert.ok(ids.includes(VERSION_WAIT) && ids.includes(ONE_DEADLINE) && !ids.includes(BUSY), `${current}: ${ids.join(', ')}`);
  }
  // The busy path's marker, and an activity task for the attempt; the common path records neither.
  const busy = fixture('tenant-busy-activity').history;
  assert.ok(patchIds(busy).includes(BUSY));
  assert.ok(busy.events.some((e) => e.activityTaskScheduledEventAttributes));
  const immediate = fixture('immediate-250').history;
  assert.deepEqual(patchIds(immediate), ['send-no-invisible-sending-upsert']);
  assert.ok(!immediate.events.some((e) => e.activityTaskScheduledEventAttributes));
});
