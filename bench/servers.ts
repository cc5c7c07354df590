import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Managed } from '../src/embedded/processes';
import { startThrowawayServers } from '../test/support/throwaway-servers';

/**
 * Runs `fn` with a throw-away Temporal server (CARTERO_TEMPORAL: dev or postgres) and FerretDB (the
 * same servers `npm test` uses), exported to test/support/stack.ts through CARTERO_TEST_*; stops both
 * whatever happens and keeps their logs when `fn` fails.
 */
export async function withBenchServers(name: string, fn: (tmp: string) => Promise<void>): Promise<void> {
  const root = path.resolve(__dirname, '..', '..');
  const tmp = mkdtempSync(path.join(os.tmpdir(), `cartero-${name}-`));
  const servers: Managed[] = [];
  let ok = false;
  try {
    const started = await startThrowawayServers(root, tmp);
    servers.push(...started.servers);
    process.env.CARTERO_TEST_TEMPORAL_ADDRESS = started.temporalAddress;
    process.env.CARTERO_TEST_MONGODB_URI = started.mongoUri;
    await fn(tmp);
    ok = true;
  } finally {
    for (const s of servers.reverse()) await s.stop();
    if (ok) rmSync(tmp, { recursive: true, force: true });
    else process.stderr.write(`${name}: server logs kept in ${tmp}\n`);
  }
}
