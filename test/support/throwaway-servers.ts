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
    startEmbeddedTemporal(temporalKind(), {
      toolsBin: path.join(root, '.tools', 'bin'),
      port: temporalPort,
      namespace: 'default',
      dataDir: tmp,
      persist: false,
      logDir: tmp,
    }),
    startFerretDb({
      bin: path.join(root, '.tools', 'bin', 'ferretdb'),
      port: mongoPort,
      dataDir: path.join(tmp, 'ferretdb'),
      logFile: path.join(tmp, 'ferretdb.log'),
    }),
  ]);
  const servers = [...temporal, ferret];
  return { servers, temporalAddress: `127.0.0.1:${temporalPort}`, mongoUri: `mongodb://127.0.0.1:${mongoPort}/` };
}
