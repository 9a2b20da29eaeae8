// Lint config: the recommended JS and TypeScript rules, plus the few project rules
// that keep the architecture honest (no floating promises on the data path, no any).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/**', 'dashboard/vendor/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // The dashboard page: plain browser JavaScript (no build step).
    files: ['dashboard/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: Object.fromEntries(
        ['window', 'document', 'EventSource', 'fetch', 'requestAnimationFrame', 'setInterval', 'console'].map((g) => [g, 'readonly']),
      ),
    },
  },
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
      eqeqeq: ['error', 'smart'],
    },
  },
  {
    // Node's http, https and tls come from src/node-http.ts (types may be imported directly): an ESM
    // import of node:http loads Node's bundled undici, and https/tls are loaded only when used.
    files: ['src/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: ['http', 'https', 'tls', 'node:http', 'node:https', 'node:tls'].map((name) => ({
            name,
            allowTypeImports: true,
            message: 'use src/node-http.ts (start-up cost: see its header)',
          })),
        },
      ],
    },
  },
);
