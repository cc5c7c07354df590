import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, startFerretDb, startTemporalDev, type Managed } from '../src/embedded/processes';

/**
 * Runs `fn` with a throw-away Temporal dev server and FerretDB (the same binaries `npm test` uses),
 * exported to test/support/stack.ts through CARTERO_TEST_*; stops both whatever happens and keeps
 * their logs when `fn` fails.
 */
export async function withBenchServers(name: string, fn: (tmp: string) => Promise<void>): Promise<void> {
  const root = path.resolve(__dirname, '..', '..');
  const tmp = mkdtempSync(path.join(os.tmpdir(), `cartero-${name}-`));
  const servers: Managed[] = [];
  let ok = false;
  try {
    const [temporalPort, mongoPort] = [await freePort(), await freePort()];
    servers.push(
      ...(await Promise.all([
        startTemporalDev({
          bin: path.join(root, '.tools/bin/temporal'),
          port: temporalPort,
          namespace: 'default',
          logFile: path.join(tmp, 't.log'),
        }),
        startFerretDb({
          bin: path.join(root, '.tools/bin/ferretdb'),
          port: mongoPort,
          dataDir: path.join(tmp, 'f'),
          logFile: path.join(tmp, 'f.log'),
        }),
      ])),
    );
    process.env.CARTERO_TEST_TEMPORAL_ADDRESS = `127.0.0.1:${temporalPort}`;
    process.env.CARTERO_TEST_MONGODB_URI = `mongodb://127.0.0.1:${mongoPort}/`;
    await fn(tmp);
    ok = true;
  } finally {
    for (const s of servers.reverse()) await s.stop();
    if (ok) rmSync(tmp, { recursive: true, force: true });
    else process.stderr.write(`${name}: server logs kept in ${tmp}\n`);
  }
}
