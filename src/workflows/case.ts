import {
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  proxyLocalActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { applyCaseEvent, initialCaseState, type CaseSignalEvent, type CaseState, type CaseSummary } from '../domain/cases';

/**
 * One entity workflow per case (`case-<tenant>-<caseId>`). Producers write the timeline to MongoDB
 * and signal here (signal-with-start); this workflow keeps the summary (participants, counts, last
 * activity, open/closed), saves it for the API after each batch of events, and continues-as-new
 * with its state long before Temporal's history limits. Duplicate signals (a producer's retry)
 * are recognised by event id and ignored.
 */
export interface CaseWorkflowInput {
  tenantId: string;
  caseId: string;
  /** Carried across continue-as-new. */
  state?: CaseState;
  /** Started for a case record created just now: there is no saved summary to load. */
  fresh?: boolean;
}

export const caseInboundSignal = defineSignal<[CaseSignalEvent]>('inbound');
export const caseSentSignal = defineSignal<[CaseSignalEvent]>('sent');
export const caseDeliveryFailedSignal = defineSignal<[CaseSignalEvent]>('deliveryFailed');
export const caseOpenedSignal = defineSignal<[CaseSignalEvent]>('opened');
export const caseClickedSignal = defineSignal<[CaseSignalEvent]>('clicked');
export const caseBouncedSignal = defineSignal<[CaseSignalEvent]>('bounced');
export const caseSummaryQuery = defineQuery<CaseSummary>('summary');
export const closeCaseUpdate = defineUpdate<CaseSummary, [{ eventId: string; at: number }]>('close');
export const reopenCaseUpdate = defineUpdate<CaseSummary, [{ eventId: string; at: number }]>('reopen');

// Local activities (two store writes at most): no activity task round trip per batch of events.
const acts = proxyLocalActivities<Activities>({
  startToCloseTimeout: '1 minute',
  localRetryThreshold: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute', backoffCoefficient: 2 },
});

/**
 * Continue-as-new after this many history events (Temporal suggests it at 4,096; warns at 10,240),
 * or after this many applied case events in one run, whichever comes first: the state carried over
 * stays small and the history of any one run short, however signals happen to be batched.
 */
export const CASE_HISTORY_BUDGET = 2_000;
export const CASE_EVENTS_PER_RUN = 500;

export async function caseWorkflow(input: CaseWorkflowInput): Promise<void> {
  let state: CaseState = input.state ?? initialCaseState(input.tenantId, input.caseId);
  // Handlers are registered before anything is awaited; updates wait until the state is loaded.
  let ready = input.state !== undefined || input.fresh === true;
  const queue: CaseSignalEvent[] = [];
  let dirty = false;
  let appliedThisRun = 0;

  const enqueue = (kinds: ReadonlyArray<CaseSignalEvent['kind']>) => (e: CaseSignalEvent) => {
    // The signal name decides what a producer may claim: a `sent` signal cannot close a case.
    if (kinds.includes(e.kind)) queue.push(e);
  };
  setHandler(caseInboundSignal, enqueue(['inbound', 'autoreply']));
  setHandler(caseSentSignal, enqueue(['sent']));
  setHandler(caseDeliveryFailedSignal, enqueue(['delivery_failed']));
  setHandler(caseOpenedSignal, enqueue(['opened']));
  setHandler(caseClickedSignal, enqueue(['clicked']));
  setHandler(caseBouncedSignal, enqueue(['bounced', 'complained', 'delayed']));
  setHandler(caseSummaryQuery, () => state.summary);
  const statusChange = (kind: 'closed' | 'reopened') => async (u: { eventId: string; at: number }) => {
    await condition(() => ready);
    state = applyCaseEvent(state, { eventId: u.eventId, kind, at: u.at });
    dirty = true;
    return state.summary;
  };
  setHandler(closeCaseUpdate, statusChange('closed'));
  setHandler(reopenCaseUpdate, statusChange('reopened'));

  if (!ready) {
    // A brand-new run (not a continuation) may follow an earlier run that ended: start from what it saved.
    state = (await acts.loadCaseState(input.tenantId, input.caseId)) ?? state;
    ready = true;
  }

  for (;;) {
    await condition(() => queue.length > 0 || dirty);
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
