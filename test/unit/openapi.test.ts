import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { buildOpenApi } from '../../src/api/openapi';

test('GET /openapi.json is a valid OpenAPI 3.1 document', async () => {
  const result = await new Validator().validate(buildOpenApi('test'));
  assert.deepEqual(result.errors ?? [], []);
  assert.equal(result.valid, true);
});

test('path parameters carry the patterns the routes validate', () => {
  const doc = buildOpenApi('test') as { paths: Record<string, { parameters?: Array<{ name: string; schema: { pattern?: string } }> }> };
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const name of path.match(/\{\w+\}/g) ?? []) {
      const p = item.parameters?.find((x) => `{${x.name}}` === name);
      assert.ok(p, `${path}: ${name} is not described`);
      if (name !== '{index}' && name !== '{provider}') assert.ok(p.schema.pattern ?? 'enum' in p.schema, `${path}: ${name} has no pattern`);
    }
  }
});
