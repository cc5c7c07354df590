import { classifyMail, returnedRecipients } from '../src/domain/mail/classify';
import { carteroOnly, combineVerdicts } from '../src/domain/mail/combine';
import { mailFromRaw } from '../src/inbound/mime';
import { SisimaiBridge } from '../src/inbound/sisimai';
import { loadCorpus, score, sisimaiAlone, table, type Figures, type Miss, type ScoredVerdict } from '../test/support/bounce-score';

/**
 * bench/bounces: Cartero's bounce verdicts against the corpus test/fixtures/bounces, beside Sisimai 4.25 alone on the
 * same files (when installed) and Cartero's TypeScript parser alone (what answers when Sisimai is absent). Prints the
 * five figures of issue 14 as a table (docs/bounces.md "Corpus and scores", docs/benchmarks.md).
 *
 *   npm run bench:bounces [-- --misses]
 */
export interface BounceScores {
  files: number;
  sources: number;
  sisimaiVersion: string | null;
  cartero: { figures: Figures; misses: Miss[] };
  typescriptOnly: { figures: Figures; misses: Miss[] };
  sisimai: { figures: Figures; misses: Miss[] } | null;
}

export async function scoreBounces(): Promise<BounceScores> {
  const corpus = loadCorpus();
  const bridge = new SisimaiBridge();
  try {
    const version = await bridge.version();
    const rows: Array<{
      file: string;
      expected: (typeof corpus)[number]['expected'];
      cartero: ScoredVerdict;
      ts: ScoredVerdict;
      sisimai: ScoredVerdict;
    }> = [];
    for (const c of corpus) {
      const [mail, records] = await Promise.all([mailFromRaw(c.raw), version ? bridge.verdicts(c.raw) : Promise.resolve(null)]);
      const verdict = classifyMail(mail);
      const returned = returnedRecipients(mail);
      rows.push({
        file: c.file,
        expected: c.expected,
        cartero: combineVerdicts(verdict, records, returned),
        ts: carteroOnly(verdict, returned),
        sisimai: sisimaiAlone(records),
      });
    }
    return {
      files: corpus.length,
      sources: new Set(corpus.map((c) => c.file.split('/')[0])).size,
      sisimaiVersion: version,
      cartero: score(rows.map((r) => ({ file: r.file, expected: r.expected, got: r.cartero }))),
      typescriptOnly: score(rows.map((r) => ({ file: r.file, expected: r.expected, got: r.ts }))),
      sisimai: version ? score(rows.map((r) => ({ file: r.file, expected: r.expected, got: r.sisimai }))) : null,
    };
  } finally {
    await bridge.close();
  }
}

async function main(): Promise<void> {
  const s = await scoreBounces();
  const out = [
    `bounce corpus: ${s.files} files, ${s.sources} sources; Sisimai ${s.sisimaiVersion ?? 'not installed'}`,
    '',
    table([
      { name: 'Cartero', figures: s.cartero.figures },
      { name: `Sisimai ${s.sisimaiVersion ?? ''}`.trim(), figures: s.sisimai?.figures ?? null },
      { name: 'Cartero without Sisimai', figures: s.typescriptOnly.figures },
    ]),
  ];
  if (process.argv.includes('--misses')) {
    for (const [name, r] of [
      ['Cartero', s.cartero],
      ['Sisimai', s.sisimai],
      ['Cartero without Sisimai', s.typescriptOnly],
    ] as const) {
      if (!r) continue;
      out.push('', `misses, ${name}:`);
      for (const m of r.misses)
        out.push(`  ${m.figure.padEnd(9)} ${m.file}  expected ${JSON.stringify(m.expected)} got ${JSON.stringify(m.got)}`);
    }
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

if (require.main === module) {
  void main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
