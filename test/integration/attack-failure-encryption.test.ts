import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ActivityFailure, ApplicationFailure, Client, WorkflowFailedError } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { NativeConnection, Worker } from '@temporalio/worker';
import { dataConverter } from '../../src/temporal/connection';
import { failingWorkflow } from '../support/failing-workflow';
import { api, startStack, type Stack } from '../support/stack';

/**
 * Issue 12, item 8: failure messages and stack traces in Temporal history. An activity error can
 * quote a tenant's SMTP reply, an address, a host; with the SDK's default failure converter they
 * sit in history in clear. A workflow on the real Temporal server fails with a distinctive
 * message, through a worker configured as Cartero's (src/temporal/connection.ts dataConverter);
 * its history read by a client WITHOUT the codec must not show it; with the codec, or through the
 * codec endpoint with the admin key (what the Web UI does), it does.
 */
let stack: Stack;
let connection: NativeConnection;

before(async () => {
  stack = await startStack({}, { worker: false });
  connection = await NativeConnection.connect({ address: stack.config.temporal.address });
});
after(async () => {
  await connection?.close();
  await stack?.stop();
});

// Not the word "unknown": the SDK's stack cutter (failure-converter.js CUTOFF_STACK_PATTERNS) matches
// it anywhere and would drop the whole stack trace, leaving nothing to look for.
const SECRET = `smtp said 550 5.1.1 <secret-${randomBytes(6).toString('hex')}@customer.example> mailbox unavailable`;
/** A frame every stack trace of the activity's error holds: this file's name. */
const FRAME = 'attack-failure-encryption';

describe('attack: failure messages and stack traces in Temporal history', () => {
  test('a failed activity and workflow: history holds neither message nor stack in clear; the codec (and /codec/decode with the admin key) shows both', async () => {
    const taskQueue = `fail-${randomBytes(4).toString('hex')}`;
    const workflowId = `failing-${randomBytes(6).toString('hex')}`;
    const worker = await Worker.create({
      connection,
      namespace: stack.config.temporal.namespace,
      taskQueue,
      workflowsPath: require.resolve('../support/failing-workflow'),
      activities: {
        explode: (secret: string) => Promise.reject(new Error(secret)),
      },
      dataConverter: dataConverter(stack.keyring),
    });
    const err = await worker.runUntil(async () => {
      const handle = await stack.temporal.workflow.start(failingWorkflow, { taskQueue, workflowId, args: [SECRET] });
      return handle.result().then(
        () => null,
        (e: unknown) => e,
      );
    });

    // Without it: the raw history, every byte of it.
    const raw = new Client({ connection: stack.temporal.connection, namespace: stack.config.temporal.namespace });
    const history = await raw.workflow.getHandle(workflowId).fetchHistory();
    const bytes = Buffer.from(temporal.api.history.v1.History.encode(history).finish());
    assert.equal(bytes.includes(SECRET), false, 'the failure message is not in history in clear');
    assert.equal(bytes.includes(FRAME), false, 'the stack trace is not in history in clear');
    const failed = history.events!.find((e) => e.activityTaskFailedEventAttributes)!.activityTaskFailedEventAttributes!.failure!;
    const inner = failed.cause ?? failed;
    assert.equal(inner.message, 'Encoded failure');
    const encoded = inner.encodedAttributes!;

    // With the codec (Cartero's client): message and stack as thrown.
    assert.ok(err instanceof WorkflowFailedError);
    assert.ok(err.cause instanceof ActivityFailure);
    assert.ok(err.cause.cause instanceof ApplicationFailure);
    assert.equal(err.cause.cause.message, SECRET);
    assert.match(err.cause.cause.stack ?? '', new RegExp(FRAME));

    // The Web UI's path: the encoded attributes posted to the codec endpoint with the admin key.
    const wire = {
      payloads: [
        {
          metadata: Object.fromEntries(Object.entries(encoded.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
          data: Buffer.from(encoded.data!).toString('base64'),
        },
      ],
    };
    const refused = await api(stack, 'POST', '/codec/decode', { body: wire });
    assert.equal(refused.status, 401);
    const decoded = await api(stack, 'POST', '/codec/decode', { key: stack.adminKey, body: wire });
    assert.equal(decoded.status, 200, JSON.stringify(decoded.body));
    const attrs = JSON.parse(Buffer.from(decoded.body.payloads[0].data as string, 'base64').toString('utf8')) as {
      message: string;
      stack_trace: string;
    };
    assert.equal(attrs.message, SECRET);
    assert.match(attrs.stack_trace, new RegExp(FRAME));
  });
});
