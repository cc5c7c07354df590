import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { MongoClient } from 'mongodb';
import { freePort } from '../../src/embedded/processes';
import { reconcileScheduleId } from '../../src/temporal/handoffs/ids';
import { webhookSweeperWorkflowId } from '../../src/temporal/handoffs/webhook-delivery';
import type { SmtpPeer } from './smtp-peer';
import { eventually } from './smtp-peer';
import { api, testEnv } from './stack';

/**
 * The service as separate OS processes, as deployed: one API process (src/server.js) and any number
 * of worker processes (src/worker.js), from the compiled tree the tests run in, with a stack's env
 * (testEnv: its own database and task queue). Fault tests kill them with SIGKILL and start them
 * again; the test talks to the API over HTTP only.
 */
const srcDir = path.resolve(__dirname, '..', '..', 'src');

/** One API or worker process; `start()` again after `kill()` is a restart with the same env. */
export class ServiceProcess {
  child: ChildProcess | null = null;
  private out = '';

  constructor(
    readonly name: string,
    private readonly entry: 'server' | 'worker',
    private readonly env: () => Record<string, string>,
  ) {}

  /** Starts the process and waits until it is ready (API: /readyz 200; worker: polling its task queue). */
  async start(timeoutMs = 90_000): Promise<this> {
    // info: the worker's readiness is its 'worker running' log line.
    const child = spawn(process.execPath, [path.join(srcDir, `${this.entry}.js`)], {
      env: { ...process.env, ...this.env(), LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const keep = (b: Buffer) => {
      this.out = (this.out + b.toString()).slice(-40_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const since = this.out.length;
    try {
      await eventually(
        async () => {
          if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited (${child.signalCode ?? child.exitCode})`);
          if (this.entry === 'worker') return this.out.slice(since).includes('"msg":"worker running"');
          const r = await fetch(`http://127.0.0.1:${this.env().PORT}/readyz`);
          return r.status === 200;
        },
        timeoutMs,
        `${this.name} ready`,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}; ${this.name} printed:\n${this.output()}`);
    }
    return this;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  alive(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGKILL (a crash, an OOM kill, a power cut of this process) and wait until it is gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child || !this.alive()) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await gone;
  }

  /** The last 40 kB it printed (JSON logs), for failure messages. */
  output(): string {
    return this.out.slice(-8000);
  }
}

export interface ProcessStack {
  env: Record<string, string>;
  baseUrl: string;
  adminKey: string;
  api: ServiceProcess;
  workers: ServiceProcess[];
  /** Adds (and starts) one more worker process. */
  addWorker(): Promise<ServiceProcess>;
  /** What every process printed last, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts the API and `workers` worker processes against the servers run-tests.ts started (or the
 * `TEMPORAL_ADDRESS` / `MONGODB_URI` given in `overrides`: a test's own servers it restarts).
 */
export async function startProcessStack(overrides: Record<string, string> = {}, options: { workers?: number } = {}): Promise<ProcessStack> {
  const env = testEnv({ PORT: String(await freePort()), HOST: '127.0.0.1', METRICS_PORT: '0', ...overrides });
  const api = new ServiceProcess('api', 'server', () => env);
  const workers: ServiceProcess[] = [];
  const addWorker = async () => {
    // Each worker its own metrics ports, as two workers on one host would be deployed: the SDK's
    // Prometheus exporter refuses to start on a taken port, and the worker with it.
    const ports = { WORKER_METRICS_PORT: String(await freePort()), TEMPORAL_METRICS_PORT: String(await freePort()) };
    const w = new ServiceProcess(`worker ${workers.length + 1}`, 'worker', () => ({ ...env, ...ports }));
    workers.push(w);
    return w.start();
  };
  // Workers first: the API's start needs nothing of theirs, but a request must find a poller.
  for (let i = 0; i < (options.workers ?? 1); i++) await addWorker();
  await api.start();
  return {
    env,
    baseUrl: `http://127.0.0.1:${env.PORT}`,
    adminKey: env.CARTERO_ADMIN_KEY!,
    api,
    workers,
    addWorker,
    output: () => [api, ...workers].map((p) => `--- ${p.name}:\n${p.output()}`).join('\n'),
    async stop() {
      await Promise.all([api, ...workers].map((p) => p.kill()));
      await cleanUp(env);
    },
  };
}

/** What a stack leaves on the shared servers: its database, and the per-task-queue sweeper and schedule. */
async function cleanUp(env: Record<string, string>): Promise<void> {
  const mongo = new MongoClient(env.MONGODB_URI!, { serverSelectionTimeoutMS: 3000 });
  await mongo
    .db(env.MONGODB_DB)
    .dropDatabase()
    .catch(() => undefined);
  await mongo.close().catch(() => undefined);
  const connection = await Connection.connect({ address: env.TEMPORAL_ADDRESS!, connectTimeout: '3s' }).catch(() => null);
  if (!connection) return;
  const client = new Client({ connection });
  const queue = env.TEMPORAL_TASK_QUEUE!;
  await client.workflow
    .getHandle(webhookSweeperWorkflowId(queue))
    .terminate()
    .catch(() => undefined);
  await client.schedule
    .getHandle(reconcileScheduleId(queue))
    .delete()
    .catch(() => undefined);
  await connection.close();
}

/**
 * The promise every fault test checks, counted by Message-ID at the SMTP server: every accepted
 * message arrived, and a message arrived twice only in the window docs/sending.md documents (after
 * the final dot of DATA, before the server's reply was recorded): its first copy's DATA had ended
 * before the fault at `faultAt`, or the client was gone before the reply (`replyLost`). Both copies
 * are the same bytes. Returns the Message-IDs that arrived twice.
 */
export function assertEveryMessageArrived(peer: SmtpPeer, accepted: string[], faultAt = 0): string[] {
  const byId = new Map<string, ReturnType<SmtpPeer['messages']>>();
  for (const m of peer.messages()) byId.set(m.messageId, [...(byId.get(m.messageId) ?? []), m]);
  const missing = accepted.filter((id) => !byId.has(id));
  assert.deepEqual(missing, [], `${missing.length} of ${accepted.length} accepted messages never reached the SMTP server`);
  const twice: string[] = [];
  for (const id of accepted) {
    const copies = byId.get(id)!;
    if (copies.length === 1) continue;
    assert.equal(copies.length, 2, `${id} arrived ${copies.length} times`);
    // In the order the server got them: the held copy may be answered after its retry.
    const [first, second] = [...copies].sort((a, b) => a.dataEndAt - b.dataEndAt) as [(typeof copies)[0], (typeof copies)[0]];
    assert.ok(
      first.replyLost || first.dataEndAt <= faultAt,
      `${id} arrived twice, but its first copy's reply was seen and its DATA ended after the fault: not the documented duplicate`,
    );
    assert.equal(second.raw, first.raw, `${id}: the retry must send the same bytes`);
    twice.push(id);
  }
  const unexpected = peer.messages().filter((m) => !accepted.includes(m.messageId));
  assert.deepEqual(
    unexpected.map((m) => m.messageId),
    [],
    'messages nobody accepted reached the SMTP server',
  );
  return twice;
}

/** Posts `n` messages for `tenantId` (admin key); returns the accepted ones' ids and Message-IDs, and the other answers. */
export async function postMessages(
  stack: Pick<ProcessStack, 'baseUrl' | 'adminKey'>,
  tenantId: string,
  n: number,
  label: string,
): Promise<{ ids: string[]; messageIds: string[]; refused: Array<{ key: string; status: number; type: string }> }> {
  const ids: string[] = [];
  const messageIds: string[] = [];
  const refused: Array<{ key: string; status: number; type: string }> = [];
  for (let i = 0; i < n; i++) {
    const key = `${label}-${i}`;
    const r = await api(stack, 'POST', '/v1/messages', {
      key: stack.adminKey,
      body: { tenantId, from: 'a@acme.example', to: [`${key}@customer.example`], subject: key, text: 'x', idempotencyKey: key },
    });
    if (r.status === 202) {
      ids.push(r.body.id);
      messageIds.push(r.body.messageId);
    } else refused.push({ key, status: r.status, type: `${r.headers.get('content-type')} ${JSON.stringify(r.body)}` });
  }
  return { ids, messageIds, refused };
}

/** Waits until every message (admin view) is `sent`; on timeout, says where each one is. */
export async function allSent(
  stack: Pick<ProcessStack, 'baseUrl' | 'adminKey'>,
  ids: string[],
  timeoutMs: number,
  extra = () => '',
): Promise<void> {
  let state = '';
  await eventually(
    async () => {
      const views = await Promise.all(ids.map((id) => api(stack, 'GET', `/v1/messages/${id}`, { key: stack.adminKey })));
      state = JSON.stringify(
        views.map((v) => [v.body?.id?.slice(-6), v.body?.status, v.body?.attempts?.map((a: { outcome: string }) => a.outcome)]),
      );
      return views.every((v) => v.body?.status === 'sent');
    },
    timeoutMs,
    'every accepted message sent',
  ).catch((err: Error) => assert.fail(`${err.message}; messages: ${state}\n${extra()}`));
}
