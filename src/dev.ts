import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { portInUse, startFerretDb, type Managed } from './embedded/processes';
import { startEmbeddedTemporal, temporalKind } from './embedded/temporal';
import { isSameProcess, readRunRecord, removeRunRecord, stopLeftovers, writeRunRecord, type RunRecord } from './embedded/run-record';

/**
 * `npm start`: the whole service on one machine with embedded defaults. Starts the Temporal dev
 * server (Web UI on :8233) and FerretDB unless TEMPORAL_ADDRESS / MONGODB_URI point elsewhere, then
 * one worker and the API. Ctrl-C stops the API and worker first, then the servers. State lives in
 * .data/ (git-ignored), so workflows, tenants and the dev keys survive a restart.
 */
const root = path.resolve(__dirname, '..');
const dataDir = process.env.CARTERO_DATA_DIR ? path.resolve(process.env.CARTERO_DATA_DIR) : path.join(root, '.data');
const runFile = path.join(dataDir, 'run', 'npm-start.json');
const toolsBin = path.join(root, '.tools', 'bin');

interface DevSecrets {
  adminKey: string;
  encryptionKeys: string;
}

/** Dev-only keys, invented once and kept in .data so stored credentials stay readable across restarts. */
function devSecrets(): DevSecrets {
  const file = path.join(dataDir, 'dev-secrets.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as DevSecrets;
  const secrets: DevSecrets = {
    adminKey: `cadm_${randomBytes(24).toString('base64url')}`,
    encryptionKeys: `dev1:${randomBytes(32).toString('base64')}`,
  };
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}

function prefixed(name: string, child: ChildProcess): void {
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    readline.createInterface({ input: stream }).on('line', (line) => process.stdout.write(`[${name}] ${line}\n`));
  }
}

async function main(): Promise<void> {
  const env = { ...process.env };
  const secrets = devSecrets();
  const port = Number(env.PORT ?? 3000);
  // The operators' listener (/metrics, detailed /readyz), on loopback as everywhere by default.
  const metricsPort = Number(env.METRICS_PORT ?? 9464);
  const metricsHost = !env.METRICS_HOST || ['0.0.0.0', '::'].includes(env.METRICS_HOST) ? '127.0.0.1' : env.METRICS_HOST;
  const adminKeyInvented = !env.CARTERO_ADMIN_KEY;
  env.CARTERO_ADMIN_KEY ??= secrets.adminKey;
  env.CARTERO_ENCRYPTION_KEYS ??= secrets.encryptionKeys;
  env.NODE_ENV ??= 'development';
  env.HOST ??= '127.0.0.1';
  env.PORT = String(port);
  // The dev default allows a mail server on this machine (Postfix, a test sink); production allows none.
  env.SMTP_ALLOW_PRIVATE_NETWORKS ??= 'loopback';
  // Likewise a webhook receiver on this machine (the product under development).
  env.WEBHOOK_ALLOW_PRIVATE_NETWORKS ??= 'loopback';
  // The Web UI cannot send the admin key; the dev API listens on loopback only.
  env.CODEC_ENDPOINT_AUTH ??= 'none';

  const temporalPort = Number(env.CARTERO_DEV_TEMPORAL_PORT ?? 7233);

  // A launcher that died without stopping its servers left them running: stop them first.
  const previous = readRunRecord(runFile);
  if (previous) {
    if (previous.launcher !== process.pid && isSameProcess(previous.launcher, 'dev.js')) {
      process.stderr.write(`cartero: another npm start is running (pid ${previous.launcher}); stop it first (Ctrl-C in its terminal)\n`);
      process.exit(1);
    }
    const stopped = await stopLeftovers(previous);
    if (stopped.length > 0) {
      process.stdout.write(
        `cartero: the previous npm start (pid ${previous.launcher}) ended without stopping ${stopped.join(', ')}; stopped them\n`,
      );
    }
    removeRunRecord(runFile);
  }
  const record: RunRecord = { launcher: process.pid, startedAt: new Date().toISOString(), processes: [] };
  const remember = (name: string, child: ChildProcess, command: string) => {
    if (child.pid) record.processes.push({ name, pid: child.pid, command });
    writeRunRecord(runFile, record);
  };
  writeRunRecord(runFile, record);

  const servers: Managed[] = [];
  const apps: Array<{ name: string; child: ChildProcess }> = [];
  let stopping = false;

  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('\ncartero: stopping API and worker...\n');
    await Promise.all(
      apps.map(
        ({ child }) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
            setTimeout(() => child.kill('SIGKILL'), 20_000).unref();
          }),
      ),
    );
    process.stdout.write('cartero: stopping embedded servers...\n');
    for (const s of servers.reverse()) await s.stop();
    removeRunRecord(runFile);
    process.stdout.write('cartero: stopped.\n');
    process.exit(code);
  };
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));
  process.on('SIGHUP', () => void stopAll(0));

  try {
    if (!env.TEMPORAL_ADDRESS) {
      if (await portInUse(temporalPort))
        throw new Error(
          `port ${temporalPort} is taken: stop the other Temporal server, or set CARTERO_DEV_TEMPORAL_PORT or TEMPORAL_ADDRESS`,
        );
      const kind = temporalKind(env);
      process.stdout.write(
        kind === 'postgres'
          ? 'cartero: starting Temporal server on PostgreSQL (cluster in .data/temporal-pg/; no Web UI)...\n'
          : 'cartero: starting Temporal dev server (SQLite in .data/temporal.db)...\n',
      );
      const temporal = await startEmbeddedTemporal(kind, {
        toolsBin,
        port: temporalPort,
        uiPort: temporalPort + 1000,
        dataDir,
        persist: true,
        namespace: env.TEMPORAL_NAMESPACE ?? 'default',
        codecEndpoint: `http://localhost:${port}/codec`,
        logDir: path.join(dataDir, 'logs'),
        detached: true,
      });
      for (const m of temporal) {
        servers.push(m);
        remember(m.name, m.child, m.identity);
      }
      env.TEMPORAL_ADDRESS = `127.0.0.1:${temporalPort}`;
    }
    if (!env.MONGODB_URI) {
      const mongoPort = Number(env.CARTERO_DEV_MONGO_PORT ?? 27117);
      if (await portInUse(mongoPort)) throw new Error(`port ${mongoPort} is taken: set CARTERO_DEV_MONGO_PORT or MONGODB_URI`);
      process.stdout.write(`cartero: starting FerretDB on :${mongoPort} (SQLite in .data/ferretdb/)...\n`);
      const ferret = await startFerretDb({
        bin: path.join(toolsBin, 'ferretdb'),
        port: mongoPort,
        dataDir: path.join(dataDir, 'ferretdb'),
        logFile: path.join(dataDir, 'logs', 'ferretdb.log'),
        detached: true,
      });
      servers.push(ferret);
      remember('ferretdb', ferret.child, ferret.identity);
      env.MONGODB_URI = `mongodb://127.0.0.1:${mongoPort}/`;
    }

    for (const name of ['worker', 'server'] as const) {
      const child = spawn(process.execPath, [path.join(__dirname, `${name}.js`)], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      const label = name === 'server' ? 'api' : name;
      prefixed(label, child);
      child.once('exit', (code, signal) => {
        if (!stopping) {
          process.stdout.write(`cartero: ${label} exited (${signal ?? code}); stopping everything\n`);
          void stopAll(1);
        }
      });
      apps.push({ name: label, child });
      remember(label, child, path.join(__dirname, `${name}.js`));
    }

    // Wait for the API to answer before printing the URLs people will click.
    const deadline = Date.now() + 90_000;
    for (;;) {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/healthz`);
        if (r.ok) break;
      } catch {
        /* not up yet */
      }
      if (Date.now() > deadline) throw new Error('the API did not answer /healthz within 90 s');
      await new Promise((r) => setTimeout(r, 300));
    }

    const lines = [
      '',
      'Cartero is running.',
      `  API            http://localhost:${port}   (OpenAPI: /openapi.json, health: /healthz, /readyz)`,
      metricsPort > 0
        ? `  Metrics        http://${metricsHost}:${metricsPort}/metrics   (and detailed readiness: /readyz; METRICS_PORT, METRICS_HOST)`
        : '  Metrics        off (METRICS_PORT=0)',
      servers.some((s) => s.name === 'temporal')
        ? `  Temporal UI    http://localhost:${temporalPort + 1000}`
        : `  Temporal       ${env.TEMPORAL_ADDRESS}`,
      `  MongoDB        ${env.MONGODB_URI?.replace(/\/\/[^@/]*@/, '//***@')}`,
      adminKeyInvented
        ? `  Admin key      ${env.CARTERO_ADMIN_KEY}   (dev only, kept in .data/dev-secrets.json; set CARTERO_ADMIN_KEY to choose one)`
        : '  Admin key      from CARTERO_ADMIN_KEY',
      '  Stop           Ctrl-C',
      '',
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } catch (err) {
    process.stderr.write(`cartero: ${(err as Error).message}\n`);
    await stopAll(1);
  }
}

void main();
