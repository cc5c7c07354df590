import { WithStartWorkflowOperation, type Client } from '@temporalio/client';
import { defineQuery, defineSignal, defineUpdate, type SignalDefinition } from '@temporalio/workflow';
import type { CaseEventKind, CaseSignalEvent, CaseState, CaseSummary } from '../../domain/cases';
import { CaseIdKey, TenantIdKey } from '../search-attributes';
import { parseWorkflowId, tenantItemWorkflowId, type AddressedTo } from './ids';

/**
 * Hand-offs of the case entity workflow (src/workflows/case.ts), one per case that has had a
 * conversation event: its id, the signals producers send (src/cases/record.ts), the close/reopen
 * updates and the summary query (src/api/routes/cases.ts).
 */
export const CASE_WORKFLOW = 'caseWorkflow';

export interface CaseWorkflowInput {
  tenantId: string;
  caseId: string;
  /** Carried across continue-as-new. */
  state?: CaseState;
  /** Started for a case record created just now: there is no saved summary to load. */
  fresh?: boolean;
  /** The carried state holds events the previous run applied but did not save: save first. */
  unsaved?: boolean;
}
export type CaseWorkflow = (input: CaseWorkflowInput) => Promise<void>;

/** `case-<tenant>:<case>`; see retireLegacyCaseWorkflows for runs under the old `case-<tenant>-<case>`. */
export const caseWorkflowId = (tenantId: string, caseId: string): string => tenantItemWorkflowId('case', tenantId, caseId);

/** What a signal carries: the event, and the case it was addressed for. */
export type CaseSignal = CaseSignalEvent & { to?: AddressedTo };
export interface CaseStatusRequest {
  eventId: string;
  at: number;
  to?: AddressedTo;
}

export const caseInboundSignal = defineSignal<[CaseSignal]>('inbound');
export const caseSentSignal = defineSignal<[CaseSignal]>('sent');
export const caseDeliveryFailedSignal = defineSignal<[CaseSignal]>('deliveryFailed');
export const caseOpenedSignal = defineSignal<[CaseSignal]>('opened');
export const caseClickedSignal = defineSignal<[CaseSignal]>('clicked');
export const caseBouncedSignal = defineSignal<[CaseSignal]>('bounced');
/** Asks a run under a legacy id to save and end (the new id's run loads what it saved). */
export const retireCaseSignal = defineSignal('retire');
export const caseSummaryQuery = defineQuery<CaseSummary>('summary');
export const closeCaseUpdate = defineUpdate<CaseSummary, [CaseStatusRequest]>('close');
export const reopenCaseUpdate = defineUpdate<CaseSummary, [CaseStatusRequest]>('reopen');

/** The signal for each event kind; a signal decides what a producer may claim (a `sent` cannot close a case). */
export const CASE_SIGNAL_FOR_KIND: Record<Exclude<CaseEventKind, 'closed' | 'reopened'>, SignalDefinition<[CaseSignal]>> = {
  inbound: caseInboundSignal,
  autoreply: caseInboundSignal,
  sent: caseSentSignal,
  delivery_failed: caseDeliveryFailedSignal,
  opened: caseOpenedSignal,
  clicked: caseClickedSignal,
  bounced: caseBouncedSignal,
  complained: caseBouncedSignal,
  delayed: caseBouncedSignal,
};

const startOptions = (taskQueue: string, tenantId: string, caseId: string) => ({
  workflowId: caseWorkflowId(tenantId, caseId),
  taskQueue,
  args: [{ tenantId, caseId }] as [CaseWorkflowInput],
  typedSearchAttributes: [
    { key: TenantIdKey, value: tenantId },
    { key: CaseIdKey, value: caseId },
  ],
});

/** Signal-with-start of the case workflow; a starting run loads what the case record holds. */
export async function signalCaseEvent(
  client: Client,
  taskQueue: string,
  tenantId: string,
  caseId: string,
  event: CaseSignalEvent & { kind: keyof typeof CASE_SIGNAL_FOR_KIND },
): Promise<void> {
  await client.workflow.signalWithStart<CaseWorkflow, [CaseSignal]>(CASE_WORKFLOW, {
    ...startOptions(taskQueue, tenantId, caseId),
    signal: CASE_SIGNAL_FOR_KIND[event.kind],
    signalArgs: [{ ...event, to: { tenantId, item: caseId } }],
  });
}

/** Closes or reopens a case through its workflow (started if it is not running); answers its summary. */
export async function updateCaseStatus(
  client: Client,
  taskQueue: string,
  tenantId: string,
  caseId: string,
  action: 'close' | 'reopen',
  request: { eventId: string; at: number },
): Promise<CaseSummary> {
  return client.workflow.executeUpdateWithStart(action === 'close' ? closeCaseUpdate : reopenCaseUpdate, {
    args: [{ ...request, to: { tenantId, item: caseId } }],
    startWorkflowOperation: new WithStartWorkflowOperation<CaseWorkflow>(CASE_WORKFLOW, {
      ...startOptions(taskQueue, tenantId, caseId),
      workflowIdConflictPolicy: 'USE_EXISTING',
    }),
  });
}

export async function queryCaseSummary(client: Client, tenantId: string, caseId: string): Promise<CaseSummary> {
  return client.workflow.getHandle(caseWorkflowId(tenantId, caseId)).query(caseSummaryQuery);
}

/** Runs started before unambiguous ids (`case-<tenant>-<case>`): the parse of their id fails. */
export const isLegacyCaseWorkflowId = (id: string): boolean => id.startsWith('case-') && parseWorkflowId(id) === null;

/**
 * The migration to unambiguous ids (docs/decisions.md): every running case workflow under a legacy
 * id is asked to save its summary and end. Producers already address the new id, whose first run
 * loads the saved summary from the case record, so nothing is lost. Idempotent; run by every worker
 * at start. Returns how many runs were asked.
 */
export async function retireLegacyCaseWorkflows(client: Client): Promise<number> {
  let n = 0;
  for await (const wf of client.workflow.list({ query: `WorkflowType = '${CASE_WORKFLOW}' AND ExecutionStatus = 'Running'` })) {
    if (!isLegacyCaseWorkflowId(wf.workflowId)) continue;
    await client.workflow.getHandle(wf.workflowId, wf.runId).signal(retireCaseSignal);
    n++;
  }
  return n;
}
