import path from 'node:path';
import { startTemporalDev, type Managed } from './processes';
import { startTemporalPostgres } from './temporal-postgres';

/**
 * Which Temporal server the embedded setups run (`npm start`, `npm test`, the benchmarks):
 * `CARTERO_TEMPORAL=dev` (default) is the CLI dev server (SQLite, Web UI built in);
 * `CARTERO_TEMPORAL=postgres` is go.temporal.io/server on a private PostgreSQL cluster, the
 * server production runs (docker-compose.yml), without a Web UI.
 */
export type TemporalKind = 'dev' | 'postgres';

export function temporalKind(env: NodeJS.ProcessEnv = process.env): TemporalKind {
  const v = env.CARTERO_TEMPORAL ?? 'dev';
  if (v === 'dev' || v === 'postgres') return v;
  throw new Error(`CARTERO_TEMPORAL must be dev or postgres, not ${JSON.stringify(v)}`);
}

export interface EmbeddedTemporalOptions {
  toolsBin: string;
  port: number;
  namespace: string;
  /** Where the server keeps its data; omitted: the dev server keeps it in memory (tests). */
  dataDir: string;
  persist: boolean;
  logDir: string;
  uiPort?: number;
  codecEndpoint?: string;
  detached?: boolean;
}

/** Starts the chosen server; the returned processes stop in reverse order. */
export async function startEmbeddedTemporal(kind: TemporalKind, o: EmbeddedTemporalOptions): Promise<Managed[]> {
  if (kind === 'postgres') {
    return startTemporalPostgres({
      toolsBin: o.toolsBin,
      dataDir: path.join(o.dataDir, 'temporal-pg'),
      port: o.port,
      namespace: o.namespace,
      logDir: o.logDir,
      ...(o.detached !== undefined ? { detached: o.detached } : {}),
    });
  }
  return [
    await startTemporalDev({
      bin: path.join(o.toolsBin, 'temporal'),
      port: o.port,
      namespace: o.namespace,
      logFile: path.join(o.logDir, 'temporal.log'),
      ...(o.persist ? { dbFile: path.join(o.dataDir, 'temporal.db') } : {}),
      ...(o.uiPort !== undefined ? { uiPort: o.uiPort } : {}),
      ...(o.codecEndpoint !== undefined ? { codecEndpoint: o.codecEndpoint } : {}),
      ...(o.detached !== undefined ? { detached: o.detached } : {}),
    }),
  ];
}
