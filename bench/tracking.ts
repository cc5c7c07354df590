import { spawn } from 'node:child_process';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import express from 'express';
import { PIXEL_GIF, PIXEL_HEADERS } from '../src/api/routes/tracking';
import { withBenchServers } from './servers';
import { makeTestPki } from '../test/support/certs';
import { api, createPeerTenant, startStack } from '../test/support/stack';

/**
 * bench/tracking: the open pixel and the click redirect under load, beside a bare Express handler
 * that writes the same bytes (same GIF and headers, same 302) in the same run, at the same
 * concurrency, from a separate load-generator process (autocannon, bench/tracking-load.ts).
 * Cartero runs its real app (createApp: every middleware it mounts, HMAC check, hit buffer) and
 * writes the hits to a real FerretDB while under load. Paths cycle through real tokens taken out
 * of the composed MIME of tracked messages.
 *
 *   npm run bench:tracking -- [connections=32] [seconds=10] [rounds=3]
 */
const CONNECTIONS = Number(process.argv[2] ?? 32);
const SECONDS = Number(process.argv[3] ?? 10);
const ROUNDS = Number(process.argv[4] ?? 3);
const MESSAGES = 100;
const UA = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

interface LoadResult {
  requestsPerSec: number;
  total: number;
  p50: number;
  p99: number;
  errors: number;
  timeouts: number;
  codes: Record<string, number>;
}

function load(url: string, paths: string[], durationSec: number): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const job = JSON.stringify({ url, paths, method: 'GET', connections: CONNECTIONS, durationSec, userAgent: UA });
    const child = spawn(process.execPath, [path.join(__dirname, 'tracking-load.js'), job], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out.trim()) as LoadResult) : reject(new Error(`load generator exited ${code}`)),
    );
  });
}

/** Tracked URLs as the composed MIME holds them (quoted-printable undone). */
function trackedPaths(mime: string): { open: string; click: string } {
  const text = mime.replace(/=\r?\n/g, '').replace(/=3D/gi, '=');
  const open = /\/t\/o\/[\w-]+/.exec(text)?.[0];
  const click = /\/t\/c\/[\w-]+/.exec(text)?.[0];
  if (!open || !click) throw new Error('no tracked links in the composed message');
  return { open, click };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const spread = (xs: number[], digits = 2) => `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;

async function main(): Promise<void> {
  await withBenchServers('bench-tracking', async (tmp) => {
    // No worker: the messages stay queued; only the tracking endpoints are measured.
    // TRACKING_FLUSH_MS / TRACKING_FLUSH_HITS from the environment, to see what batching costs; the
    // replay limits too: with the defaults the load (one client address, one User-Agent, 100 tokens)
    // is almost all repeats and rate-limited, so `TRACKING_REPEAT_WINDOW_MS=0 TRACKING_IP_RATE=0`
    // measures the path that records every hit.
    const flush = Object.fromEntries(
      [
        'TRACKING_FLUSH_MS',
        'TRACKING_FLUSH_HITS',
        'TRACKING_REPEAT_WINDOW_MS',
        'TRACKING_IP_RATE',
        'TRACKING_IP_BURST',
        'TRACKING_MAX_EVENTS',
      ]
        .filter((k) => process.env[k])
        .map((k) => [k, process.env[k]!]),
    );
    const stack = await startStack({ LOG_LEVEL: 'silent', TRACKING_SPOOL_DIR: path.join(tmp, 'spool'), ...flush }, { worker: false });
    const pki = makeTestPki(['localhost']);
    const key = await createPeerTenant(stack, 'bench', { port: 2525 }, pki.caCert, { tracking: { opens: true, clicks: true } });
    const opens: string[] = [];
    const clicks: string[] = [];
    for (let i = 0; i < MESSAGES; i++) {
      const r = await api(stack, 'POST', '/v1/messages', {
        key,
        body: {
          from: 'news@acme.example',
          to: [`r${i}@customer.example`],
          subject: `bench ${i}`,
          html: `<p>Hi <a href="https://shop.example/p/${i}?ref=mail">offer</a></p>`,
          track: { opens: true, clicks: true },
        },
      });
      if (r.status !== 202) throw new Error(`POST /v1/messages answered ${r.status}: ${JSON.stringify(r.body)}`);
      const doc = await stack.messages.get('bench', r.body.id as string);
      const p = trackedPaths((await stack.messages.loadBody(doc)).toString('utf8'));
      opens.push(p.open);
      clicks.push(p.click);
    }

    const bare = express();
    bare.get('/t/o/:token', (_req, res) => {
      res.writeHead(200, PIXEL_HEADERS);
      res.end(PIXEL_GIF);
    });
    bare.get('/t/c/:token', (_req, res) => {
      res.writeHead(302, { Location: 'https://shop.example/p/0?ref=mail', 'Cache-Control': 'no-store', 'Content-Length': '0' });
      res.end();
    });
    const bareServer: Server = await new Promise((resolve) => {
      const s = bare.listen(0, '127.0.0.1', () => resolve(s));
    });
    const bareUrl = `http://127.0.0.1:${(bareServer.address() as AddressInfo).port}`;

    const targets = [
      { name: 'bare pixel', url: bareUrl, paths: opens },
      { name: 'cartero pixel', url: stack.baseUrl, paths: opens },
      { name: 'bare click', url: bareUrl, paths: clicks },
      { name: 'cartero click', url: stack.baseUrl, paths: clicks },
    ];
    for (const t of targets) await load(t.url, t.paths, 2); // warm-up (JIT, connections)
    const results = new Map<string, LoadResult[]>(targets.map((t) => [t.name, []]));
    for (let round = 1; round <= ROUNDS; round++) {
      for (const t of targets) {
        const r = await load(t.url, t.paths, SECONDS);
        results.get(t.name)!.push(r);
        process.stdout.write(
          `  round ${round} ${t.name.padEnd(14)} ${r.requestsPerSec.toFixed(0).padStart(6)} req/s  p50 ${r.p50} ms  p99 ${r.p99} ms  ${JSON.stringify(r.codes)} errors ${r.errors}\n`,
        );
      }
    }

    // Every hit the endpoints took must reach the store.
    const buffer = stack.tracking.buffer;
    const deadline = Date.now() + 5 * 60_000;
    while (buffer.size > 0 && Date.now() < deadline) await buffer.flush().then(() => new Promise((r) => setTimeout(r, 100)));
    const stats = { ...buffer.stats };

    const lines = [
      `bench/tracking: ${CONNECTIONS} connections, ${SECONDS} s per run, ${ROUNDS} rounds, ${MESSAGES} tracked messages (paths cycled), autocannon in a separate process`,
    ];
    for (const kind of ['pixel', 'click'] as const) {
      const b = results.get(`bare ${kind}`)!;
      const c = results.get(`cartero ${kind}`)!;
      const thr = c.map((x, i) => x.requestsPerSec / b[i]!.requestsPerSec);
      const lat = c.map((x, i) => x.p99 / Math.max(1, b[i]!.p99));
      lines.push(
        `  ${kind}: bare ${median(b.map((x) => x.requestsPerSec)).toFixed(0)} req/s p99 ${median(b.map((x) => x.p99))} ms | cartero ${median(c.map((x) => x.requestsPerSec)).toFixed(0)} req/s p99 ${median(c.map((x) => x.p99))} ms`,
        `    throughput ratio cartero/bare: median ${median(thr).toFixed(2)} (rounds ${spread(thr)}), target >= 0.70 ${median(thr) >= 0.7 ? 'MET' : 'NOT MET'}`,
        `    p99 ratio cartero/bare:        median ${median(lat).toFixed(2)} (rounds ${spread(lat)}), target <= 1.50 ${median(lat) <= 1.5 ? 'MET' : 'NOT MET'}`,
      );
    }
    const metrics = await (await fetch(`${stack.metricsUrl}/metrics`)).text();
    const outcomes = [...metrics.matchAll(/cartero_tracking_hits_total\{kind="(\w+)",outcome="(\w+)"\} (\d+)/g)].map(
      (m) => `${m[1]} ${m[2]} ${m[3]}`,
    );
    lines.push(`  guard: ${outcomes.join(', ')}`);
    lines.push(
      `  hits: recorded ${stats.recorded}, written ${stats.written}, spilled ${stats.spilled}, replayed ${stats.replayed}, dropped ${stats.dropped}, still queued ${buffer.size}`,
    );
    process.stdout.write(lines.join('\n') + '\n');
    bareServer.close();
    await stack.stop();
  });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench/tracking: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
