import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { opsRoutes } from '../../src/api/routes/ops';
import { eventually } from '../support/smtp-peer';
import { startStack, testEnv, type Stack } from '../support/stack';

/**
 * Issue 12, item 9: `/metrics` and `/readyz` with error text were public on the API port. The real
 * API process (src/server.ts) runs with its production defaults for the metrics listener; what
 * a stranger reaching the API port gets is checked, and that the metrics listener answers on
 * loopback only.
 */
const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });

let api: ChildProcess;
let apiPort: number;
let metricsPort: number;
let adminKey: string;
let stack: Stack;

before(async () => {
  [apiPort, metricsPort] = [await freePort(), await freePort()];
  const env = testEnv({ PORT: String(apiPort), HOST: '0.0.0.0', METRICS_PORT: String(metricsPort) });
  adminKey = env.CARTERO_ADMIN_KEY!;
  api = spawn(process.execPath, [path.resolve(__dirname, '..', '..', 'src', 'server.js')], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await eventually(
    async () =>
      (await fetch(`http://127.0.0.1:${apiPort}/healthz`)
        .then((r) => r.ok)
        .catch(() => false)) || undefined,
    60_000,
    'the API process to answer',
  );
  stack = await startStack({}, { worker: false });
});
after(async () => {
  api?.kill('SIGTERM');
  await stack?.stop();
});

/** A request from another address of this machine than the one the listener may be bound to. */
const fromOutside = (port: number, p: string, headers: Record<string, string> = {}) =>
  fetch(`http://127.0.0.2:${port}${p}`, { headers }).then(async (r) => ({ status: r.status, text: await r.text() }));

describe('attack: metrics and readiness detail on the public API port', () => {
  test('the API port: no metrics, a bare `ok` and `ready`; the detail only for the admin key', async () => {
    const metrics = await fromOutside(apiPort, '/metrics');
    assert.equal(metrics.status, 404);
    assert.doesNotMatch(metrics.text, /cartero_|# HELP|process_cpu/);
    const health = await fromOutside(apiPort, '/healthz');
    assert.deepEqual(health, { status: 200, text: 'ok' });
    const ready = await fromOutside(apiPort, '/readyz');
    assert.deepEqual(ready, { status: 200, text: 'ready' });
    const detail = await fromOutside(apiPort, '/readyz', { authorization: `Bearer ${adminKey}` });
    assert.equal(JSON.parse(detail.text).checks.store.ok, true);
  });

  test('the metrics listener: served on loopback (127.0.0.1), refused from any other address', async () => {
    const m = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    assert.equal(m.status, 200);
    assert.match(await m.text(), /cartero_api_process_cpu_seconds_total/);
    const r = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
    assert.equal(((await r.json()) as { checks: { temporal: { ok: boolean } } }).checks.temporal.ok, true);
    await assert.rejects(fromOutside(metricsPort, '/metrics'), 'not reachable but on loopback');
  });

  test('a dependency down: the public /readyz says `not ready` and nothing of the error', async () => {
    const app = express();
    app.use(
      opsRoutes({
        store: stack.store,
        temporalCheck: () => Promise.reject(new Error('connect ECONNREFUSED 10.20.30.40:7233 (temporal-frontend.internal)')),
        version: 'test',
        isShuttingDown: () => false,
        adminKey: stack.adminKey,
      }),
    );
    const server: Server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    const port = (server.address() as AddressInfo).port;
    try {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`);
      assert.equal(r.status, 503);
      assert.equal(await r.text(), 'not ready');
      const admin = await fetch(`http://127.0.0.1:${port}/readyz`, { headers: { authorization: `Bearer ${stack.adminKey}` } });
      assert.match(await admin.text(), /ECONNREFUSED/);
    } finally {
      server.close();
    }
  });
});
