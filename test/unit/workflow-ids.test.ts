import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isLegacyCaseWorkflowId } from '../../src/temporal/handoffs/case';
import {
  addressedHere,
  parseWorkflowId,
  tenantItemWorkflowId,
  tenantWorkflowId,
  webhookSweeperWorkflowId,
  WORKFLOW_ID_FAMILIES,
  type WorkflowIdFamily,
} from '../../src/temporal/handoffs/ids';

const ITEM_FAMILIES = ['send', 'case', 'verify', 'sentcopy'] as const;
const TENANT_FAMILIES = WORKFLOW_ID_FAMILIES.filter(
  (f): f is Exclude<WorkflowIdFamily, (typeof ITEM_FAMILIES)[number]> => !(ITEM_FAMILIES as readonly string[]).includes(f),
);

test('the pair that used to collide gets two ids: tenant acme case corp-T1, tenant acme-corp case T1', () => {
  for (const family of ITEM_FAMILIES) {
    const a = tenantItemWorkflowId(family, 'acme', 'corp-T1');
    const b = tenantItemWorkflowId(family, 'acme-corp', 'T1');
    assert.notEqual(a, b, family);
    assert.deepEqual(parseWorkflowId(a), { family, tenantId: 'acme', item: 'corp-T1' });
    assert.deepEqual(parseWorkflowId(b), { family, tenantId: 'acme-corp', item: 'T1' });
  }
});

/** Deterministic pseudo-random parts rich in the separators that used to make ids ambiguous. */
function* parts(seed: number, n: number, alphabet: string, min: number, max: number): Generator<string> {
  let x = seed;
  const next = () => (x = (x * 1103515245 + 12345) % 2 ** 31);
  for (let i = 0; i < n; i++) {
    const len = min + (next() % (max - min + 1));
    let s = '';
    for (let j = 0; j < len; j++) s += alphabet[next() % alphabet.length];
    yield s;
  }
}

test('ids are injective over every family and pair of parts, and parse back to their parts', () => {
  const tenants = [...parts(7, 300, 'ab-', 3, 8)].filter((t) => /^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$/.test(t));
  const items = [...parts(11, 60, 'ab-_T1', 1, 6)];
  assert.ok(tenants.length > 50 && items.length > 50);
  const seen = new Map<string, string>();
  const remember = (id: string, what: string) => {
    const before = seen.get(id);
    assert.ok(before === undefined || before === what, `${id} is both ${before} and ${what}`);
    seen.set(id, what);
  };
  for (const t of tenants) {
    for (const family of TENANT_FAMILIES) {
      const id = tenantWorkflowId(family, t);
      remember(id, `${family}/${t}`);
      assert.deepEqual(parseWorkflowId(id), { family, tenantId: t, item: null });
    }
    for (const family of ITEM_FAMILIES) {
      for (const item of items) {
        const id = tenantItemWorkflowId(family, t, item);
        remember(id, `${family}/${t}/${item}`);
        assert.deepEqual(parseWorkflowId(id), { family, tenantId: t, item });
      }
    }
  }
  // The sweeper's id (per task queue) is no tenant workflow's.
  assert.equal(parseWorkflowId(webhookSweeperWorkflowId('cartero')), null);
});

test('an id is never built from something that is not a tenant id (the separator could then appear in it)', () => {
  assert.throws(() => tenantWorkflowId('oauth', 'acme:corp'), /not a tenant id/);
  assert.throws(() => tenantItemWorkflowId('case', 'Acme', 'T1'), /not a tenant id/);
  assert.throws(() => tenantItemWorkflowId('case', 'acme', ''), /not an item id/);
  assert.throws(() => tenantItemWorkflowId('send', 'acme', 'a b'), /not an item id/);
});

test('legacy case ids (joined by -) are recognised for the migration, new ones are not', () => {
  assert.equal(isLegacyCaseWorkflowId('case-acme-corp-T1'), true);
  assert.equal(isLegacyCaseWorkflowId(tenantItemWorkflowId('case', 'acme', 'corp-T1')), false);
  assert.equal(isLegacyCaseWorkflowId('send-acme-m_1'), false);
});

test('a hand-off is handled only by the workflow it was addressed for', () => {
  assert.equal(addressedHere({ tenantId: 'acme', item: 'corp-T1' }, 'acme-corp', 'T1'), false);
  assert.equal(addressedHere({ tenantId: 'acme-corp', item: 'T1' }, 'acme-corp', 'T1'), true);
  assert.equal(addressedHere({ tenantId: 'acme' }, 'acme-corp'), false);
  // Signals recorded before addressing existed still replay as they did.
  assert.equal(addressedHere(undefined, 'acme'), true);
});
