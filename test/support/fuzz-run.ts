import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Managed } from '../../src/embedded/processes';
import { startThrowawayServers } from './throwaway-servers';
import { api, startStack, type Stack } from './stack';

/**
 * `npm run fuzz`: the whole service on throw-away servers (Temporal dev server, FerretDB, the API
 * and a worker, as `npm test` runs them), a tenant to act as, then Schemathesis generating requests
 * from GET /openapi.json for every operation, once with the tenant's key and once with the admin
 * key. The check is `not_a_server_error`: no request, however malformed, may get a 5xx.
 * Arguments after `--` go to `st run` (e.g. `--max-examples 50`).
 */
const root = path.resolve(__dirname, '..', '..', '..');
const st = path.join(root, '.tools', 'venv-fuzz', 'bin', 'st');

function run(args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(st, args, { stdio: 'inherit', env: { ...process.env, SCHEMATHESIS_HOOKS: '' } });
    child.on('exit', (code, sig) => resolve(code ?? (sig ? 1 : 0)));
  });
}

async function main(): Promise<number> {
  const extra = process.argv.slice(2);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'cartero-fuzz-'));
  const servers: Managed[] = [];
  let stack: Stack | undefined;
  try {
    const fresh = await startThrowawayServers(root, tmp);
    servers.push(...fresh.servers);
    process.env.CARTERO_TEST_TEMPORAL_ADDRESS = fresh.temporalAddress;
    process.env.CARTERO_TEST_MONGODB_URI = fresh.mongoUri;
    stack = await startStack({ LOG_LEVEL: 'error' });
    const created = await api(stack, 'POST', '/v1/tenants', {
      key: stack.adminKey,
      body: {
        id: 'fuzz-tenant',
        name: 'Fuzz',
        domains: ['acme.example'],
        smtp: { host: '127.0.0.1', port: 9, security: 'starttls' },
        auth: { type: 'password', user: 'u', password: 'p' },
      },
    });
    if (created.status !== 201) throw new Error(`creating the fuzz tenant: ${created.status} ${JSON.stringify(created.body)}`);
    const schemaUrl = `${stack.baseUrl}/openapi.json`;
    const common = [
      'run',
      schemaUrl,
      '--checks',
      'not_a_server_error',
      '--phases',
      'examples,coverage,fuzzing',
      '--workers',
      '2',
      ...extra,
    ];
    let failed = 0;
    for (const [who, key] of [
      ['tenant key', created.body.apiKey as string],
      ['admin key', stack.adminKey],
    ] as const) {
      process.stdout.write(`\nfuzz: every operation with the ${who}\n`);
      if ((await run([...common, '--header', `Authorization: Bearer ${key}`])) !== 0) failed++;
    }
    process.stdout.write(failed === 0 ? '\nfuzz: no 5xx\n' : `\nfuzz: ${failed} run(s) found failures\n`);
    return failed === 0 ? 0 : 1;
  } finally {
    await stack?.stop().catch(() => undefined);
    for (const s of servers.reverse()) await s.stop().catch(() => undefined);
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`fuzz: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
