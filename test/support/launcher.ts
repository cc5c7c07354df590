import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { freePort, portInUse } from '../../src/embedded/processes';
import { readRunRecord, type RunRecord } from '../../src/embedded/run-record';
import { eventually } from './smtp-peer';

/**
 * `npm start`'s launcher (dist/dev.js, as scripts/start.sh runs it) on a data directory and ports of
 * the test's own, so a developer's `npm start` and other suites are never touched.
 */
const root = path.resolve(__dirname, '..', '..', '..');

export interface Launched {
  child: ChildProcess;
  output(): string;
}

/** Free ports for the API, Temporal (whose UI takes the port + 1000) and FerretDB. */
export async function launcherPorts(): Promise<{ PORT: string; CARTERO_DEV_TEMPORAL_PORT: string; CARTERO_DEV_MONGO_PORT: string }> {
  const [api, mongo] = [await freePort(), await freePort()];
  let temporal = await freePort();
  while (temporal + 1000 > 65535 || (await portInUse(temporal + 1000))) temporal = await freePort();
  return { PORT: String(api), CARTERO_DEV_TEMPORAL_PORT: String(temporal), CARTERO_DEV_MONGO_PORT: String(mongo) };
}

export function launch(dataDir: string, env: Record<string, string>): Launched {
  let out = '';
  const clean = { ...process.env };
  for (const k of ['TEMPORAL_ADDRESS', 'MONGODB_URI', 'CARTERO_ADMIN_KEY', 'CARTERO_ENCRYPTION_KEYS', 'PORT']) delete clean[k];
  const child = spawn(process.execPath, [path.join(root, 'dist', 'dev.js')], {
    env: { ...clean, LOG_LEVEL: 'warn', ...env, CARTERO_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-200_000)));
  child.stderr?.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-200_000)));
  return { child, output: () => out };
}

/** Waits for the launcher's banner; on failure, says what the launcher printed. */
export async function launcherStarted(l: Launched, what: string): Promise<void> {
  try {
    await eventually(() => l.output().includes('Cartero is running.'), 240_000, what);
  } catch (err) {
    throw new Error(`${(err as Error).message}; the launcher printed:\n${l.output().slice(-4000)}`);
  }
}

export function runRecord(dataDir: string): RunRecord | null {
  return readRunRecord(path.join(dataDir, 'run', 'npm-start.json'));
}

/** SIGKILL to every recorded process group (each server, the API and the worker lead their own). */
export function killRecorded(record: RunRecord | null): void {
  for (const p of record?.processes ?? []) {
    try {
      process.kill(-p.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}
