import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { freePort, portInUse } from '../../src/embedded/processes';
import { isAlive, readRunRecord } from '../../src/embedded/run-record';
import { eventually } from '../support/smtp-peer';

/**
 * `npm start` (dist/dev.js, as scripts/start.sh runs it) killed with SIGKILL leaves its servers
 * running in their own process groups; the next `npm start` on the same data finds them through
 * .data/run/npm-start.json, says so, stops them and starts cleanly. Ports and data dir are the
 * test's own, so a developer's running `npm start` is never touched.
 */
const root = path.resolve(__dirname, '..', '..', '..');
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'cartero-launcher-'));
const launched: ChildProcess[] = [];

after(() => {
  for (const c of launched) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  const record = readRunRecord(path.join(dataDir, 'run', 'npm-start.json'));
  for (const p of record?.processes ?? []) {
    try {
      process.kill(-p.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  rmSync(dataDir, { recursive: true, force: true });
});

function launch(env: Record<string, string>): { child: ChildProcess; output: () => string } {
  let out = '';
  const clean = { ...process.env };
  for (const k of ['TEMPORAL_ADDRESS', 'MONGODB_URI', 'CARTERO_ADMIN_KEY', 'CARTERO_ENCRYPTION_KEYS', 'PORT']) delete clean[k];
  const child = spawn(process.execPath, [path.join(root, 'dist', 'dev.js')], {
    env: { ...clean, ...env, LOG_LEVEL: 'warn', CARTERO_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
  launched.push(child);
  return { child, output: () => out };
}

/** Waits for the launcher's banner; on failure, says what the launcher printed. */
async function started(l: { output: () => string }, what: string): Promise<void> {
  try {
    await eventually(() => l.output().includes('Cartero is running.'), 240_000, what);
  } catch (err) {
    throw new Error(`${(err as Error).message}; the launcher printed:\n${l.output().slice(-4000)}`);
  }
}

test(
  'npm start after its own launcher was killed: the leftovers are found, named and stopped; a clean stop leaves nothing',
  { timeout: 600_000 },
  async () => {
    assert.ok(existsSync(path.join(root, 'dist', 'dev.js')), 'npm test builds dist/ first');
    const [api, mongo] = [await freePort(), await freePort()];
    // The UI listens on the Temporal port + 1000: that one must be free too.
    let temporal = await freePort();
    while (temporal + 1000 > 65535 || (await portInUse(temporal + 1000))) temporal = await freePort();
    // The UI listens on the Temporal port + 1000; keep clear of ports the OS may hand out.
    const env = {
      PORT: String(api),
      CARTERO_DEV_TEMPORAL_PORT: String(temporal),
      CARTERO_DEV_MONGO_PORT: String(mongo),
      METRICS_PORT: '0',
    };

    const first = launch(env);
    await started(first, 'first start');
    const record = readRunRecord(path.join(dataDir, 'run', 'npm-start.json'));
    assert.ok(record);
    assert.deepEqual(record.processes.map((p) => p.name).sort(), ['api', 'ferretdb', 'temporal', 'worker']);

    first.child.kill('SIGKILL'); // a power cut of the launcher alone
    await eventually(() => first.child.exitCode !== null || first.child.signalCode !== null, 10_000, 'the launcher gone');
    assert.equal(await portInUse(api), true, 'the API is left running without its launcher');
    assert.ok(
      record.processes.every((p) => isAlive(p.pid)),
      'every server is left running',
    );

    const second = launch(env);
    await started(second, 'second start');
    assert.match(second.output(), new RegExp(`the previous npm start \\(pid ${record.launcher}\\) ended without stopping .*stopped them`));
    for (const p of record.processes) assert.equal(isAlive(p.pid), false, `${p.name} (pid ${p.pid}) of the first start is still running`);
    const health = await fetch(`http://127.0.0.1:${api}/healthz`);
    assert.equal(health.status, 200);

    const again = readRunRecord(path.join(dataDir, 'run', 'npm-start.json'))!;
    second.child.kill('SIGINT');
    await eventually(() => second.child.exitCode !== null, 60_000, 'a clean stop');
    assert.match(second.output(), /cartero: stopped\./);
    assert.equal(readRunRecord(path.join(dataDir, 'run', 'npm-start.json')), null, 'the record is removed by a clean stop');
    for (const p of again.processes) assert.equal(isAlive(p.pid), false, `${p.name} still running after a clean stop`);
    assert.equal(await portInUse(api), false);
  },
);
