import path from 'node:path';
import { freePort, startFerretDb, type Managed } from '../../src/embedded/processes';
import { startEmbeddedTemporal, temporalKind } from '../../src/embedded/temporal';

/**
 * The throw-away servers `npm test`, `npm run fuzz` and `npm run capture-histories` run against: a
 * Temporal server (the dev server in memory, or with CARTERO_TEMPORAL=postgres the PostgreSQL-backed one
 * with its cluster in `tmp`) and FerretDB (data in `tmp`) on free ports, built in `.tools/bin`.
 */
export async function startThrowawayServers(
  root: string,
  tmp: string,
): Promise<{ servers: Managed[]; temporalAddress: string; mongoUri: string }> {
  const [temporalPort, mongoPort] = [await freePort(), await freePort()];
  const [temporal, ferret] = await Promise.all([
    startThrowawayTemporal(root, tmp, temporalPort),
    startThrowawayFerretDb(root, tmp, mongoPort),
  ]);
  const servers = [temporal, ferret];
  return { servers, temporalAddress: `127.0.0.1:${temporalPort}`, mongoUri: `mongodb://127.0.0.1:${mongoPort}/` };
}

const startedIn = new Map<string, Managed[]>();

/**
 * One Temporal server on `port` (CARTERO_TEMPORAL: the dev server, or the PostgreSQL-backed server
 * with its cluster in `tmp`). `persistent`: the dev server keeps its state in `tmp/temporal.db`
 * (SQLite), so a server started again on the same `tmp` and port carries on where the killed one
 * stopped (fault tests); the PostgreSQL-backed one always does. The returned process is the Temporal
 * server itself; stopping it stops its database too, and starting again on the same `tmp` first
 * stops what the previous start left (a database whose server was killed).
 */
export async function startThrowawayTemporal(
  root: string,
  tmp: string,
  port: number,
  options: { persistent?: boolean } = {},
): Promise<Managed> {
  for (const m of (startedIn.get(tmp) ?? []).reverse()) await m.stop();
  const started = await startEmbeddedTemporal(temporalKind(), {
    toolsBin: path.join(root, '.tools', 'bin'),
    port,
    namespace: 'default',
    dataDir: tmp,
    persist: options.persistent ?? false,
    logDir: tmp,
  });
  startedIn.set(tmp, started);
  const server = started[started.length - 1]!;
  return {
    ...server,
    async stop() {
      for (const m of [...started].reverse()) await m.stop();
      startedIn.delete(tmp);
    },
  };
}

/** One FerretDB on `port` with its data in `tmp/ferretdb`: started again on the same `tmp`, it has the same data. */
export function startThrowawayFerretDb(root: string, tmp: string, port: number): Promise<Managed> {
  return startFerretDb({
    bin: path.join(root, '.tools', 'bin', 'ferretdb'),
    port,
    dataDir: path.join(tmp, 'ferretdb'),
    logFile: path.join(tmp, 'ferretdb.log'),
  });
}
