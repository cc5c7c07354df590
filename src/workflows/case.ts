import {
  allHandlersFinished,
  condition,
  continueAsNew,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { applyCaseEvent, initialCaseState, type CaseSignalEvent, type CaseState } from '../domain/cases';
import {
  caseBouncedSignal,
  caseClickedSignal,
  caseDeliveryFailedSignal,
  caseInboundSignal,
  caseOpenedSignal,
  caseSentSignal,
  caseSummaryQuery,
  closeCaseUpdate,
  reopenCaseUpdate,
  retireCaseSignal,
  type CaseSignal,
  type CaseStatusRequest,
  type CaseWorkflowInput,
} from '../temporal/handoffs/case';
import { addressedHere } from '../temporal/handoffs/ids';

/**
 * One entity workflow per case (`case-<tenant>:<caseId>`, src/temporal/handoffs/case.ts). Producers write the timeline to MongoDB
 * and signal here (signal-with-start); this workflow keeps the summary (participants, counts, last
 * activity, open/closed), saves it for the API after each batch of events, and continues-as-new
 * with its state long before Temporal's history limits. Duplicate signals (a producer's retry)
 * are recognised by event id and ignored.
 */

/**
 * Patch ids (docs/decisions.md, "Changing workflow code"). `case-no-local-activities`: the load and
 * the saves are ordinary activities, and a run continues as new whenever its budget is spent,
 * carrying events it has applied but not saved yet (`unsaved`) instead of waiting for a quiet moment.
 * A local activity keeps its workflow task open while it runs; signals arriving meanwhile are
 * buffered by the server, and past 100 buffered events (`history.maximumBufferedEventsBatch`) the
 * server force-fails the task, after which Core 1.24 recorded a history it cannot replay
 * (docs/decisions.md, "Inbound and cases").
 */
export const CASE_NO_LOCAL_ACTIVITIES = 'case-no-local-activities';

const retry = { initialInterval: '1 second', maximumInterval: '1 minute', backoffCoefficient: 2 } as const;
// The path of runs that started before the patch: local activities (kept verbatim).
const localActs = proxyLocalActivities<Activities>({ startToCloseTimeout: '1 minute', localRetryThreshold: '1 minute', retry });
const remoteActs = proxyActivities<Activities>({ startToCloseTimeout: '1 minute', retry });

/**
 * Continue-as-new after this many history events (Temporal suggests it at 4,096; warns at 10,240),
 * or after this many applied case events in one run, whichever comes first: the state carried over
 * stays small and the history of any one run short, however signals happen to be batched.
 */
export const CASE_HISTORY_BUDGET = 2_000;
export const CASE_EVENTS_PER_RUN = 500;

export async function caseWorkflow(input: CaseWorkflowInput): Promise<void> {
  const bounded = patched(CASE_NO_LOCAL_ACTIVITIES);
  const acts = bounded ? remoteActs : localActs;
  let state: CaseState = input.state ?? initialCaseState(input.tenantId, input.caseId);
  // Handlers are registered before anything is awaited; updates wait until the state is loaded.
  let ready = input.state !== undefined || input.fresh === true;
  const queue: CaseSignalEvent[] = [];
  // A continued run whose predecessor applied events it did not save yet saves them first.
  let dirty = input.unsaved === true;
  let appliedThisRun = 0;

  let retired = false;
  const forMe = (to: CaseSignal['to']) => addressedHere(to, input.tenantId, input.caseId);
  const enqueue = (kinds: ReadonlyArray<CaseSignal['kind']>) => (e: CaseSignal) => {
    // The signal name decides what a producer may claim: a `sent` signal cannot close a case. An
    // event addressed to another case (a misaddressed caller) is not this case's.
    if (kinds.includes(e.kind) && forMe(e.to)) queue.push(e);
  };
  setHandler(caseInboundSignal, enqueue(['inbound', 'autoreply']));
  setHandler(caseSentSignal, enqueue(['sent']));
  setHandler(caseDeliveryFailedSignal, enqueue(['delivery_failed']));
  setHandler(caseOpenedSignal, enqueue(['opened']));
  setHandler(caseClickedSignal, enqueue(['clicked']));
  setHandler(caseBouncedSignal, enqueue(['bounced', 'complained', 'delayed']));
  setHandler(caseSummaryQuery, () => state.summary);
  setHandler(retireCaseSignal, () => {
    retired = true;
  });
  const statusChange = (kind: 'closed' | 'reopened') => async (u: CaseStatusRequest) => {
    await condition(() => ready);
    state = applyCaseEvent(state, { eventId: u.eventId, kind, at: u.at });
    dirty = true;
    return state.summary;
  };
  // Refused before it is recorded: another tenant's or case's request never touches this one.
  const validator = (u: CaseStatusRequest) => {
    if (!u.to || !addressedHere(u.to, input.tenantId, input.caseId)) throw new Error('this update was not addressed to this case');
  };
  setHandler(closeCaseUpdate, statusChange('closed'), { validator });
  setHandler(reopenCaseUpdate, statusChange('reopened'), { validator });

  if (!ready) {
    // A brand-new run (not a continuation) may follow an earlier run that ended: start from what it saved.
    state = (await acts.loadCaseState(input.tenantId, input.caseId)) ?? state;
    ready = true;
  }

  const drain = () => {
    while (queue.length > 0) {
      const before = state;
      state = applyCaseEvent(state, queue.shift()!);
      if (state !== before) {
        dirty = true;
        appliedThisRun++;
      }
    }
  };
  const budgetSpent = () => {
    const info = workflowInfo();
    return appliedThisRun >= CASE_EVENTS_PER_RUN || info.historyLength >= CASE_HISTORY_BUDGET || info.continueAsNewSuggested;
  };
  const continueWithState = () =>
    continueAsNew<typeof caseWorkflow>({
      tenantId: input.tenantId,
      caseId: input.caseId,
      state: { ...state, summary: { ...state.summary, runs: state.summary.runs + 1 } },
      ...(dirty ? { unsaved: true } : {}),
    });

  if (bounded) {
    // Every pass checks the budget, however busy the case: a storm of signals never keeps a run
    // from continuing as new. What arrived is applied to the state (pure) and carried, so the
    // carried input is the bounded state, never a queue.
    for (;;) {
      await condition(() => queue.length > 0 || dirty || retired || budgetSpent());
      drain();
      if (retired) {
        // A run under a legacy id (src/temporal/handoffs/case.ts): what it applied is saved; end.
        if (dirty) {
          dirty = false;
          await acts.saveCaseSummary(state.summary, state.recent);
        }
        await condition(allHandlersFinished);
        if (queue.length === 0 && !dirty) return;
        continue;
      }
      if (budgetSpent()) {
        await condition(allHandlersFinished);
        // Nothing is awaited between this drain and the continue-as-new: no signal is left behind.
        drain();
        await continueWithState();
      }
      if (dirty) {
        dirty = false;
        await acts.saveCaseSummary(state.summary, state.recent);
      }
    }
  }

  for (;;) {
    await condition(() => queue.length > 0 || dirty || retired);
    while (queue.length > 0) {
      const before = state;
      state = applyCaseEvent(state, queue.shift()!);
      if (state !== before) {
        dirty = true;
        appliedThisRun++;
      }
    }
    if (dirty) {
      dirty = false;
      await acts.saveCaseSummary(state.summary, state.recent);
    }
    if (retired) {
      // A run under a legacy id (src/temporal/handoffs/case.ts): what it applied is saved; end.
      await condition(allHandlersFinished);
      if (queue.length === 0 && !dirty) return;
      continue;
    }
    const info = workflowInfo();
    if (appliedThisRun >= CASE_EVENTS_PER_RUN || info.historyLength >= CASE_HISTORY_BUDGET || info.continueAsNewSuggested) {
      await condition(allHandlersFinished);
      if (queue.length === 0 && !dirty) {
        await continueAsNew<typeof caseWorkflow>({
          tenantId: input.tenantId,
          caseId: input.caseId,
          state: { ...state, summary: { ...state.summary, runs: state.summary.runs + 1 } },
        });
      }
    }
  }
}
