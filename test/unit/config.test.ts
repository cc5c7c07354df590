import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/env';

const valid = () => ({
  CARTERO_ADMIN_KEY: 'x'.repeat(32),
  CARTERO_ENCRYPTION_KEYS: `k2:${randomBytes(32).toString('base64')},k1:${randomBytes(32).toString('base64')}`,
  MONGODB_URI: 'mongodb://localhost:27017/',
  TEMPORAL_ADDRESS: 'localhost:7233',
});

function problems(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  assert.fail('expected a ConfigError');
}

test('a complete environment loads, first key listed is the active one', () => {
  const c = loadConfig(valid());
  assert.equal(c.http.port, 3000);
  assert.equal(c.encryption.activeKeyId, 'k2');
  assert.equal(c.encryption.keys.size, 2);
  assert.deepEqual(c.smtp.allowPrivateNetworks, []);
  assert.equal(c.temporal.namespace, 'default');
});

test('missing variables are named', () => {
  const p = problems({ MONGODB_URI: 'mongodb://x/' });
  assert.ok(
    p.some((l) => l === 'CARTERO_ADMIN_KEY is required but not set'),
    p.join('\n'),
  );
  assert.ok(p.some((l) => l === 'TEMPORAL_ADDRESS is required but not set'));
  assert.ok(p.some((l) => l === 'CARTERO_ENCRYPTION_KEYS is required but not set'));
});

test('bad values are named with the reason', () => {
  assert.deepEqual(
    problems({ ...valid(), PORT: '70000' }).map((l) => l.split(':')[0]),
    ['PORT'],
  );
  assert.match(problems({ ...valid(), MONGODB_URI: 'postgres://x' })[0]!, /^MONGODB_URI: must be a mongodb/);
  assert.match(problems({ ...valid(), TEMPORAL_ADDRESS: 'localhost' })[0]!, /^TEMPORAL_ADDRESS: must be host:port/);
  assert.match(
    problems({ ...valid(), SMTP_ALLOW_PRIVATE_NETWORKS: 'loopback,lan' })[0]!,
    /SMTP_ALLOW_PRIVATE_NETWORKS: unknown network class "lan"/,
  );
  assert.match(problems({ ...valid(), CARTERO_ENCRYPTION_KEYS: 'k1:c2hvcnQ=' })[0]!, /CARTERO_ENCRYPTION_KEYS: key "k1" must be 32 bytes/);
  assert.match(problems({ ...valid(), CARTERO_ENCRYPTION_ACTIVE_KEY_ID: 'k9' })[0]!, /CARTERO_ENCRYPTION_ACTIVE_KEY_ID: "k9" is not one/);
  assert.match(problems({ ...valid(), CARTERO_ADMIN_KEY: 'short' })[0]!, /CARTERO_ADMIN_KEY: must be at least 24/);
});

test('the error message never echoes a secret value', () => {
  const secret = 'k1:' + 'A'.repeat(10);
  try {
    loadConfig({ ...valid(), CARTERO_ENCRYPTION_KEYS: secret });
    assert.fail('expected failure');
  } catch (err) {
    assert.ok(!(err as Error).message.includes('AAAAAAAAAA'));
  }
});

test('tracking settings: base URL falls back to PUBLIC_BASE_URL, bad scanner CIDRs are named, spooling can be turned off', () => {
  const c = loadConfig({ ...valid(), PUBLIC_BASE_URL: 'https://mail.acme.example/' });
  assert.equal(c.tracking.baseUrl, 'https://mail.acme.example');
  assert.ok(c.tracking.spoolDir);
  const t = loadConfig({
    ...valid(),
    TRACKING_BASE_URL: 'https://t.acme.example',
    TRACKING_SPOOL_DIR: 'none',
    TRACKING_SCANNER_CIDRS: '203.0.113.0/24, 2001:db8::/32',
  });
  assert.equal(t.tracking.baseUrl, 'https://t.acme.example');
  assert.equal(t.tracking.spoolDir, null);
  assert.deepEqual(t.tracking.scannerCidrs, ['203.0.113.0/24', '2001:db8::/32']);
  const p = problems({ ...valid(), TRACKING_SCANNER_CIDRS: '10.0.0.0/8,not-a-range', TRACKING_BASE_URL: 'ftp://x.example' });
  assert.ok(
    p.some((x) => x.startsWith('TRACKING_SCANNER_CIDRS') && x.includes('not-a-range')),
    p.join('\n'),
  );
  assert.ok(
    p.some((x) => x.startsWith('TRACKING_BASE_URL')),
    p.join('\n'),
  );
});

test('inbound limits: defaults, overrides, and a bad value named', () => {
  const c = loadConfig(valid());
  assert.deepEqual(c.inbound, {
    bodyLimitBytes: 64 * 1024 * 1024,
    maxConcurrentBodies: 8,
    maxAttachmentBytes: 25 * 1024 * 1024,
    maxMimeParts: 500,
    subjectWindowMs: 30 * 24 * 60 * 60_000,
    mailgunMaxAgeMs: 15 * 60_000,
    parse: { threads: 2, queueMax: 100, timeoutMs: 30_000 },
  });
  assert.equal(loadConfig({ ...valid(), INBOUND_ATTACHMENT_MAX_BYTES: '1000' }).inbound.maxAttachmentBytes, 1000);
  assert.equal(loadConfig({ ...valid(), INBOUND_MAX_CONCURRENT: '3' }).inbound.maxConcurrentBodies, 3);
  assert.deepEqual(
    problems({ ...valid(), INBOUND_MAX_CONCURRENT: '0' }).map((l) => l.split(':')[0]),
    ['INBOUND_MAX_CONCURRENT'],
  );
  assert.deepEqual(loadConfig({ ...valid(), INBOUND_PARSE_THREADS: '4', INBOUND_PARSE_TIMEOUT_MS: '5000' }).inbound.parse, {
    threads: 4,
    queueMax: 100,
    timeoutMs: 5000,
  });
  assert.deepEqual(
    problems({ ...valid(), INBOUND_MAX_MIME_PARTS: '1' }).map((l) => l.split(':')[0]),
    ['INBOUND_MAX_MIME_PARTS'],
  );
  assert.deepEqual(
    problems({ ...valid(), INBOUND_PARSE_THREADS: '0' }).map((l) => l.split(':')[0]),
    ['INBOUND_PARSE_THREADS'],
  );
});

test('sends get a task queue of their own, derived from TEMPORAL_TASK_QUEUE unless named; worker slots are tunable', () => {
  const c = loadConfig({ ...valid(), TEMPORAL_TASK_QUEUE: 'mail' });
  assert.equal(c.temporal.taskQueue, 'mail');
  assert.equal(c.temporal.sendTaskQueue, 'mail-send');
  assert.deepEqual(c.worker, {
    control: { workflowTaskSlots: 40, activitySlots: 200 },
    send: { workflowTaskSlots: 40, activitySlots: 200 },
    tenantConcurrencyMax: 10,
    localAttemptsMax: 20,
    gateWaitersMax: 50,
    gateWaitMs: 20_000,
  });
  const tuned = loadConfig({
    ...valid(),
    TEMPORAL_SEND_TASK_QUEUE: 'outbound',
    WORKER_SEND_WORKFLOW_TASK_SLOTS: '100',
    SEND_TENANT_CONCURRENCY_MAX: '3',
    WORKER_SEND_ACTIVITY_SLOTS: '40',
  });
  assert.equal(tuned.worker.gateWaitersMax, 10, 'a quarter of the send activity slots wait at most');
  assert.equal(tuned.temporal.sendTaskQueue, 'outbound');
  assert.equal(tuned.worker.send.workflowTaskSlots, 100);
  assert.equal(tuned.worker.localAttemptsMax, 50);
  assert.equal(tuned.worker.tenantConcurrencyMax, 3);
  assert.equal(
    loadConfig({ ...valid(), WORKER_SEND_WORKFLOW_TASK_SLOTS: '20' }).worker.localAttemptsMax,
    0,
    'no local attempts below 40 slots',
  );
  assert.ok(problems({ ...valid(), TEMPORAL_SEND_TASK_QUEUE: 'cartero' }).some((p) => p.startsWith('TEMPORAL_SEND_TASK_QUEUE')));
});

test('local SMTP attempts must leave send workflow-task slots to other tasks', () => {
  const p = problems({ ...valid(), WORKER_SEND_WORKFLOW_TASK_SLOTS: '10', SEND_LOCAL_ATTEMPTS_MAX: '8' });
  assert.ok(
    p.some((l) => l.startsWith('SEND_LOCAL_ATTEMPTS_MAX')),
    p.join('\n'),
  );
});
