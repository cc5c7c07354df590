import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { applyCaseEvent, type CaseSignalEvent } from '../../src/domain/cases';
import { caseStateOf } from '../../src/store/cases';
import { startStack, type Stack } from '../support/stack';

/**
 * The store-only case summary (src/store/cases.ts applyInStore) against the real database: the first
 * event of a case its message created is applied with one compare-and-set and no read, and whenever
 * the record is not in the state that message left it in, the read path decides instead.
 */
let stack: Stack;

before(async () => {
  stack = await startStack({}, { worker: false, monitorCommands: true });
});
after(async () => {
  await stack?.stop();
});

const T = 'tenant-case-store';
let n = 0;
const sent = (ref: string, participant: string, subject: string): CaseSignalEvent => ({
  eventId: `sent:${ref}`,
  kind: 'sent',
  at: Date.parse('2026-12-07T10:00:00Z') + ++n * 1000,
  ref,
  participants: [participant],
  subject,
});

/** What the read path would make of the record plus `event`: the reference for every case below. */
async function expectedAfter(caseId: string, event: CaseSignalEvent) {
  const doc = await stack.repos.cases.get(T, caseId);
  return applyCaseEvent(caseStateOf(doc), event).summary;
}

async function commandsDuring(fn: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  const client = stack.store.client;
  const listener = (e: { commandName: string; command: Record<string, unknown> }) => {
    if (e.command[e.commandName] === 'cases') seen.push(e.commandName);
  };
  client.on('commandStarted', listener);
  try {
    await fn();
  } finally {
    client.off('commandStarted', listener);
  }
  return seen;
}

test('first event of an untouched case: one update, no read, the same summary as the read path', async () => {
  const caseId = 'c_pristine1';
  await stack.repos.cases.ensure(T, caseId, 'Password reset');
  const e = sent('m_p1', 'Ana@Example.com', 'Password reset');
  const want = await expectedAfter(caseId, e);
  let r;
  const cmds = await commandsDuring(async () => {
    r = await stack.repos.cases.applyInStore(T, caseId, e, { pristineSubject: 'Password reset' });
  });
  assert.deepEqual(r, { outcome: 'applied', summary: want });
  assert.deepEqual(cmds, ['update']);
  const stored = caseStateOf(await stack.repos.cases.get(T, caseId));
  assert.deepEqual(stored.summary, want);
  assert.deepEqual(stored.recent, ['sent:m_p1']);
});

test('a case that already has an event: the compare-and-set misses and the read path counts both', async () => {
  const caseId = 'c_pristine2';
  await stack.repos.cases.ensure(T, caseId, 'Invoice');
  await stack.repos.cases.applyInStore(T, caseId, sent('m_p2a', 'bo@example.com', 'Invoice'));
  const e = sent('m_p2b', 'cy@example.com', 'Invoice');
  const want = await expectedAfter(caseId, e);
  const r = await stack.repos.cases.applyInStore(T, caseId, e, { pristineSubject: 'Invoice' });
  assert.deepEqual(r, { outcome: 'applied', summary: want });
  const stored = await stack.repos.cases.get(T, caseId);
  assert.equal(stored.eventCount, 2);
  assert.equal(stored.counts.sent, 2);
  assert.deepEqual(stored.participants, ['bo@example.com', 'cy@example.com']);
  // A repeat of the first event is still recognised as a duplicate.
  const again = await stack.repos.cases.applyInStore(T, caseId, sent('m_p2a', 'bo@example.com', 'Invoice'), {
    pristineSubject: 'Invoice',
  });
  assert.equal(again.outcome, 'duplicate');
  assert.equal((await stack.repos.cases.get(T, caseId)).eventCount, 2);
});

test('a case created with another subject keeps it: the compare-and-set misses', async () => {
  const caseId = 'c_pristine3';
  await stack.repos.cases.ensure(T, caseId, 'First subject');
  const e = sent('m_p3', 'di@example.com', 'Other subject');
  const want = await expectedAfter(caseId, e);
  const r = await stack.repos.cases.applyInStore(T, caseId, e, { pristineSubject: 'Other subject' });
  assert.deepEqual(r, { outcome: 'applied', summary: want });
  assert.equal((await stack.repos.cases.get(T, caseId)).subject, 'First subject');
});

test('a case its workflow owns is never written here', async () => {
  const caseId = 'c_pristine4';
  await stack.repos.cases.ensure(T, caseId, 'Live');
  await stack.repos.cases.goLive(T, caseId);
  const r = await stack.repos.cases.applyInStore(T, caseId, sent('m_p4', 'ed@example.com', 'Live'), { pristineSubject: 'Live' });
  assert.deepEqual(r, { outcome: 'live', already: true });
  assert.equal((await stack.repos.cases.get(T, caseId)).eventCount, 0);
});

test('no record yet: NotFound, as without the hint', async () => {
  await assert.rejects(
    stack.repos.cases.applyInStore(T, 'c_missing', sent('m_p5', 'fa@example.com', 'x'), { pristineSubject: 'x' }),
    /case/,
  );
});
