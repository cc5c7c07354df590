import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';

/** Builds the workflow bundle once at build time: `node dist/tools/bundle-workflows.js [out]`. */
async function main(): Promise<void> {
  const out = process.argv[2] ?? path.resolve(__dirname, '..', 'workflow-bundle.js');
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows'),
    logger: { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} },
  });
  writeFileSync(out, code);
  process.stdout.write(`workflow bundle: ${out} (${Math.round(code.length / 1024)} KiB)\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bundle-workflows: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
