import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Managed } from '../../src/embedded/processes';
import { startThrowawayServers } from './throwaway-servers';
import { temporalKind } from '../../src/embedded/temporal';

/**
 * `npm test`'s runner: starts a throw-away Temporal dev server (in memory) and FerretDB (temp dir)
 * on free ports, runs every compiled *.test.js with node's test runner, and stops both servers
 * whatever happens (test failure, Ctrl-C, crash). Arguments filter test files by substring.
 */
const root = path.resolve(__dirname, '..', '..', '..');
const compiledTests = path.resolve(__dirname, '..');

function findTests(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const p = path.join(dir, entry);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (entry.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

async function main(): Promise<number> {
  const filters = process.argv.slice(2);
  const files = findTests(compiledTests).filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
  if (files.length === 0) {
    process.stderr.write('run-tests: no test files matched\n');
    return 1;
  }
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'cartero-test-'));
  const servers: Managed[] = [];
  const cleanup = async () => {
    for (const s of servers.splice(0).reverse()) await s.stop().catch(() => undefined);
    rmSync(tmp, { recursive: true, force: true });
  };
  const onSignal = (sig: NodeJS.Signals) => {
    process.stderr.write(`run-tests: ${sig}, stopping servers\n`);
    void cleanup().then(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    process.stdout.write(`run-tests: starting a Temporal server (${temporalKind()}) and FerretDB on free ports\n`);
    const started = Date.now();
    const { servers: fresh, temporalAddress, mongoUri } = await startThrowawayServers(root, tmp);
    servers.push(...fresh);
    process.stdout.write(`run-tests: servers ready in ${((Date.now() - started) / 1000).toFixed(1)} s; ${files.length} test files\n`);

    const code = await new Promise<number>((resolve) => {
      const child = spawn(process.execPath, ['--test', '--test-concurrency=1', ...files], {
        stdio: 'inherit',
        env: {
          ...process.env,
          // A young generation large enough for the growth tests' biggest inputs (test/support/work-growth.ts): with
          // V8's default, a 512 KiB text run outgrows it and the one-off jump in GC work (4-5x at one doubling, then
          // 2x again) can pass the linear limit on a busy machine; quadratic work still grows 4x per doubling.
          NODE_OPTIONS: [process.env.NODE_OPTIONS, '--max-semi-space-size=64'].filter(Boolean).join(' '),
          CARTERO_TEST_TEMPORAL_ADDRESS: temporalAddress,
          CARTERO_TEST_MONGODB_URI: mongoUri,
        },
      });
      child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0)));
    });
    return code;
  } finally {
    await cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`run-tests: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
