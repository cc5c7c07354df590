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
  const servers = await Promise.all([
    startTemporalDev({
      bin: path.join(root, '.tools', 'bin', 'temporal'),
      port: temporalPort,
      namespace: 'default',
      logFile: path.join(tmp, 'temporal.log'),
    }),
    startFerretDb({
      bin: path.join(root, '.tools', 'bin', 'ferretdb'),
      port: mongoPort,
      dataDir: path.join(tmp, 'ferretdb'),
      logFile: path.join(tmp, 'ferretdb.log'),
    }),
  ]);
  return { servers, temporalAddress: `127.0.0.1:${temporalPort}`, mongoUri: `mongodb://127.0.0.1:${mongoPort}/` };
}
