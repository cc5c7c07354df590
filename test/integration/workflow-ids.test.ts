import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { recordCaseEvent } from '../../src/cases/record';
import { bounceWatchWorkflowId, watchSettingsChangedSignal } from '../../src/temporal/handoffs/bounce-mailbox-watch';
import { caseInboundSignal, caseWorkflowId, closeCaseUpdate, queryCaseSummary } from '../../src/temporal/handoffs/case';
import { refreshNowUpdate, signalCredentialsChanged, tokenWorkflowId } from '../../src/temporal/handoffs/oauth-token';
import {
  queryLimiterStats,
  rateLimiterWorkflowId,
  requestPermitSignal,
  throttleSignal,
  wakeLimiter,
  wakeLimiterSignal,
} from '../../src/temporal/handoffs/rate-limiter';
import { cancelSignal, querySendState, sendWorkflowId } from '../../src/temporal/handoffs/send-message';
import { eventsReadySignal, queryWebhookState, wakeWebhookDelivery, webhookWorkflowId } from '../../src/temporal/handoffs/webhook-delivery';
import { makeTestPki, type TestPki } from '../support/certs';
import { eventually, SmtpPeer } from '../support/smtp-peer';
import { api, createPeerTenant, startStack, type Stack } from '../support/stack';

/**
 * Workflow ids and hand-offs between two tenants whose ids once made the same workflow id:
 * `A` = `<x>` with case `corp-T1` and `B` = `<x>-corp` with case `T1` (`case-<x>-corp-T1` both).
 * For every id family, both tenants have a running workflow; A's operation reaches only A's, and a
 * hand-off addressed to A that is delivered to B's workflow anyway is refused there.
 */
let stack: Stack;
let pki: TestPki;
let peer: SmtpPeer;
const x = `t${randomBytes(3).toString('hex')}`;
const A = { id: x, key: '' };
const B = { id: `${x}-corp`, key: '' };

before(async () => {
  pki = makeTestPki(['localhost']);
  stack = await startStack({ OAUTH_ALLOW_PRIVATE_NETWORKS: 'loopback' });
  peer = await SmtpPeer.start({ implicitTls: false, key: pki.serverKey, cert: pki.serverCert, users: { u: 'p' } });
  A.key = await createPeerTenant(stack, A.id, peer, pki.caCert);
  B.key = await createPeerTenant(stack, B.id, peer, pki.caCert);
});
after(async () => {
  for (const id of [...[A, B].flatMap((t) => [tokenWorkflowId(t.id), bounceWatchWorkflowId(t.id), rateLimiterWorkflowId(t.id)])]) {
    await stack?.temporal.workflow
      .getHandle(id)
      .terminate('test over')
      .catch(() => undefined);
  }
  await Promise.all([stack?.stop(), peer?.stop()]);
});

/** An update refused by the workflow's validator, with the validator's reason. */
const refused = (reason: RegExp) => (err: unknown) => {
  const cause = (err as { cause?: { message?: string } }).cause;
  assert.match(String(cause?.message), reason);
  return true;
};

async function running(id: string): Promise<WorkflowHandle> {
  const handle = stack.temporal.workflow.getHandle(id);
  await eventually(async () => (await handle.describe().catch(() => null))?.status.name === 'RUNNING', 30_000, `${id} running`);
  return handle;
}

/** Signals (and updates) a workflow has received so far, from its history. */
async function received(handle: WorkflowHandle): Promise<number> {
  const h = await handle.fetchHistory();
  return (h.events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes || e.workflowExecutionUpdateAcceptedEventAttributes)
    .length;
}

describe('workflow ids and hand-offs between tenants acme and acme-corp', { timeout: 300_000 }, () => {
  test('case: A closing its case corp-T1 leaves B case T1 open and answers nothing of it', async () => {
    const deps = {
      cases: stack.repos.cases,
      events: stack.repos.events,
      temporal: stack.temporal,
      taskQueue: stack.config.temporal.taskQueue,
    };
    const inbound = (n: string) => ({
      eventId: `inbound:${n}`,
      kind: 'inbound' as const,
      at: Date.now(),
      participants: [`${n}@customer.example`],
    });
    await recordCaseEvent(deps, A.id, 'corp-T1', inbound('a1'));
    await recordCaseEvent(deps, B.id, 'T1', inbound('b1'));
    assert.notEqual(caseWorkflowId(A.id, 'corp-T1'), caseWorkflowId(B.id, 'T1'));
    const a = await running(caseWorkflowId(A.id, 'corp-T1'));
    const b = await running(caseWorkflowId(B.id, 'T1'));
    await eventually(async () => (await queryCaseSummary(stack.temporal, B.id, 'T1')).eventCount === 1, 30_000, 'B case applied');
    const bBefore = await received(b);

    const closed = await api(stack, 'POST', '/v1/cases/corp-T1/close', { key: A.key });
    assert.equal(closed.status, 200, JSON.stringify(closed.body));
    assert.equal(closed.body.tenantId, A.id);
    assert.equal(closed.body.id, 'corp-T1');
    assert.equal(closed.body.status, 'closed');
    assert.deepEqual(closed.body.participants, ['a1@customer.example'], 'the answer is A case, nothing of B');
    assert.equal((await queryCaseSummary(stack.temporal, A.id, 'corp-T1')).status, 'closed');
    assert.equal((await queryCaseSummary(stack.temporal, B.id, 'T1')).status, 'open');
    assert.equal((await api(stack, 'GET', '/v1/cases/T1', { key: B.key })).body.status, 'open');
    assert.equal(await received(b), bBefore, 'B case workflow heard nothing');
    assert.ok((await received(a)) > 0);

    // Delivered to B's workflow anyway: the update is refused, the signal is not applied.
    await assert.rejects(
      b.executeUpdate(closeCaseUpdate, { args: [{ eventId: 'closed:forged', at: Date.now(), to: { tenantId: A.id, item: 'corp-T1' } }] }),
      refused(/not addressed to this case/),
    );
    await b.signal(caseInboundSignal, { ...inbound('forged'), to: { tenantId: A.id, item: 'corp-T1' } });
    await b.signal(caseInboundSignal, { ...inbound('b2'), to: { tenantId: B.id, item: 'T1' } });
    const s = await eventually(
      async () => {
        const v = await queryCaseSummary(stack.temporal, B.id, 'T1');
        return v.participants.includes('b2@customer.example') ? v : undefined;
      },
      30_000,
      'the addressed signal after the forged one',
    );
    assert.equal(s.status, 'open');
    assert.equal(s.eventCount, 2);
    assert.ok(!s.participants.includes('forged@customer.example'));
  });

  test('send: A cancelling its message leaves B message scheduled; a cancel addressed to A does nothing in B workflow', async () => {
    const sendAt = new Date(Date.now() + 3_600_000).toISOString();
    const post = (t: typeof A) =>
      api(stack, 'POST', '/v1/messages', {
        key: t.key,
        body: { from: 'support@acme.example', to: ['alice@customer.example'], subject: 'later', text: 'hi', sendAt },
      });
    const [ma, mb] = [(await post(A)).body, (await post(B)).body];
    const wa = sendWorkflowId(A.id, ma.id);
    const wb = sendWorkflowId(B.id, mb.id);
    await running(wa);
    const b = await running(wb);
    const bBefore = await received(b);
    assert.equal((await api(stack, 'DELETE', `/v1/messages/${ma.id}`, { key: A.key })).body.status, 'cancelled');
    // B's key cannot reach A's message and A's cannot reach B's.
    assert.equal((await api(stack, 'DELETE', `/v1/messages/${mb.id}`, { key: A.key })).status, 404);
    assert.equal(await received(b), bBefore);

    await b.signal(cancelSignal, { tenantId: A.id, item: ma.id });
    // Queries are answered after the signals before them: the forged cancel was seen and ignored.
    assert.equal((await querySendState(stack.temporal, wb)).status, 'scheduled');
    assert.equal((await api(stack, 'GET', `/v1/messages/${mb.id}`, { key: B.key })).body.status, 'scheduled');
    await b.signal(cancelSignal, { tenantId: B.id, item: mb.id });
    assert.equal((await b.result()).status, 'cancelled', 'the addressed cancel still works');
  });

  test('ratelimit: permits and throttling addressed to A never count at B limiter', async () => {
    const q = stack.config.temporal.taskQueue;
    const rules = [{ windowMs: 60_000, max: 1000, countBy: 'messages' as const }];
    // As the requestPermit activity does: the request into the store, then a wake-up.
    const requestPermit = async (tenantId: string, messageId: string) => {
      await stack.repos.permits.enqueue(
        tenantId,
        { workflowId: sendWorkflowId(tenantId, messageId), recipients: 1, acceptedAt: Date.now() },
        Date.now(),
      );
      await wakeLimiter(stack.temporal, q, tenantId, 1000, 'request');
    };
    await requestPermit(A.id, 'm_nobodya1');
    await requestPermit(B.id, 'm_nobodyb1');
    const b = await running(rateLimiterWorkflowId(B.id));
    await eventually(async () => (await queryLimiterStats(stack.temporal, B.id)).grants === 1, 30_000, 'B grant');
    await requestPermit(A.id, 'm_nobodya2');
    await b.signal(wakeLimiterSignal, { tenantId: A.id, reason: 'release' });
    await b.signal(requestPermitSignal, {
      workflowId: sendWorkflowId(A.id, 'm_forged1'),
      recipients: 1,
      rules,
      acceptedAt: Date.now(),
      tenantId: A.id,
    });
    await b.signal(throttleSignal, { untilMs: Date.now() + 3_600_000, tenantId: A.id });
    const stats = await queryLimiterStats(stack.temporal, B.id);
    assert.deepEqual([stats.requests, stats.grants, stats.pausedUntil], [1, 1, 0]);
    assert.equal((await queryLimiterStats(stack.temporal, A.id)).requests, 2);
  });

  test('webhooks: events handed over for A are not queued at B delivery workflow', async () => {
    const q = stack.config.temporal.taskQueue;
    await wakeWebhookDelivery(stack.temporal, q, A.id);
    await wakeWebhookDelivery(stack.temporal, q, B.id);
    const b = await running(webhookWorkflowId(B.id));
    const before = await received(b);
    await wakeWebhookDelivery(stack.temporal, q, A.id);
    assert.equal(await received(b), before);
    await b.signal(eventsReadySignal, { events: [{ id: 'ev_forged', lane: 'forged', at: Date.now() }], tenantId: A.id });
    assert.equal((await queryWebhookState(stack.temporal, B.id)).queued, 0);
  });

  test('oauth: a refresh addressed to A is refused by B token workflow; A credentials change reaches only A', async () => {
    const oauth = {
      type: 'oauth2',
      provider: 'generic',
      mode: 'client_credentials',
      user: 'ops@acme.example',
      tokenUrl: 'https://127.0.0.1:9/token',
      clientId: 'cartero',
      clientSecret: 'client-secret-for-tests',
    };
    for (const t of [A, B]) {
      const r = await api(stack, 'PATCH', `/v1/tenants/${t.id}`, { key: t.key, body: { auth: oauth } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    // Each PATCH told its own token workflow (signal-with-start). A signal that arrives during a
    // workflow task reaches the history only after it, so counts are awaited, not read once.
    const b = await running(tokenWorkflowId(B.id));
    const a = await running(tokenWorkflowId(A.id));
    await eventually(async () => (await received(b)) === 1 && (await received(a)) === 1, 30_000, 'one signal each');
    const target = { client: stack.temporal, taskQueue: stack.config.temporal.taskQueue, refreshMarginMs: 60_000 };
    await signalCredentialsChanged(target, A.id);
    await eventually(async () => (await received(a)) === 2, 30_000, 'A told');
    assert.equal(await received(b), 1);
    await assert.rejects(
      b.executeUpdate(refreshNowUpdate, { args: [{ staleGeneration: 0, to: { tenantId: A.id } }] }),
      refused(/not addressed to this tenant/),
    );
    await assert.rejects(b.executeUpdate(refreshNowUpdate, { args: [{ staleGeneration: 0 }] }), refused(/not addressed to this tenant/));
  });

  test('imap: A bounce-mailbox changes wake only A watch; a wake-up addressed to A does not restart B watch', async () => {
    for (const t of [A, B]) {
      const r = await api(stack, 'PUT', `/v1/tenants/${t.id}/bounce-mailbox`, {
        key: t.key,
        body: { host: '127.0.0.1', port: 9, security: 'tls', user: 'bounces', password: 'imap-password' },
      });
      assert.ok([200, 201].includes(r.status), JSON.stringify(r.body));
    }
    const b = await running(bounceWatchWorkflowId(B.id));
    await running(bounceWatchWorkflowId(A.id));
    const before = await received(b);
    assert.equal((await api(stack, 'DELETE', `/v1/tenants/${A.id}/bounce-mailbox`, { key: A.key })).status, 204);
    assert.equal(await received(b), before);
    const cancels = async () => ((await b.fetchHistory()).events ?? []).filter((e) => e.activityTaskCancelRequestedEventAttributes).length;
    const cancelsBefore = await cancels();
    await b.signal(watchSettingsChangedSignal, { tenantId: A.id });
    // Wait until a workflow task has handled the forged signal, then look for a cancelled watch.
    await eventually(
      async () => {
        const events = (await b.fetchHistory()).events ?? [];
        const signalled = events.map((e) => Boolean(e.workflowExecutionSignaledEventAttributes)).lastIndexOf(true);
        return events.slice(signalled).some((e) => e.workflowTaskCompletedEventAttributes);
      },
      30_000,
      'the forged signal handled',
    );
    assert.equal(await cancels(), cancelsBefore, 'B watch was not restarted');
  });
});
