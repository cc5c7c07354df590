import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { WORKFLOW_BUNDLE_IGNORED_MODULES } from '../temporal/handoffs/bundle';

const BUNDLE_ALLOWED = /^(?:@temporalio\/|long$|ms$|nexus-rpc$)/;

/** Builds the workflow bundle once at build time: `node dist/tools/bundle-workflows.js [out]`. */
async function main(): Promise<void> {
  const out = process.argv[2] ?? path.resolve(__dirname, '..', 'workflow-bundle.js');
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows'),
    ignoreModules: WORKFLOW_BUNDLE_IGNORED_MODULES,
    // Workflow failures carry their message and stack encrypted too (src/temporal/failure-converter.ts).
    failureConverterPath: require.resolve('../temporal/failure-converter'),
    logger: { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} },
  });
  // Every module the bundle imports is evaluated again for each workflow run (the SDK isolates
  // runs that way), so a library in here costs CPU per message: zod's schema construction once took
  // ~45% of the workflow thread. Only the SDK and its own dependencies may be bundled.
  const foreign = [...new Set([...code.matchAll(/\.\/node_modules\/((?:@[^/"]+\/)?[^/"]+)/g)].map((m) => m[1]!))].filter(
    (p) => !BUNDLE_ALLOWED.test(p),
  );
  if (foreign.length > 0)
    throw new Error(
      `the workflow bundle must not import ${foreign.join(', ')}: keep workflow imports to src/domain modules without dependencies`,
    );
  writeFileSync(out, code);
  process.stdout.write(`workflow bundle: ${out} (${Math.round(code.length / 1024)} KiB)\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bundle-workflows: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
