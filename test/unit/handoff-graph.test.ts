import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { handoffGraph, withGraph } from '../../src/tools/handoff-graph';

const root = path.resolve(__dirname, '..', '..', '..');

test('the picture of who signals whom in docs/architecture.md is the one the code gives (npm run docs:graph)', () => {
  const page = readFileSync(path.join(root, 'docs', 'architecture.md'), 'utf8');
  assert.equal(withGraph(page, handoffGraph(root)), page);
});

test('the graph names the hand-offs the code makes', () => {
  const g = handoffGraph(root);
  assert.match(g, /outbound_accept -->\|"[^"]*startSendMessage[^"]*"\| wf_sendMessage/);
  assert.match(g, /workflows_send_message -->\|"[^"]*throttleSignal[^"]*"\| wf_rateLimiter/);
  assert.match(g, /workflows_rate_limiter -->\|"[^"]*permitGrantedSignal[^"]*"\| wf_sendMessage/);
  assert.match(g, /cases_record -->\|"[^"]*signalCaseEvent[^"]*"\| wf_caseWorkflow/);
});
