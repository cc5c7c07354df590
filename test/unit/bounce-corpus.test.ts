import assert from 'node:assert/strict';
import { test } from 'node:test';
import { scoreBounces } from '../../bench/bounces';
import { FIGURE_NAMES, type Figures } from '../support/bounce-score';

/**
 * The bounce corpus (test/fixtures/bounces) scored like `npm run bench:bounces`: Cartero's verdicts must be at least
 * as good as Sisimai 4.25's on every figure of issue 14. Sisimai comes from the project's setup
 * (scripts/ensure-sisimai.sh, run by npm test); without it this test fails rather than comparing against nothing.
 */
test('Cartero >= Sisimai 4.25 on all five figures of the bounce corpus (>= 150 files, >= 40 sources)', { timeout: 300_000 }, async () => {
  const s = await scoreBounces();
  assert.ok(s.files >= 150, `${s.files} files`);
  assert.ok(s.sources >= 40, `${s.sources} sources`);
  const sisimai = s.sisimai;
  assert.ok(sisimai, 'Sisimai 4.25 is not installed: run scripts/ensure-sisimai.sh (npm test does)');
  const worse = (a: Figures, b: Figures) => (Object.keys(FIGURE_NAMES) as Array<keyof Figures>).filter((k) => a[k] < b[k]);
  const behind = worse(s.cartero.figures, sisimai.figures);
  assert.deepEqual(
    behind.map((k) => `${FIGURE_NAMES[k]}: Cartero ${s.cartero.figures[k].toFixed(3)} < Sisimai ${sisimai.figures[k].toFixed(3)}`),
    [],
    `misses: ${JSON.stringify(s.cartero.misses.filter((m) => behind.includes(m.figure)).slice(0, 20))}`,
  );
  // The comparison discriminates: Cartero's TypeScript parser alone (the fallback) is behind Sisimai on this corpus.
  assert.ok(worse(s.typescriptOnly.figures, sisimai.figures).length > 0, 'the scorer cannot tell a weaker engine apart');
});
