import { parentPort } from 'node:worker_threads';
import { runParseJob, type ParseJob } from './mime';
import { threadError, type ThreadReply, type ThreadRequest } from './parse-pool';

/**
 * A thread of the parse pool (src/inbound/parse-pool.ts), started by path: runs the jobs src/inbound/mime.ts defines,
 * one at a time, and answers each with its value or its error.
 */
const port = parentPort;
if (!port) throw new Error('parse-worker.js runs only as a thread of the mail parser pool');
port.on('message', (req: ThreadRequest) => {
  runParseJob(req.job as ParseJob).then(
    (value) => port.postMessage({ id: req.id, ok: true, value } satisfies ThreadReply),
    (err: unknown) => port.postMessage({ id: req.id, ok: false, error: threadError(err) } satisfies ThreadReply),
  );
});
