import path from 'node:path';
import { freePort, startFerretDb, startTemporalDev, type Managed } from '../../src/embedded/processes';

/**
 * The throw-away servers `npm test`, `npm run fuzz` and `npm run capture-histories` run against: a
 * Temporal dev server (in memory) and FerretDB (data in `tmp`) on free ports, built in `.tools/bin`.
 */
export async function startThrowawayServers(
  root: string,
  tmp: string,
): Promise<{ servers: Managed[]; temporalAddress: string; mongoUri: string }> {
  const [temporalPort, mongoPort] = [await freePort(), await freePort()];
  const servers = await Promise.all([startThrowawayTemporal(root, tmp, temporalPort), startThrowawayFerretDb(root, tmp, mongoPort)]);
  return { servers, temporalAddress: `127.0.0.1:${temporalPort}`, mongoUri: `mongodb://127.0.0.1:${mongoPort}/` };
}

/**
 * One Temporal dev server on `port`. `persistent`: its state in `tmp/temporal.db` (SQLite), so a
 * server started again on the same `tmp` and port carries on where the killed one stopped (fault tests).
 */
export function startThrowawayTemporal(root: string, tmp: string, port: number, options: { persistent?: boolean } = {}): Promise<Managed> {
  return startTemporalDev({
    bin: path.join(root, '.tools', 'bin', 'temporal'),
    port,
    namespace: 'default',
    logFile: path.join(tmp, 'temporal.log'),
    ...(options.persistent ? { dbFile: path.join(tmp, 'temporal.db') } : {}),
  });
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
