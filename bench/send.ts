import nodemailer from 'nodemailer';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { withBenchServers } from './servers';
import { makeTestPki } from '../test/support/certs';
import { eventually, SmtpPeer } from '../test/support/smtp-peer';
import { api, createPeerTenant, startStack } from '../test/support/stack';

/**
 * bench/send: N messages (default 2000) through API → workflow → SMTP sink, against two baselines
 * measured in the same run:
 * - the same N sent by a plain pooled nodemailer loop to the same sink (what SMTP alone costs);
 * - the Temporal floor: N no-op workflows (one local activity each) started by a client with the
 *   same concurrency on the same Temporal server (what one workflow per message costs at least).
 * Prints sends/second for all three, the ratios, and Cartero's accept-to-250 latency p50/p99.
 *
 *   npm run bench:send -- [N] [concurrency]
 */
const N = Number(process.argv[2] ?? 2000);
const CONCURRENCY = Number(process.argv[3] ?? 16);
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
    await floorClient.connection.close();
    await floorConn.close();

    const stack = await startStack({ LOG_LEVEL: 'silent' });
    const key = await createPeerTenant(stack, 'bench', sink, pki.caCert, { limits: { maxConnections: CONNECTIONS } });
    const before = sink.messages().length;
    const accepted = new Map<string, number>();
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
    await stack.stop();
    await sink.stop();

    const lines = [
      `bench/send: N=${N}, client concurrency ${CONCURRENCY}, ${CONNECTIONS} SMTP connections, STARTTLS + AUTH to a local smtp-server sink`,
      `  baseline (plain nodemailer pooled loop): ${baselineRate.toFixed(1)} sends/s (${baselineSecs.toFixed(1)} s)`,
      `  cartero (API -> Temporal workflow -> SMTP): ${carteroRate.toFixed(1)} sends/s (${carteroSecs.toFixed(1)} s; all ${N} accepted in ${acceptSecs.toFixed(1)} s = ${(N / acceptSecs).toFixed(1)} accepts/s)`,
      `  temporal floor (no-op workflow + 1 local activity, same server, same client concurrency): ${floorRate.toFixed(1)} workflows/s (${floorSecs.toFixed(1)} s)`,
      `  ratio cartero/baseline: ${(carteroRate / baselineRate).toFixed(3)}`,
      `  ratio cartero/temporal floor: ${(carteroRate / floorRate).toFixed(3)}`,
      `  accept-to-250 latency: p50 ${percentile(latencies, 50)} ms, p99 ${percentile(latencies, 99)} ms`,
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
