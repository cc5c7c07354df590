import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { History } from '@temporalio/common/lib/proto-utils';
import type { Managed } from '../../src/embedded/processes';
import { startThrowawayServers } from './throwaway-servers';
import { startDovecotImap } from './dovecot-imap';
import { makeTestPki, type TestPki } from './certs';
import { historyToFile } from './history-json';
import { OAuthServer } from './oauth-server';
import { eventually, SmtpPeer } from './smtp-peer';
import type { PeerConfig } from './smtp-peer-process';
import { api, createPeerTenant, messageUntil, startStack, type Stack } from './stack';
import { WebhookReceiver } from './webhook-receiver';
import { webhookTenant } from './webhooks';
// ---- What differs between source trees. A copy run against an older commit (docs/decisions.md,
// "Changing workflow code") edits only this block, so the scenarios stay the same. ----
import { querySendState, SEND_MESSAGE_WORKFLOW, sendWorkflowId } from '../../src/temporal/handoffs/send-message';
import { RATE_LIMITER_WORKFLOW } from '../../src/temporal/handoffs/rate-limiter';
import { CASE_WORKFLOW, signalCaseEvent } from '../../src/temporal/handoffs/case';
import { OAUTH_TOKEN_WORKFLOW } from '../../src/temporal/handoffs/oauth-token';
import { startWebhookDelivery, WEBHOOK_DELIVERY_WORKFLOW, WEBHOOK_SWEEPER_WORKFLOW } from '../../src/temporal/handoffs/webhook-delivery';
import { BOUNCE_MAILBOX_WATCH_WORKFLOW } from '../../src/temporal/handoffs/bounce-mailbox-watch';
import { VERIFY_CONNECTION_WORKFLOW } from '../../src/temporal/handoffs/verify-connection';
import { ensureReconcileSchedule, RECONCILER_WORKFLOW, triggerReconcile } from '../../src/temporal/handoffs/reconciler';
import { reconcileScheduleId } from '../../src/temporal/handoffs/ids';
import { TENANT_DELETION_WORKFLOW } from '../../src/temporal/handoffs/tenant-deletion';
import { SENT_COPY_WORKFLOW } from '../../src/temporal/handoffs/sent-copy';

const TYPES = {
  send: SEND_MESSAGE_WORKFLOW,
  limiter: RATE_LIMITER_WORKFLOW,
  case: CASE_WORKFLOW,
  oauth: OAUTH_TOKEN_WORKFLOW,
  webhooks: WEBHOOK_DELIVERY_WORKFLOW,
  sweeper: WEBHOOK_SWEEPER_WORKFLOW,
  imap: BOUNCE_MAILBOX_WATCH_WORKFLOW,
  verify: VERIFY_CONNECTION_WORKFLOW,
  reconcile: RECONCILER_WORKFLOW,
  deletion: TENANT_DELETION_WORKFLOW,
  sentCopy: SENT_COPY_WORKFLOW,
};
const inboundCaseEvent = (stack: Stack, tenantId: string, caseId: string, n: number) =>
  signalCaseEvent(stack.temporal, stack.config.temporal.taskQueue, tenantId, caseId, {
    eventId: `inbound:i_replay${n}`,
    kind: 'inbound',
    at: Date.now(),
    ref: `i_replay${n}`,
    participants: [`customer${n % 7}@customer.example`],
    subject: `reply ${n}`,
  });
const startWebhooksWithHistoryLimit = (stack: Stack, tenantId: string, historyLimit: number) =>
  startWebhookDelivery(stack.temporal, stack.config.temporal.taskQueue, { tenantId, historyLimit });
/**
 * Until the message's workflow itself says it waits for credentials: the store says so from inside
 * the workflow task that records the failure, and a PATCH signalled then makes the server refuse
 * that task (UnhandledCommand), so the recorded history would not show the wait at all.
 */
const workflowWaitsForCredentials = (stack: Stack, tenantId: string, id: string) =>
  eventually(
    async () => (await querySendState(stack.temporal, sendWorkflowId(tenantId, id))).status === 'waiting_credentials',
    30_000,
    `${id}'s workflow to wait for credentials`,
  );
/** Every task queue the stack's worker polls (one before sends got a queue of their own). */
const queuesOf = (stack: Stack): string[] => [stack.config.temporal.taskQueue, stack.config.temporal.sendTaskQueue];
// ---- End of the tree-specific block. ----

/**
 * `npm run capture-histories [-- --prefix <p>] [-- <scenario filter>…]`: records the workflow
 * histories that test/integration/replay.test.ts replays against the current workflow code.
 *
 * It starts a throw-away Temporal dev server and FerretDB (as run-tests.ts does), the whole service
 * in this process (test/support/stack.ts) with real SMTP, OAuth2 and webhook peers, runs one
 * scenario per interesting path of every workflow type, and writes each run's history as
 * test/fixtures/histories/<workflow type>/<prefix><scenario>.json. Payloads are encrypted with the
 * test-only key beside the fixtures (encryption-key.txt), so the replay test can decode them.
 *
 * Filters select scenarios by substring of `<workflow type>/<scenario>`; without one, all run.
 * `--prefix 5ee1e52-` names histories recorded by an older commit's code (see the README there).
 */
const root = path.resolve(__dirname, '..', '..', '..');
const fixtures = path.join(root, 'test', 'fixtures', 'histories');

interface Scenario {
  /** `<workflow type>/<scenario>` for every history it writes. */
  names: string[];
  run(ctx: Ctx): Promise<void>;
}

interface Ctx {
  stack: Stack;
  pki: TestPki;
  idp: OAuthServer;
  receiver: WebhookReceiver;
  peer(extra?: Partial<PeerConfig>): Promise<SmtpPeer>;
  save(workflowType: string, scenario: string, run: { workflowId: string; runId: string }, history: History): void;
}

const USER = 'ops@acme.example';
const PASSWORD = 'right-password';

const message = (over: Record<string, unknown> = {}) => ({
  from: 'support@acme.example',
  to: ['alice@customer.example'],
  subject: 'Replay fixture',
  text: 'Hello',
  ...over,
});

let tenantSeq = 0;
async function tenant(ctx: Ctx, peer: SmtpPeer, extra: Record<string, unknown> = {}): Promise<{ id: string; key: string }> {
  // The trailing letter keeps one tenant's id from being a prefix of another's (`replay-1` of `replay-12`).
  const id = `replay-${++tenantSeq}x`;
  const key = await createPeerTenant(ctx.stack, id, peer, ctx.pki.caCert, {
    auth: { type: 'password', user: USER, password: PASSWORD },
    ...extra,
  });
  return { id, key };
}

async function send(ctx: Ctx, key: string, body: Record<string, unknown> = message()): Promise<string> {
  const r = await api(ctx.stack, 'POST', '/v1/messages', { key, body });
  if (r.status !== 202) throw new Error(`sending: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.id as string;
}

/** Every run (continue-as-new included) of `type` whose workflow id names the tenant, oldest first. */
async function runsOf(client: Client, queues: string[], type: string, tenantId: string, atLeast = 1) {
  const onQueues = queues.map((q) => `TaskQueue = '${q}'`).join(' OR ');
  return eventually(
    async () => {
      const found: Array<{ workflowId: string; runId: string; startTime: Date }> = [];
      for await (const wf of client.workflow.list({ query: `(${onQueues}) AND WorkflowType = '${type}'` })) {
        if (wf.workflowId.includes(tenantId)) found.push({ workflowId: wf.workflowId, runId: wf.runId, startTime: wf.startTime });
      }
      found.sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
      return found.length >= atLeast ? found : undefined;
    },
    30_000,
    `${atLeast} run(s) of ${type} for ${tenantId}`,
  );
}

/** A run's history once no workflow task is pending (a history cut mid-task is not what a worker replays). */
async function settledHistory(client: Client, workflowId: string, runId: string): Promise<History> {
  return eventually(
    async () => {
      const h = await client.workflow.getHandle(workflowId, runId).fetchHistory();
      const last = h.events?.at(-1);
      return last && !last.workflowTaskScheduledEventAttributes && !last.workflowTaskStartedEventAttributes ? h : undefined;
    },
    30_000,
    `${workflowId} to settle`,
  );
}

async function capture(ctx: Ctx, type: string, tenantId: string, scenario: string, run = 0): Promise<void> {
  const runs = await runsOf(ctx.stack.temporal, queuesOf(ctx.stack), type, tenantId, run + 1);
  const r = runs[run]!;
  ctx.save(type, scenario, r, await settledHistory(ctx.stack.temporal, r.workflowId, r.runId));
}

const scenarios: Scenario[] = [
  {
    names: [`${TYPES.send}/immediate-250`],
    async run(ctx) {
      const t = await tenant(ctx, await ctx.peer());
      await messageUntil(ctx.stack, t.key, await send(ctx, t.key), ['sent']);
      await capture(ctx, TYPES.send, t.id, 'immediate-250');
    },
  },
  {
    names: [`${TYPES.send}/retry-after-4xx`],
    async run(ctx) {
      const t = await tenant(ctx, await ctx.peer({ dataReplies: [{ code: 421, text: '4.7.0 Too many messages, slow down' }] }));
      await messageUntil(ctx.stack, t.key, await send(ctx, t.key), ['sent']);
      await capture(ctx, TYPES.send, t.id, 'retry-after-4xx');
    },
  },
  {
    names: [`${TYPES.send}/rate-limit-wait`, `${TYPES.limiter}/grants-and-wait`],
    async run(ctx) {
      const t = await tenant(ctx, await ctx.peer(), { limits: { perMinute: { max: 1, countBy: 'messages' } } });
      // One after the other: sent together, either may reach the limiter first and take the slot.
      await messageUntil(ctx.stack, t.key, await send(ctx, t.key, message({ subject: 'first' })), ['sent'], 90_000);
      const second = await send(ctx, t.key, message({ subject: 'second' }));
      await messageUntil(ctx.stack, t.key, second, ['waiting_rate_limit']);
      await messageUntil(ctx.stack, t.key, second, ['sent'], 120_000);
      const sends = await runsOf(ctx.stack.temporal, queuesOf(ctx.stack), TYPES.send, t.id, 2);
      const waited = sends.find((s) => s.workflowId.endsWith(second))!;
      ctx.save(TYPES.send, 'rate-limit-wait', waited, await settledHistory(ctx.stack.temporal, waited.workflowId, waited.runId));
      await capture(ctx, TYPES.limiter, t.id, 'grants-and-wait');
    },
  },
  {
    names: [`${TYPES.send}/credentials-wait-woken`],
    async run(ctx) {
      const t = await tenant(ctx, await ctx.peer({ users: { [USER]: PASSWORD } }), {
        auth: { type: 'password', user: USER, password: 'stale-password' },
      });
      const id = await send(ctx, t.key);
      await messageUntil(ctx.stack, t.key, id, ['waiting_credentials']);
      await workflowWaitsForCredentials(ctx.stack, t.id, id);
      const patched = await api(ctx.stack, 'PATCH', `/v1/tenants/${t.id}`, {
        key: t.key,
        body: { auth: { type: 'password', user: USER, password: PASSWORD } },
      });
      if (patched.status !== 200) throw new Error(`PATCH tenant: ${patched.status}`);
      await messageUntil(ctx.stack, t.key, id, ['sent']);
      await capture(ctx, TYPES.send, t.id, 'credentials-wait-woken');
    },
  },
  {
    names: [`${TYPES.send}/tenant-busy-activity`],
    async run(ctx) {
      // One connection and a slow DATA: of three messages sent together, one attempt runs locally and
      // the others find the tenant at its cap, and are made as regular activities.
      const t = await tenant(ctx, await ctx.peer({ dataDelayMs: 1_500 }), { limits: { maxConnections: 1 } });
      const ids = await Promise.all([1, 2, 3].map((n) => send(ctx, t.key, message({ subject: `busy ${n}` }))));
      for (const id of ids) await messageUntil(ctx.stack, t.key, id, ['sent'], 120_000);
      const runs = await runsOf(ctx.stack.temporal, queuesOf(ctx.stack), TYPES.send, t.id, 3);
      for (const r of runs) {
        const history = await settledHistory(ctx.stack.temporal, r.workflowId, r.runId);
        if (history.events?.some((e) => e.activityTaskScheduledEventAttributes)) {
          ctx.save(TYPES.send, 'tenant-busy-activity', r, history);
          return;
        }
      }
      throw new Error('no send of the busy tenant ran its attempt as a regular activity');
    },
  },
  {
    names: [`${TYPES.send}/scheduled-cancelled`],
    async run(ctx) {
      const t = await tenant(ctx, await ctx.peer());
      const id = await send(ctx, t.key, message({ sendAt: new Date(Date.now() + 3_600_000).toISOString() }));
      await messageUntil(ctx.stack, t.key, id, ['scheduled']);
      const del = await api(ctx.stack, 'DELETE', `/v1/messages/${id}`, { key: t.key });
      if (del.status !== 200) throw new Error(`DELETE message: ${del.status}`);
      await messageUntil(ctx.stack, t.key, id, ['cancelled']);
      await capture(ctx, TYPES.send, t.id, 'scheduled-cancelled');
    },
  },
  {
    names: [`${TYPES.case}/signals-close-reopen`],
    async run(ctx) {
      const t = await tenant(ctx, await ctx.peer());
      const caseId = 'replay-case';
      await messageUntil(ctx.stack, t.key, await send(ctx, t.key, message({ caseId })), ['sent']);
      for (let n = 0; n < 3; n++) await inboundCaseEvent(ctx.stack, t.id, caseId, n);
      for (const action of ['close', 'reopen', 'close']) {
        const r = await api(ctx.stack, 'POST', `/v1/cases/${caseId}/${action}`, { key: t.key });
        if (r.status !== 200) throw new Error(`${action} case: ${r.status} ${JSON.stringify(r.body)}`);
      }
      await inboundCaseEvent(ctx.stack, t.id, caseId, 3);
      await eventually(
        async () => (await api(ctx.stack, 'GET', `/v1/cases/${caseId}`, { key: t.key })).body?.counts?.inbound === 4,
        30_000,
        'the case to count 4 inbound events',
      );
      await capture(ctx, TYPES.case, t.id, 'signals-close-reopen');
    },
  },
  {
    names: [`${TYPES.case}/continue-as-new`, `${TYPES.case}/continued`],
    async run(ctx) {
      const t = await tenant(ctx, await ctx.peer());
      const caseId = 'replay-long-case';
      await messageUntil(ctx.stack, t.key, await send(ctx, t.key, message({ caseId })), ['sent']);
      // CASE_EVENTS_PER_RUN (500) applied events end a run; a few more land in the next one.
      const total = 520;
      // One at a time, as a conversation's events come (the storm has its own scenario).
      for (let n = 0; n < total; n++) await inboundCaseEvent(ctx.stack, t.id, caseId, n);
      await eventually(
        async () => {
          const counts = (await api(ctx.stack, 'GET', `/v1/cases/${caseId}`, { key: t.key })).body?.counts as
            { inbound?: number } | undefined;
          return (counts?.inbound ?? 0) >= total;
        },
        120_000,
        `the case to count ${total} inbound events`,
      );
      await capture(ctx, TYPES.case, t.id, 'continue-as-new', 0);
      await capture(ctx, TYPES.case, t.id, 'continued', 1);
    },
  },
  {
    names: [`${TYPES.case}/signal-storm`],
    async run(ctx) {
      const t = await tenant(ctx, await ctx.peer());
      const caseId = 'replay-storm-case';
      await messageUntil(ctx.stack, t.key, await send(ctx, t.key, message({ caseId })), ['sent']);
      // All at once (docs/decisions.md, "Signal storms and local activities"): the run applies
      // what arrives, continues as new past 500 events carrying it unsaved, and must replay.
      const total = 600;
      await Promise.all(Array.from({ length: total }, (_, n) => inboundCaseEvent(ctx.stack, t.id, caseId, n)));
      await eventually(
        async () => {
          const counts = (await api(ctx.stack, 'GET', `/v1/cases/${caseId}`, { key: t.key })).body?.counts as
            { inbound?: number } | undefined;
          return (counts?.inbound ?? 0) >= total;
        },
        120_000,
        `the case to count ${total} inbound events`,
      );
      await capture(ctx, TYPES.case, t.id, 'signal-storm', 0);
    },
  },
  {
    names: [`${TYPES.oauth}/refresh`],
    async run(ctx) {
      const p = await ctx.peer({
        users: {},
        authMethods: ['XOAUTH2'],
        oauth: { jwksUrl: `${ctx.idp.baseUrl}/jwks`, issuer: ctx.idp.issuer, ca: ctx.pki.caCert },
      });
      const t = await tenant(ctx, p, {
        auth: {
          type: 'oauth2',
          user: USER,
          provider: 'generic',
          mode: 'client_credentials',
          tokenUrl: `${ctx.idp.baseUrl}/token`,
          clientId: 'replay-client',
          clientSecret: 'replay-secret',
          scope: 'smtp',
        },
      });
      const before = ctx.idp.tokens('client_credentials', 200).length;
      await messageUntil(ctx.stack, t.key, await send(ctx, t.key), ['sent']);
      // Tokens live 4 s and are refreshed 2 s before they expire: wait for two refreshes.
      await eventually(() => ctx.idp.tokens('client_credentials', 200).length >= before + 3, 30_000, 'two token refreshes');
      await capture(ctx, TYPES.oauth, t.id, 'refresh');
    },
  },
  {
    names: [`${TYPES.oauth}/needs-reauth-woken`, `${TYPES.send}/oauth-credentials-wait`],
    async run(ctx) {
      const p = await ctx.peer({
        users: {},
        authMethods: ['XOAUTH2'],
        oauth: { jwksUrl: `${ctx.idp.baseUrl}/jwks`, issuer: ctx.idp.issuer, ca: ctx.pki.caCert },
      });
      const auth = {
        type: 'oauth2',
        user: USER,
        provider: 'generic',
        mode: 'refresh_token',
        tokenUrl: `${ctx.idp.baseUrl}/token`,
        clientId: 'replay-client',
        clientSecret: 'replay-secret',
      };
      // No refresh token yet: the token workflow waits in needs_reauth, the message for credentials.
      const t = await tenant(ctx, p, { auth });
      const id = await send(ctx, t.key);
      await messageUntil(ctx.stack, t.key, id, ['waiting_credentials']);
      await workflowWaitsForCredentials(ctx.stack, t.id, id);
      const patched = await api(ctx.stack, 'PATCH', `/v1/tenants/${t.id}`, {
        key: ctx.stack.adminKey,
        body: { auth: { ...auth, refreshToken: 'replay-rt-1' } },
      });
      if (patched.status !== 200) throw new Error(`PATCH tenant: ${patched.status} ${JSON.stringify(patched.body)}`);
      await messageUntil(ctx.stack, t.key, id, ['sent']);
      await capture(ctx, TYPES.oauth, t.id, 'needs-reauth-woken');
      await capture(ctx, TYPES.send, t.id, 'oauth-credentials-wait');
    },
  },
  {
    names: [`${TYPES.webhooks}/retry-continue-as-new`, `${TYPES.webhooks}/continued`],
    async run(ctx) {
      const t = await webhookTenant(ctx.stack, ctx.receiver, `replay-wh-${++tenantSeq}x`);
      ctx.receiver.configure({ mode: 'fail' });
      await startWebhooksWithHistoryLimit(ctx.stack, t.id, 60);
      let n = 0;
      for (let seq = 0; seq < 6; seq++) {
        for (const c of ['a', 'b']) {
          await ctx.stack.events.append({
            id: `case.updated:${t.id}:${c}:${seq}`,
            tenantId: t.id,
            type: 'case.updated',
            caseId: c,
            data: { caseId: c, seq },
          });
          n++;
        }
      }
      await eventually(() => ctx.receiver.to(t.path).filter((r) => r.answered === 500).length >= 6, 30_000, 'failures before recovery');
      ctx.receiver.configure({ mode: 'ok' });
      await eventually(() => ctx.receiver.to(t.path).filter((r) => r.answered === 204).length === n, 60_000, 'every event delivered');
      await capture(ctx, TYPES.webhooks, t.id, 'retry-continue-as-new', 0);
      const runs = await runsOf(ctx.stack.temporal, queuesOf(ctx.stack), TYPES.webhooks, t.id, 2);
      const last = runs.at(-1)!;
      ctx.save(TYPES.webhooks, 'continued', last, await settledHistory(ctx.stack.temporal, last.workflowId, last.runId));
    },
  },
  {
    names: [`${TYPES.sweeper}/sweeps`],
    async run(ctx) {
      const q = ctx.stack.config.temporal.taskQueue;
      // The stack's own sweeper (one per task queue), after a few passes at 500 ms.
      await new Promise((r) => setTimeout(r, 3_000));
      await capture(ctx, TYPES.sweeper, q, 'sweeps');
    },
  },
  {
    names: [`${TYPES.imap}/failed-connection-wait`],
    async run(ctx) {
      const t = await tenant(ctx, await ctx.peer());
      // An IMAPS "server" whose certificate the watch cannot verify (no CA given): a failure the
      // tenant must fix, so the run ends `failed` and the workflow waits; a new PUT wakes it.
      const tlsPeer = await ctx.peer({ implicitTls: true });
      const body = { host: 'localhost', port: tlsPeer.port, security: 'tls', user: 'bounces', password: 'pw' };
      const state = async () => (await api(ctx.stack, 'GET', `/v1/tenants/${t.id}/bounce-mailbox`, { key: t.key })).body?.status;
      let failedSince: string | undefined;
      for (let i = 0; i < 2; i++) {
        const put = await api(ctx.stack, 'PUT', `/v1/tenants/${t.id}/bounce-mailbox`, { key: t.key, body });
        if (put.status !== 200 && put.status !== 201) throw new Error(`PUT bounce-mailbox: ${put.status} ${JSON.stringify(put.body)}`);
        const failed = await eventually(
          async () => {
            const s = (await state()) as { state?: string; since?: string } | undefined;
            return s?.state === 'failed' && s.since !== failedSince ? s : undefined;
          },
          30_000,
          'the watch to fail',
        );
        failedSince = failed.since;
      }
      await new Promise((r) => setTimeout(r, 1_000));
      await capture(ctx, TYPES.imap, t.id, 'failed-connection-wait');
    },
  },
  {
    names: [`${TYPES.verify}/verify-ok`],
    async run(ctx) {
      const t = await tenant(ctx, await ctx.peer({ users: { [USER]: PASSWORD } }));
      const r = await api(ctx.stack, 'POST', `/v1/tenants/${t.id}/verify`, { key: t.key });
      if (r.status !== 200 || r.body.ok !== true) throw new Error(`verify: ${r.status} ${JSON.stringify(r.body)}`);
      await capture(ctx, TYPES.verify, t.id, 'verify-ok');
    },
  },
  {
    names: [`${TYPES.reconcile}/pass-starts-an-orphan`],
    async run(ctx) {
      const t = await tenant(ctx, await ctx.peer());
      const id = await send(ctx, t.key);
      await messageUntil(ctx.stack, t.key, id, ['sent']);
      // An orphan: a message as the API stores it, whose workflow never started (its start failed).
      const doc = (await ctx.stack.messages.col.findOne({ _id: id }))!;
      const orphanId = `${id.slice(0, -4)}orph`;
      await ctx.stack.messages.col.insertOne({
        ...doc,
        _id: orphanId,
        messageId: `<${orphanId}@acme.example>`,
        status: 'queued',
        attempts: [],
        recipients: doc.recipients.map((r) => ({ ...r, status: 'pending' as const })),
        workflowId: doc.workflowId.replace(id, orphanId),
        completedAt: null,
        updatedAt: new Date(0),
      });
      const q = ctx.stack.config.temporal.taskQueue;
      await ensureReconcileSchedule(ctx.stack.temporal, q, 3_600_000, { graceMs: 0, notAcceptedGraceMs: 3_600_000 });
      await triggerReconcile(ctx.stack.temporal, q);
      await messageUntil(ctx.stack, t.key, orphanId, ['sent'], 60_000);
      const [run] = await runsOf(ctx.stack.temporal, [q], TYPES.reconcile, q);
      await eventually(
        async () => (await ctx.stack.temporal.workflow.getHandle(run!.workflowId, run!.runId).describe()).status.name === 'COMPLETED',
        30_000,
        'the reconcile pass to complete',
      );
      await capture(ctx, TYPES.reconcile, q, 'pass-starts-an-orphan');
      await ctx.stack.temporal.schedule.getHandle(reconcileScheduleId(q)).delete();
    },
  },
  {
    names: [`${TYPES.sentCopy}/appended`],
    async run(ctx) {
      const imap = await startDovecotImap({ serverKey: ctx.pki.serverKey, serverCert: ctx.pki.serverCert });
      try {
        const t = await tenant(ctx, await ctx.peer({ users: { [imap.user]: imap.password } }), {
          auth: { type: 'password', user: imap.user, password: imap.password },
          sentCopy: 'on',
          imap: { host: 'localhost', port: imap.tlsPort, security: 'tls' },
        });
        const id = await send(ctx, t.key);
        await messageUntil(ctx.stack, t.key, id, ['sent']);
        await eventually(
          async () => (await api(ctx.stack, 'GET', `/v1/messages/${id}`, { key: t.key })).body?.sentCopy?.status === 'appended',
          60_000,
          'the Sent copy',
        );
        await capture(ctx, TYPES.sentCopy, t.id, 'appended');
      } finally {
        await imap.stop();
      }
    },
  },
  {
    names: [`${TYPES.sentCopy}/refused`],
    async run(ctx) {
      // The IMAP login is refused (the SMTP password is not the mailbox's): not retried, `failed` on the message.
      const imap = await startDovecotImap({ serverKey: ctx.pki.serverKey, serverCert: ctx.pki.serverCert });
      try {
        const t = await tenant(ctx, await ctx.peer({ users: { [imap.user]: 'smtp-only' } }), {
          auth: { type: 'password', user: imap.user, password: 'smtp-only' },
          sentCopy: 'on',
          imap: { host: 'localhost', port: imap.tlsPort, security: 'tls' },
        });
        const id = await send(ctx, t.key);
        await messageUntil(ctx.stack, t.key, id, ['sent']);
        await eventually(
          async () => (await api(ctx.stack, 'GET', `/v1/messages/${id}`, { key: t.key })).body?.sentCopy?.status === 'failed',
          60_000,
          'the Sent copy to fail',
        );
        await capture(ctx, TYPES.sentCopy, t.id, 'refused');
      } finally {
        await imap.stop();
      }
    },
  },
  {
    names: [`${TYPES.deletion}/delete-a-tenant`],
    async run(ctx) {
      const t = await tenant(ctx, await ctx.peer());
      await messageUntil(ctx.stack, t.key, await send(ctx, t.key), ['sent']);
      const del = await api(ctx.stack, 'DELETE', `/v1/tenants/${t.id}`, { key: ctx.stack.adminKey });
      if (del.status !== 202) throw new Error(`DELETE: ${del.status} ${JSON.stringify(del.body)}`);
      const handle = ctx.stack.temporal.workflow.getHandle(del.body.workflowId as string);
      await handle.result();
      await capture(ctx, TYPES.deletion, t.id, 'delete-a-tenant');
    },
  },
];

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  let prefix = '';
  const filters: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--prefix') prefix = args[++i] ?? '';
    else filters.push(args[i]!);
  }
  const chosen = scenarios.filter((s) => filters.length === 0 || s.names.some((n) => filters.some((f) => n.includes(f))));
  if (chosen.length === 0) {
    process.stderr.write(`capture-histories: no scenario matches ${filters.join(' ')}\n`);
    return 1;
  }
  const keyLine = readFileSync(path.join(fixtures, 'encryption-key.txt'), 'utf8').trim();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'cartero-capture-'));
  const servers: Managed[] = [];
  const stops: Array<() => Promise<unknown>> = [];
  try {
    const fresh = await startThrowawayServers(root, tmp);
    servers.push(...fresh.servers);
    process.env.CARTERO_TEST_TEMPORAL_ADDRESS = fresh.temporalAddress;
    process.env.CARTERO_TEST_MONGODB_URI = fresh.mongoUri;

    const pki = makeTestPki(['localhost']);
    writeFileSync(path.join(tmp, 'ca.pem'), pki.caCert);
    const idp = await OAuthServer.start({ key: pki.serverKey, cert: pki.serverCert, tokenTtlS: 4, serviceAccounts: {} });
    stops.push(() => idp.stop());
    const receiver = await WebhookReceiver.start();
    stops.push(() => receiver.stop());
    const stack = await startStack({
      CARTERO_ENCRYPTION_KEYS: keyLine,
      SEND_RETRY_INITIAL_MS: '300',
      SEND_RETRY_MAX_MS: '2000',
      SEND_THROTTLE_PAUSE_MS: '500',
      RATE_LIMIT_MARGIN_MS: '1000',
      WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'loopback',
      WEBHOOK_RETRY_INITIAL_MS: '200',
      WEBHOOK_RETRY_MAX_MS: '1000',
      WEBHOOK_TIMEOUT_MS: '800',
      WEBHOOK_SWEEP_INTERVAL_MS: '500',
      OAUTH_CA_FILE: path.join(tmp, 'ca.pem'),
      OAUTH_ALLOW_PRIVATE_NETWORKS: 'loopback',
      OAUTH_REFRESH_MARGIN_MS: '2000',
    });
    stops.unshift(() => stack.stop());
    const peers: SmtpPeer[] = [];
    stops.push(() => Promise.all(peers.map((p) => p.stop())));
    const written: string[] = [];
    const ctx: Ctx = {
      stack,
      pki,
      idp,
      receiver,
      async peer(extra = {}) {
        const p = await SmtpPeer.start({
          implicitTls: false,
          key: pki.serverKey,
          cert: pki.serverCert,
          users: { u: 'p', [USER]: PASSWORD },
          ...extra,
        });
        peers.push(p);
        return p;
      },
      save(workflowType, scenario, run, history) {
        const dir = path.join(fixtures, workflowType);
        mkdirSync(dir, { recursive: true });
        const file = path.join(dir, `${prefix}${scenario}.json`);
        writeFileSync(file, historyToFile(history, run));
        written.push(path.relative(root, file));
      },
    };
    // Scenarios are independent (a tenant each) and mostly wait: run them side by side.
    const results = await Promise.allSettled(chosen.map((s) => s.run(ctx)));
    let failed = 0;
    results.forEach((r, i) => {
      if (r.status === 'rejected') {
        failed++;
        process.stderr.write(
          `capture-histories: ${chosen[i]!.names.join(', ')} failed: ${(r.reason as Error).stack ?? String(r.reason)}\n`,
        );
      }
    });
    for (const f of written.sort()) process.stdout.write(`wrote ${f}\n`);
    return failed === 0 ? 0 : 1;
  } finally {
    for (const stop of stops) await stop().catch(() => undefined);
    for (const s of servers.reverse()) await s.stop().catch(() => undefined);
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`capture-histories: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
