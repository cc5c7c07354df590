import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import type { CaseSummary } from '../../src/domain/cases';
import { dataConverter } from '../../src/temporal/connection';
import { CASE_WORKFLOW, caseWorkflowId, queryCaseSummary, signalCaseEvent } from '../../src/temporal/handoffs/case';
import { CASE_EVENTS_PER_RUN } from '../../src/workflows/case';
import { workflowSource } from '../../src/worker';
import { eventually } from '../support/smtp-peer';
import { startStack, type Stack } from '../support/stack';

/**
 * A signal storm on one case (docs/decisions.md, "Inbound and cases"): hundreds of signals sent at
 * once reach the case workflow while its workflow tasks run. With local activities a task stayed
 * open while the summary was saved, the server buffered the signals arriving meanwhile and, past
 * 100 (`history.maximumBufferedEventsBatch`), force-failed the task; the history recorded after it
 * did not replay. Now: every event is applied exactly once, the summary is right, runs continue as
 * new on their budget however busy the case is, and every run's history replays on this code.
 */
let stack: Stack;
before(async () => {
  stack = await startStack();
});
after(async () => {
  await stack?.stop();
});

const TOTAL = 900;
const tenantId = 'storm-case-t';
const caseId = 'storm-1';

async function summaryWhen(ok: (s: CaseSummary) => boolean, what: string): Promise<CaseSummary> {
  return eventually(
    async () => {
      const s = await queryCaseSummary(stack.temporal, tenantId, caseId).catch(() => undefined);
      return s && ok(s) ? s : undefined;
    },
    120_000,
    what,
  );
}

test(`${TOTAL} signals sent at once to one case: each applied once, summary right, every run replays`, async () => {
  const q = stack.config.temporal.taskQueue;
  const inbound = (n: number) =>
    signalCaseEvent(stack.temporal, q, tenantId, caseId, {
      eventId: `inbound:storm-${n}`,
      kind: 'inbound',
      at: 1_700_000_000_000 + n,
      participants: [`customer${n % 7}@customer.example`],
      subject: `storm ${n}`,
    });
  // All at once, plus a redelivery of each of the first 50 (a producer retrying). Under the
  // 1,000 recent event ids a case remembers (RECENT_EVENT_IDS): a redelivery arriving later than
  // that is counted again (seen with 1,200 events), a limit of the window, not of the storm.
  await Promise.all([...Array.from({ length: TOTAL }, (_, n) => inbound(n)), ...Array.from({ length: 50 }, (_, n) => inbound(n))]);
  // A query may reach a run between applying the storm and continuing as new: wait for the next run.
  const minRuns = Math.ceil(TOTAL / CASE_EVENTS_PER_RUN);
  const s = await summaryWhen((x) => x.eventCount >= TOTAL && x.runs >= minRuns, `${TOTAL} applied events in ${minRuns} runs`);
  assert.equal(s.eventCount, TOTAL);
  assert.equal(s.counts.inbound, TOTAL);
  assert.equal(s.participants.length, 7);
  assert.equal(s.firstActivityAt, 1_700_000_000_000);
  assert.equal(s.lastActivityAt, 1_700_000_000_000 + TOTAL - 1);
  // The saved summary (the API's view) catches up with the workflow's.
  await eventually(async () => (await stack.repos.cases.get(tenantId, caseId)).eventCount === TOTAL, 60_000, 'the saved summary');

  const runs: Array<{ runId: string }> = [];
  for await (const wf of stack.temporal.workflow.list({ query: `TaskQueue = '${q}' AND WorkflowType = '${CASE_WORKFLOW}'` })) {
    if (wf.workflowId === caseWorkflowId(tenantId, caseId)) runs.push({ runId: wf.runId });
  }
  assert.ok(runs.length >= 2, `the storm spans runs (${runs.length})`);
  let forceClosed = 0;
  for (const r of runs) {
    const history = await stack.temporal.workflow.getHandle(caseWorkflowId(tenantId, caseId), r.runId).fetchHistory();
    const FORCE_CLOSE = temporal.api.enums.v1.WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_FORCE_CLOSE_COMMAND;
    forceClosed += (history.events ?? []).filter((e) => e.workflowTaskFailedEventAttributes?.cause === FORCE_CLOSE).length;
    const signals = (history.events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes).length;
    assert.ok((history.events?.length ?? 0) < 4096, `run ${r.runId}: ${history.events?.length} events (${signals} signals)`);
    // Replays on the current code, whatever the server did to its workflow tasks.
    await Worker.runReplayHistory({ ...workflowSource(), dataConverter: dataConverter(stack.keyring) }, history, r.runId);
  }
  // Not asserted (it depends on the machine's speed): whether the server force-closed a task.
  process.stdout.write(`# case signal storm: ${runs.length} runs, ${forceClosed} force-closed workflow tasks\n`);
});
