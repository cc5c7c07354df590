// ESLint flat config: type-aware TypeScript rules over src, test and bench, and regex safety.
// Runs in CI through scripts/lint.sh (part of `npm test`).
import js from '@eslint/js';
import regexp from 'eslint-plugin-regexp';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['dist/**', '.build-test/**', 'node_modules/**', '.tools/**', '.data/**', 'coverage/**'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  regexp.configs['flat/recommended'],
  {
    languageOptions: {
      parserOptions: {
        // tsconfig.test.json includes src, test and bench, so every linted .ts file has type information.
        project: './tsconfig.test.json',
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // A promise nobody awaits loses its rejection: a crashed activity or a write that never happened.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // node:test's test()/describe() return promises the runner itself tracks; awaiting them would serialise nothing.
          allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] }],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      // Adding a member to a union (an event type, a status) must fail the build where it is not handled.
      // A `default:` still counts as handling the rest: the few switches with one are deliberate catch-alls over
      // unions we do not own (ipaddr.js ranges, errno codes).
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      // Every regex over mail text runs on attacker input: backtracking must stay linear.
      'regexp/no-super-linear-backtracking': 'error',
      'regexp/no-super-linear-move': 'error',
      // Autofixable (capturing → non-capturing) so `eslint --fix` can clear it; the rule follows a regex into the
      // functions it is passed to and leaves groups alone when it cannot tell whether they are read.
      'regexp/no-unused-capturing-group': ['error', { fixable: true }],
      // Off: `async` without `await` is how a function meets a Promise-returning contract (PayloadCodec,
      // activities, test doubles). Dropping `async` to please the rule would turn a synchronous throw into a
      // throw at the call site instead of a rejected promise, which changes behaviour.
      '@typescript-eslint/require-await': 'off',
      // Off: every control-character class in src/ is deliberate (rejecting CR/LF and NUL in headers, addresses
      // and tenant settings is a header-injection defence), which is exactly what this rule reports.
      'no-control-regex': 'off',
      // `_`-prefixed names are kept on purpose: Express's four-argument error handler, fields dropped by destructuring.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Tests and benchmarks read JSON bodies (`await res.json()`, `JSON.parse`, the stack's `api()` helper) as `any`
    // and assert on them: the assertion is the check, so typing every response adds nothing. src/ keeps these rules.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    // Run by mongosh, which provides these globals.
    files: ['deploy/mongo/*.js'],
    languageOptions: { globals: { rs: 'readonly', db: 'readonly', print: 'readonly', quit: 'readonly', sleep: 'readonly' } },
  },
  {
    // Plain JS config files are not in the TypeScript project.
    files: ['**/*.mjs', '**/*.cjs', '**/*.js'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: { module: 'writable', require: 'readonly', __dirname: 'readonly', process: 'readonly' } },
  },
);
