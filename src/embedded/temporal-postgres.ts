import { execFile } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { SEARCH_ATTRIBUTES } from '../temporal/search-attributes';
import { freePort, portInUse, spawnLogged, waitFor, type Managed } from './processes';

const run = promisify(execFile);

/**
 * The production-style Temporal server (`CARTERO_TEMPORAL=postgres`): `go.temporal.io/server`
 * v1.29.1 (the same server the CLI dev server embeds, here with its four services, four history
 * shards and SQL persistence) on a private PostgreSQL cluster from Debian, created on first start
 * in `dataDir`, with its schemas applied by `temporal-sql-tool` and Cartero's search attributes
 * registered. Everything listens on loopback only; PostgreSQL trusts local connections because the
 * cluster is this process tree's own (never a shared server). docs/decisions.md, "Production-style
 * Temporal".
 */
export interface TemporalPostgresOptions {
  /** Where `temporal-server`, `temporal-sql-tool` and `temporal-schema/` were provisioned (.tools/bin). */
  toolsBin: string;
  /** Persistent: the PostgreSQL cluster and the server's config live here. */
  dataDir: string;
  /** Frontend gRPC port (what clients call TEMPORAL_ADDRESS). */
  port: number;
  namespace: string;
  logDir: string;
  detached?: boolean;
}

const DB_USER = 'temporal';
const SCHEMA_VERSION = 'server-1.29.1';

/** The newest PostgreSQL that Debian installed (`/usr/lib/postgresql/<major>/bin`). */
export function postgresBin(): string {
  const base = '/usr/lib/postgresql';
  const majors = existsSync(base)
    ? readdirSync(base)
        .filter((d) => /^\d+$/.test(d) && existsSync(path.join(base, d, 'bin', 'postgres')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (majors.length === 0)
    throw new Error('PostgreSQL is not installed: run `bash scripts/provision.sh postgres` (apt-get install postgresql)');
  return path.join(base, majors[0]!, 'bin');
}

/** PostgreSQL refuses to run as root: as root, its commands run as the `postgres` system user. */
function asPostgres(bin: string, args: string[]): [string, string[]] {
  if (process.getuid?.() !== 0) return [bin, args];
  return ['setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', bin, ...args]];
}

/**
 * As root, the `postgres` user must reach the cluster's directory: every ancestor gets the
 * search bit for others if it lacks it (a mkdtemp directory is 0700), never read or write.
 */
function letPostgresReach(dir: string): void {
  if (process.getuid?.() !== 0) return;
  for (let d = path.dirname(path.resolve(dir)); d !== path.dirname(d); d = path.dirname(d)) {
    const mode = statSync(d).mode;
    if ((mode & 0o001) === 0) chmodSync(d, (mode & 0o7777) | 0o001);
  }
}

function ownByPostgres(dir: string): void {
  if (process.getuid?.() !== 0) return;
  const uid = Number(statSync('/var/lib/postgresql', { throwIfNoEntry: false })?.uid ?? NaN);
  if (Number.isFinite(uid)) chownSync(dir, uid, statSync('/var/lib/postgresql').gid);
}

/** Membership ports are stored in a SMALLINT column: they must be below 32768, where the OS rarely hands out ports. */
async function lowPort(taken: Set<number>): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const p = 20000 + Math.floor(Math.random() * 12000);
    if (!taken.has(p) && !(await portInUse(p))) {
      taken.add(p);
      return p;
    }
  }
  throw new Error('no free port below 32768 for Temporal membership');
}

export async function startTemporalPostgres(o: TemporalPostgresOptions): Promise<Managed[]> {
  const pgBin = postgresBin();
  const serverBin = path.join(o.toolsBin, 'temporal-server');
  const sqlTool = path.join(o.toolsBin, 'temporal-sql-tool');
  const schemaDir = path.join(o.toolsBin, 'temporal-schema', 'postgresql', 'v12');
  for (const f of [serverBin, sqlTool, schemaDir]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: run \`bash scripts/provision.sh postgres\``);
  }
  mkdirSync(o.dataDir, { recursive: true });
  mkdirSync(o.logDir, { recursive: true });
  const pgData = path.join(o.dataDir, 'pg');
  const socketDir = path.join(o.dataDir, 'pg-socket');
  mkdirSync(socketDir, { recursive: true });
  letPostgresReach(o.dataDir);
  ownByPostgres(o.dataDir);
  ownByPostgres(socketDir);
  if (!existsSync(path.join(pgData, 'PG_VERSION'))) {
    const [cmd, args] = asPostgres(path.join(pgBin, 'initdb'), ['-D', pgData, '-U', DB_USER, '--auth=trust', '-E', 'UTF8', '--no-sync']);
    await run(cmd, args);
  }

  // A port picked per start: the cluster keeps no port of its own (nothing else connects to it).
  const pgPort = await freePort();
  const [pgCmd, pgArgs] = asPostgres(path.join(pgBin, 'postgres'), [
    '-D',
    pgData,
    '-p',
    String(pgPort),
    '-k',
    socketDir,
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'max_connections=100',
  ]);
  const pgLog = path.join(o.logDir, 'postgres.log');
  const pg = spawnLogged('postgres', pgCmd, pgArgs, pgLog, o.detached ?? false, pgData);
  await waitFor(
    'PostgreSQL',
    pg,
    pgLog,
    async () => void (await run(path.join(pgBin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(pgPort)])),
    60_000,
  );

  try {
    await applySchemas(sqlTool, schemaDir, pgPort, o.dataDir);
    const temporal = await startServer(o, serverBin, pgPort);
    return [pg, temporal];
  } catch (err) {
    await pg.stop();
    throw err;
  }
}

async function applySchemas(sqlTool: string, schemaDir: string, pgPort: number, dataDir: string): Promise<void> {
  const stamp = path.join(dataDir, `.schema-${SCHEMA_VERSION}`);
  const sql = (db: string, ...args: string[]) =>
    run(sqlTool, ['--plugin', 'postgres12', '--ep', '127.0.0.1', '-p', String(pgPort), '-u', DB_USER, '--db', db, ...args]);
  for (const [db, dir] of [
    ['temporal', 'temporal'],
    ['temporal_visibility', 'visibility'],
  ] as const) {
    if (!existsSync(stamp)) {
      await sql(db, 'create-database').catch(() => undefined); // exists after an interrupted first start
      await sql(db, 'setup-schema', '-v', '0.0').catch(() => undefined); // idem
    }
    // Idempotent: applies only the versions the database does not have yet (a newer server's upgrades too).
    await sql(db, 'update-schema', '-d', path.join(schemaDir, dir, 'versioned'));
  }
  writeFileSync(stamp, new Date().toISOString());
}

async function startServer(o: TemporalPostgresOptions, serverBin: string, pgPort: number): Promise<Managed> {
  const root = path.join(o.dataDir, 'server');
  const configDir = path.join(root, 'config');
  mkdirSync(configDir, { recursive: true });
  const taken = new Set<number>([o.port]);
  const port = async () => {
    const p = await freePort();
    taken.add(p);
    return p;
  };
  const rpc = async (grpcPort: number, extra = '') =>
    `{ grpcPort: ${grpcPort}, membershipPort: ${await lowPort(taken)}, bindOnLocalHost: true${extra} }`;
  const store = (db: string, conns: number) => `      sql:
        pluginName: postgres12
        databaseName: ${db}
        connectAddr: "127.0.0.1:${pgPort}"
        connectProtocol: tcp
        user: ${DB_USER}
        maxConns: ${conns}
        maxIdleConns: ${conns}
        maxConnLifetime: 1h`;
  const dynamicConfig = path.join(configDir, 'dynamic.yaml');
  writeFileSync(
    dynamicConfig,
    [
      // No call home from a private server.
      'frontend.enableServerVersionCheck:',
      '  - value: false',
      // The production default, stated because the CLI dev server forces it on (every search-attribute read goes to the database).
      'system.forceSearchAttributesCacheRefreshOnRead:',
      '  - value: false',
      '',
    ].join('\n'),
  );
  writeFileSync(
    path.join(configDir, 'development.yaml'),
    `log:
  stdout: true
  level: warn
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: 4
  datastores:
    default:
${store('temporal', 20)}
    visibility:
${store('temporal_visibility', 5)}
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "127.0.0.1"
services:
  frontend:
    rpc: ${await rpc(o.port, `, httpPort: ${await port()}`)}
  matching:
    rpc: ${await rpc(await port())}
  history:
    rpc: ${await rpc(await port())}
  worker:
    rpc: ${await rpc(await port())}
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "127.0.0.1:${o.port}"
dcRedirectionPolicy:
  policy: noop
dynamicConfigClient:
  filepath: ${JSON.stringify(dynamicConfig)}
  pollInterval: 10s
`,
  );
  const logFile = path.join(o.logDir, 'temporal-server.log');
  const managed = spawnLogged(
    'temporal-server',
    serverBin,
    ['--root', root, '--config', 'config', '--env', 'development', '--allow-no-auth', 'start'],
    logFile,
    o.detached ?? false,
  );
  await waitFor(
    'Temporal server (PostgreSQL)',
    managed,
    logFile,
    async () => {
      const conn = await Connection.connect({ address: `127.0.0.1:${o.port}`, connectTimeout: '1s' });
      try {
        await ensureNamespace(conn, o.namespace);
      } finally {
        await conn.close();
      }
    },
    180_000,
  );
  return managed;
}

/** Registers the namespace and Cartero's search attributes once; ready when both are visible. */
async function ensureNamespace(conn: Connection, namespace: string): Promise<void> {
  try {
    await conn.workflowService.describeNamespace({ namespace });
  } catch {
    await conn.workflowService
      .registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('3 days') })
      .catch((err: unknown) => {
        if (!/already exists/i.test((err as Error).message)) throw err;
      });
    await conn.workflowService.describeNamespace({ namespace });
  }
  const listed = await conn.operatorService.listSearchAttributes({ namespace });
  const missing = SEARCH_ATTRIBUTES.filter((a) => !(a.name in (listed.customAttributes ?? {})));
  if (missing.length > 0) {
    await conn.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((a) => [a.name, temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD])),
    });
    throw new Error(`registered search attributes ${missing.map((a) => a.name).join(', ')}; waiting until they are listed`);
  }
}
