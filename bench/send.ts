import nodemailer from 'nodemailer';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { randomBytes } from 'node:crypto';
import type { CommandFailedEvent, CommandStartedEvent, CommandSucceededEvent } from 'mongodb';
import { Keyring } from '../src/security/crypto';
import { dataConverter } from '../src/temporal/connection';
import type { SendMessageInput } from '../src/temporal/handoffs/send-message';
import { CaseIdKey, MessageIdKey, SendStatusKey, TenantIdKey } from '../src/temporal/search-attributes';
import { temporalKind } from '../src/embedded/temporal';
import { withBenchServers } from './servers';
import { makeTestPki } from '../test/support/certs';
import { eventually, SmtpPeer } from '../test/support/smtp-peer';
import { api, createPeerTenant, startStack } from '../test/support/stack';

/**
 * bench/send: N messages (default 2000) through API → workflow → SMTP sink, against two baselines
 * measured in the same run:
 * - the same N sent by a plain pooled nodemailer loop to the same sink (what SMTP alone costs);
 * - the bare Temporal floor: N no-op workflows (one local activity each) started by a client with
 *   the same concurrency on the same Temporal server (what one workflow per message costs at least);
 * - the fair floor: the same no-op workflow with Cartero's Temporal shape (its four search attributes
 *   at start, one upsert at the end, the encryption codec, an input of the send workflow's size):
 *   what Temporal costs for this design, so the rest is what Cartero adds.
 * Prints sends/second for all, the ratios, Cartero's accept-to-250 latency p50/p99, and the store
 * commands per message (the driver's command monitoring, API and worker together).
 *
 *   npm run bench:send -- [N] [concurrency]
 */
const N = Number(process.argv[2] ?? 2000);
const CONCURRENCY = Number(process.argv[3] ?? 16);
/** The steady-load phase (issue 16): messages offered at a fixed rate, one at a time, as a product's traffic arrives. */
const STEADY_RATE = Number(process.env.BENCH_STEADY_RATE ?? 10);
const STEADY_SECS = Number(process.env.BENCH_STEADY_SECS ?? 60);
const CONNECTIONS = 5;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

async function main(): Promise<void> {
  await withBenchServers('bench', async () => {
    const pki = makeTestPki(['localhost']);
    const sink = await SmtpPeer.start({ implicitTls: false, key: pki.serverKey, cert: pki.serverCert, users: { u: 'p' } });

    // Baseline: a pooled nodemailer loop, same sink, same TLS, same number of connections.
    const transport = nodemailer.createTransport({
      pool: true,
      maxConnections: CONNECTIONS,
      maxMessages: 100,
      host: '127.0.0.1',
      port: sink.port,
      requireTLS: true,
      auth: { user: 'u', pass: 'p' },
      tls: { servername: 'localhost', ca: [pki.caCert] },
    });
    const t0 = Date.now();
    await pool([...Array(N).keys()], CONCURRENCY, async (i) => {
      await transport.sendMail({
        from: 'bench@acme.example',
        to: `r${i}@customer.example`,
        subject: `baseline ${i}`,
        text: 'Hello from the benchmark',
      });
    });
    const baselineSecs = (Date.now() - t0) / 1000;
    transport.close();
    const baselineRate = N / baselineSecs;

    // Temporal floor: the same server, a worker and a client in this process, as Cartero's are.
    const address = process.env.CARTERO_TEST_TEMPORAL_ADDRESS!;
    const floorConn = await NativeConnection.connect({ address });
    const floorWorker = await Worker.create({
      connection: floorConn,
      taskQueue: 'bench-floor',
      workflowsPath: require.resolve('./noop-workflow'),
      activities: { noop: async (n: number) => n },
    });
    const floorRun = floorWorker.run();
    const floorClient = new Client({ connection: await Connection.connect({ address }) });
    const t2 = Date.now();
    await pool([...Array(N).keys()], CONCURRENCY, async (i) => {
      await floorClient.workflow.start('noopWorkflow', { taskQueue: 'bench-floor', workflowId: `bench-floor-${i}`, args: [i] });
    });
    for (let i = 0; i < N; i++) await floorClient.workflow.getHandle(`bench-floor-${i}`).result();
    const floorSecs = (Date.now() - t2) / 1000;
    const floorRate = N / floorSecs;
    floorWorker.shutdown();
    await floorRun;

    // Fair floor: Cartero's Temporal shape, nothing of its work.
    const keyring = new Keyring(new Map([['bench', randomBytes(32)]]), 'bench');
    const converter = dataConverter(keyring);
    const fairWorker = await Worker.create({
      connection: floorConn,
      taskQueue: 'bench-fair',
      workflowsPath: require.resolve('./noop-workflow'),
      activities: { noop: async (n: number) => n },
      dataConverter: converter,
    });
    const fairRun = fairWorker.run();
    const fairClient = new Client({ connection: floorClient.connection, dataConverter: converter });
    const t3 = Date.now();
    await pool([...Array(N).keys()], CONCURRENCY, async (i) => {
      const id = `m_bench${String(i).padStart(20, '0')}`;
      const input: SendMessageInput = {
        tenantId: 'bench',
        id,
        policy: {
          initialMs: 60_000,
          maxMs: 3_600_000,
          greylistMs: 300_000,
          giveUpMs: 432_000_000,
          credentialsWaitMs: 259_200_000,
          throttlePauseMs: 60_000,
        },
        permitMarginMs: 2_000,
        acceptedAt: Date.now(),
      };
      await fairClient.workflow.start('shapedNoopWorkflow', {
        taskQueue: 'bench-fair',
        workflowId: `bench-fair-${i}`,
        args: [input],
        typedSearchAttributes: [
          { key: TenantIdKey, value: 'bench' },
          { key: MessageIdKey, value: id },
          { key: SendStatusKey, value: 'queued' },
          { key: CaseIdKey, value: `c_bench${i}` },
        ],
      });
    });
    for (let i = 0; i < N; i++) await fairClient.workflow.getHandle(`bench-fair-${i}`).result();
    const fairSecs = (Date.now() - t3) / 1000;
    const fairRate = N / fairSecs;
    fairWorker.shutdown();
    await fairRun;
    await floorClient.connection.close();
    await floorConn.close();

    // SEND_*, WORKER_* and STORE_* from the environment reach Cartero's config, to measure a setting against its default.
    const tuning = Object.fromEntries(
      Object.entries(process.env).filter(([k, v]) => /^(?:SEND|WORKER|STORE)_/.test(k) && v !== undefined),
    ) as Record<string, string>;
    // The store gauges refresh at the production default (the test stack's 1 s refresh scans the
    // messages collection five times a second on FerretDB, half its CPU during a burst).
    const stack = await startStack({ LOG_LEVEL: 'silent', WORKER_METRICS_REFRESH_MS: '30000', ...tuning }, { monitorCommands: true });
    const key = await createPeerTenant(stack, 'bench', sink, pki.caCert, { limits: { maxConnections: CONNECTIONS } });
    // Store commands while Cartero works (connection upkeep excluded), by name.
    const commands = new Map<string, number>();
    let counting = false;
    // The steady phase's commands, counted apart: at 10/s little is in flight to coalesce with.
    let countingSteady = false;
    let steadyCommands = 0;
    // Round-trip time by command (the store's queueing included): where a message's store time goes.
    const started = new Map<number, string>();
    const storeMs = new Map<string, number>();
    const UPKEEP = new Set(['hello', 'isMaster', 'ismaster', 'ping', 'endSessions', 'buildInfo', 'saslStart', 'saslContinue']);
    stack.store.client.on('commandStarted', (e: CommandStartedEvent) => {
      if (countingSteady && !UPKEEP.has(e.commandName)) steadyCommands++;
      if (!counting || UPKEEP.has(e.commandName)) return;
      // By command and collection: `find messages`, `update tenants`…
      const target = (e.command as Record<string, unknown>)[e.commandName];
      const name = typeof target === 'string' ? `${e.commandName} ${target}` : e.commandName;
      commands.set(name, (commands.get(name) ?? 0) + 1);
      started.set(e.requestId, name);
    });
    const finished = (e: CommandSucceededEvent | CommandFailedEvent) => {
      const name = started.get(e.requestId);
      if (name === undefined) return;
      started.delete(e.requestId);
      storeMs.set(name, (storeMs.get(name) ?? 0) + e.duration);
    };
    stack.store.client.on('commandSucceeded', finished);
    stack.store.client.on('commandFailed', finished);
    const before = sink.messages().length;
    const accepted = new Map<string, number>();
    counting = true;
    const t1 = Date.now();
    await pool([...Array(N).keys()], CONCURRENCY, async (i) => {
      const r = await api(stack, 'POST', '/v1/messages', {
        key,
        body: { from: 'bench@acme.example', to: [`r${i}@customer.example`], subject: `cartero ${i}`, text: 'Hello from the benchmark' },
      });
      if (r.status !== 202) throw new Error(`POST /v1/messages answered ${r.status}: ${JSON.stringify(r.body)}`);
      accepted.set(r.body.messageId as string, Date.now());
    });
    const acceptSecs = (Date.now() - t1) / 1000;
    await eventually(() => sink.messages().length - before >= N, 30 * 60_000, `${N} messages at the sink`);
    const got = sink.messages().slice(before);
    const lastArrival = Math.max(...got.map((m) => m.at));
    const carteroSecs = (lastArrival - t1) / 1000;
    const carteroRate = N / carteroSecs;
    const latencies = got.map((m) => m.at - (accepted.get(m.messageId) ?? m.at)).sort((a, b) => a - b);
    // Let the last sends' trailing writes (events, case) land before stopping the count.
    await new Promise((r) => setTimeout(r, 2_000));
    counting = false;
    // Steady load: STEADY_RATE requests a second for STEADY_SECS, each sent on its tick whatever the
    // others are doing (open loop); latency from the request's start to the sink's 250, as a person
    // waiting for a password-reset mail would measure it.
    const steadyStarted = new Map<string, number>();
    let steadyRefused = 0;
    const steadyN = Math.round(STEADY_RATE * STEADY_SECS);
    const steadyBefore = sink.messages().length;
    if (steadyN > 0) {
      await new Promise((r) => setTimeout(r, 3_000)); // the throughput phase's trailing work settles first
      const tickMs = 1000 / STEADY_RATE;
      countingSteady = true;
      const t3 = Date.now();
      const inFlight: Array<Promise<void>> = [];
      for (let i = 0; i < steadyN; i++) {
        const due = t3 + i * tickMs;
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const started = Date.now();
        inFlight.push(
          api(stack, 'POST', '/v1/messages', {
            key,
            body: { from: 'bench@acme.example', to: [`s${i}@customer.example`], subject: `steady ${i}`, text: 'Your reset code is 123456' },
          }).then((r) => {
            if (r.status === 202) steadyStarted.set(r.body.messageId as string, started);
            else steadyRefused++;
          }),
        );
      }
      await Promise.all(inFlight);
      await eventually(
        () => sink.messages().length - steadyBefore >= steadyStarted.size,
        10 * 60_000,
        'the steady-load messages at the sink',
      );
      await new Promise((r) => setTimeout(r, 2_000));
      countingSteady = false;
    }
    const steady = sink
      .messages()
      .slice(steadyBefore)
      .map((m) => m.at - (steadyStarted.get(m.messageId) ?? m.at))
      .sort((a, b) => a - b);
    const totalCommands = [...commands.values()].reduce((a, b) => a + b, 0);
    const byName = [...commands.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([name, n]) => `${name} ${(n / N).toFixed(2)}`)
      .join(', ');
    const totalStoreMs = [...storeMs.values()].reduce((a, b) => a + b, 0);
    const storeByName = [...storeMs.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8)
      .map(([name, ms]) => `${name} ${(ms / N).toFixed(1)}`)
      .join(', ');
    await stack.stop();
    await sink.stop();

    const lines = [
      `bench/send: N=${N}, client concurrency ${CONCURRENCY}, ${CONNECTIONS} SMTP connections, STARTTLS + AUTH to a local smtp-server sink`,
      `  baseline (plain nodemailer pooled loop): ${baselineRate.toFixed(1)} sends/s (${baselineSecs.toFixed(1)} s)`,
      `  cartero (API -> Temporal workflow -> SMTP): ${carteroRate.toFixed(1)} sends/s (${carteroSecs.toFixed(1)} s; all ${N} accepted in ${acceptSecs.toFixed(1)} s = ${(N / acceptSecs).toFixed(1)} accepts/s)`,
      `  bare temporal floor (no-op workflow + 1 local activity, same server, same client concurrency): ${floorRate.toFixed(1)} workflows/s (${floorSecs.toFixed(1)} s)`,
      `  fair temporal floor (the same with Cartero's 4 search attributes, 1 upsert, the codec, a send-sized input): ${fairRate.toFixed(1)} workflows/s (${fairSecs.toFixed(1)} s)`,
      `  ratio cartero/baseline: ${(carteroRate / baselineRate).toFixed(3)}`,
      `  ratio cartero/bare temporal floor: ${(carteroRate / floorRate).toFixed(3)}`,
      `  ratio cartero/fair temporal floor: ${(carteroRate / fairRate).toFixed(3)}`,
      `  store commands per message: ${(totalCommands / N).toFixed(2)} (${byName})`,
      `  store round-trip ms per message: ${(totalStoreMs / N).toFixed(1)} (${storeByName})`,
      `  accept-to-250 latency: p50 ${percentile(latencies, 50)} ms, p99 ${percentile(latencies, 99)} ms`,
      steadyN > 0
        ? `  steady load ${STEADY_RATE}/s for ${STEADY_SECS} s (${steadyStarted.size} accepted, ${steadyRefused} refused): request-to-250 p50 ${percentile(steady, 50)} ms, p99 ${percentile(steady, 99)} ms, max ${steady[steady.length - 1]} ms; store commands per message ${(steadyCommands / Math.max(1, steadyStarted.size)).toFixed(2)}`
        : '  steady load: skipped (BENCH_STEADY_SECS=0)',
      `  temporal server: ${temporalKind()}${Object.keys(tuning).length ? `; settings ${JSON.stringify(tuning)}` : ''}`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
  });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench/send: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
