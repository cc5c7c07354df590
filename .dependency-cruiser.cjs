// The architecture as import rules (docs/architecture.md and the README's layout table say it in prose). Run by
// scripts/lint.sh: `npm run lint:deps` = depcruise src --config .dependency-cruiser.cjs

/** What a workflow may import at run time: it runs in Temporal's deterministic sandbox. */
const WORKFLOW_RUNTIME_ALLOWED = [
  '(^|/)node_modules/@temporalio/(workflow|common)/',
  '^src/workflows/',
  '^src/domain/',
  '^src/temporal/search-attributes\\.ts$',
  // Typed workflow definitions (names, signals, queries) shared with the starters.
  '^src/temporal/handoffs/',
];

/**
 * npm packages src/domain may use: pure computation, no I/O, no globals touched.
 * zod (validation), ipaddr.js (IP parsing), parse5 (HTML parsing); node:crypto is used for HMAC/HKDF only
 * (src/domain/tracking/token.ts), which is deterministic and does no I/O.
 */
const DOMAIN_PURE_PACKAGES = ['(^|/)node_modules/(zod|ipaddr\\.js|parse5)/', '^(node:)?crypto$'];

/** Started by path or by a tool, so nothing imports them. */
const ENTRY_POINTS = [
  '^src/server\\.ts$',
  '^src/worker\\.ts$',
  '^src/dev\\.ts$',
  '^src/cli\\.ts$',
  '^src/tools/[^/]+\\.ts$',
  '^src/inbound/parse-worker\\.ts$',
  '^src/workflows/index\\.ts$',
];

module.exports = {
  forbidden: [
    {
      name: 'workflow-runtime-imports',
      comment:
        'Workflow code is replayed in a deterministic sandbox: at run time it may import only @temporalio/workflow, ' +
        '@temporalio/common, other workflow files, src/domain, src/temporal/search-attributes.ts and ' +
        'src/temporal/handoffs. Activities, stores, other @temporalio packages: `import type` only.',
      severity: 'error',
      from: { path: '^src/workflows/' },
      to: { dependencyTypesNot: ['type-only'], pathNot: WORKFLOW_RUNTIME_ALLOWED },
    },
    {
      name: 'workflow-type-imports',
      comment:
        'Types a workflow may name beyond what it may import: activity signatures and @temporalio/* types. ' +
        'Not stores, API or config: a workflow talks to the world through activities.',
      severity: 'error',
      from: { path: '^src/workflows/' },
      to: {
        dependencyTypes: ['type-only'],
        pathNot: [...WORKFLOW_RUNTIME_ALLOWED, '^src/activities/', '(^|/)node_modules/@temporalio/'],
      },
    },
    {
      name: 'handoffs-are-bundle-safe',
      comment:
        'The owner modules in src/temporal/handoffs are imported by workflows too, so they are part of the workflow ' +
        'bundle: at run time they may import only the SDK (@temporalio/client is replaced by an empty module in the ' +
        'bundle, src/temporal/handoffs/bundle.ts), src/domain and search-attributes; no Node built-ins, no stores.',
      severity: 'error',
      from: { path: '^src/temporal/handoffs/' },
      to: {
        dependencyTypesNot: ['type-only'],
        pathNot: [
          '(^|/)node_modules/@temporalio/(workflow|common|client)/',
          '^src/temporal/handoffs/',
          '^src/domain/',
          '^src/temporal/search-attributes\\.ts$',
        ],
      },
    },
    {
      name: 'domain-is-pure',
      comment:
        'src/domain is importable by workflows and tests without a database, network or clock: it imports only ' +
        'itself and a few pure packages (listed in DOMAIN_PURE_PACKAGES).',
      severity: 'error',
      from: { path: '^src/domain/' },
      to: { pathNot: ['^src/domain/', ...DOMAIN_PURE_PACKAGES] },
    },
    {
      name: 'api-is-a-leaf',
      comment:
        'Only src/server.ts (and src/api itself) imports src/api: shared code (problem details, tracking) belongs ' +
        'in a module the API and the others both import.',
      severity: 'error',
      from: { pathNot: ['^src/api/', '^src/server\\.ts$', '^test/'] },
      to: { path: '^src/api/' },
    },
    {
      name: 'no-circular',
      comment: 'Import cycles, type-only ones included: a type cycle still ties two modules together.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-orphans',
      comment: 'A module nothing imports and that is no entry point is dead code (entry points: ENTRY_POINTS).',
      severity: 'error',
      from: { orphan: true, pathNot: [...ENTRY_POINTS, '\\.d\\.ts$'] },
      to: {},
    },
    {
      name: 'not-to-dev-dep',
      comment:
        'src/ ships without devDependencies (the Docker image installs --omit=dev): move the package to ' +
        'dependencies, or import it from test/ or bench/ only. Type-only imports (@types/*) are compiled away.',
      severity: 'error',
      from: { path: '^src/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'no-non-package-json',
      comment: 'A package imported but not listed in package.json works only by accident (hoisting).',
      severity: 'error',
      from: {},
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'] },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import that does not resolve to a file.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'no-deprecated-core',
      comment: 'A deprecated Node.js core module.',
      severity: 'error',
      from: {},
      to: { dependencyTypes: ['core'], path: '^(node:)?(punycode|domain|constants|sys|_linklist|_stream_wrap)$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports are dependencies too (the workflow rules tell them apart).
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.d.ts', '.js', '.json'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
