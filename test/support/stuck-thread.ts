import { parentPort } from 'node:worker_threads';

/**
 * A parse-pool thread that misbehaves on purpose (test/unit/parse-pool.test.ts): job `spin` never returns (only
 * terminating the thread stops it), `crash` kills the thread, `echo` answers with the job.
 */
parentPort?.on('message', (req: { id: number; job: { op: 'spin' | 'crash' | 'echo'; value?: unknown } }) => {
  if (req.job.op === 'spin') for (;;);
  if (req.job.op === 'crash') process.exit(3);
  parentPort?.postMessage({ id: req.id, ok: true, value: req.job.value });
});
