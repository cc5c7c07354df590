import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { MongoClient } from 'mongodb';
import { SEARCH_ATTRIBUTES } from '../temporal/search-attributes';

/**
 * The embedded servers used by `npm start` and `npm test`: the Temporal CLI dev server and FerretDB,
 * as child processes with their own readiness checks (a port that accepts is not a server that answers).
 */
export interface Managed {
  name: string;
  child: ChildProcess;
  /** Part of its command line that tells it from an unrelated process given the same pid later (run record). */
  identity: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export async function portInUse(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export function spawnLogged(name: string, bin: string, args: string[], logFile: string, detached: boolean, identity = bin): Managed {
  mkdirSync(path.dirname(logFile), { recursive: true });
  const log = createWriteStream(logFile, { flags: 'a' });
  // detached: own process group, so a terminal's Ctrl-C reaches only the launcher, which stops
  // everything in order (API and worker first, then Temporal and the store).
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], detached });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  let exited = false;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
  });
  return {
    name,
    child,
    identity,
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exitPromise;
        clearTimeout(t);
      }
      log.end();
    },
  };
}

export async function waitFor(
  name: string,
  managed: Managed,
  logFile: string,
  check: () => Promise<void>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastErr = '';
  // Set by the 'exit' listener; the cast keeps TypeScript from narrowing it to null for the loop below.
  let exitCode = null as number | null;
  managed.child.once('exit', (code) => {
    exitCode = code ?? -1;
  });
  while (Date.now() < deadline) {
    if (exitCode !== null) throw new Error(`${name} exited with code ${exitCode} while starting; see ${logFile}`);
    try {
      await check();
      return;
    } catch (err) {
      lastErr = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  await managed.stop();
  throw new Error(`${name} not ready after ${timeoutMs / 1000} s (${lastErr}); see ${logFile}`);
}

export interface TemporalDevOptions {
  bin: string;
  port: number;
  uiPort?: number;
  /** Omit for an in-memory server (tests); a path persists workflows across restarts (npm start). */
  dbFile?: string;
  namespace: string;
  codecEndpoint?: string;
  logFile: string;
  ip?: string;
  detached?: boolean;
}

export async function startTemporalDev(o: TemporalDevOptions): Promise<Managed> {
  const args = ['server', 'start-dev', '--ip', o.ip ?? '127.0.0.1', '--port', String(o.port), '--namespace', o.namespace];
  args.push('--log-format', 'json', '--log-level', 'warn');
  args.push('--dynamic-config-value', 'frontend.enableServerVersionCheck=false');
  if (o.dbFile) {
    mkdirSync(path.dirname(o.dbFile), { recursive: true });
    args.push('--db-filename', o.dbFile);
  }
  if (o.uiPort) {
    args.push('--ui-port', String(o.uiPort));
    if (o.codecEndpoint) args.push('--ui-codec-endpoint', o.codecEndpoint);
  } else {
    args.push('--headless');
  }
  for (const a of SEARCH_ATTRIBUTES) args.push('--search-attribute', `${a.name}=${a.type}`);
  const managed = spawnLogged('temporal', o.bin, args, o.logFile, o.detached ?? false);
  await waitFor(
    'Temporal dev server',
    managed,
    o.logFile,
    async () => {
      const conn = await Connection.connect({ address: `127.0.0.1:${o.port}`, connectTimeout: '1s' });
      try {
        await conn.workflowService.describeNamespace({ namespace: o.namespace });
      } finally {
        await conn.close();
      }
    },
    120_000,
  );
  return managed;
}

export interface FerretOptions {
  bin: string;
  port: number;
  dataDir: string;
  logFile: string;
  detached?: boolean;
}

export async function startFerretDb(o: FerretOptions): Promise<Managed> {
  mkdirSync(o.dataDir, { recursive: true });
  const args = [
    '--handler=sqlite',
    `--sqlite-url=file:${o.dataDir.endsWith('/') ? o.dataDir : o.dataDir + '/'}`,
    `--listen-addr=127.0.0.1:${o.port}`,
    `--state-dir=${o.dataDir}`,
    '--debug-addr=-',
    '--telemetry=disable',
    '--log-level=warn',
    '--log-format=json',
  ];
  const managed = spawnLogged('ferretdb', o.bin, args, o.logFile, o.detached ?? false);
  await waitFor(
    'FerretDB',
    managed,
    o.logFile,
    async () => {
      const c = new MongoClient(`mongodb://127.0.0.1:${o.port}/`, { serverSelectionTimeoutMS: 1000 });
      try {
        await c.db('admin').command({ ping: 1 });
      } finally {
        await c.close();
      }
    },
    60_000,
  );
  return managed;
}
