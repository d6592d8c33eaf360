import { defineConfig } from 'vitest/config';

// Unit tests live next to the code (*.test.ts); tests that start processes, binaries or
// containers live in test/. Both run in `npm test`.
export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'proxies/nginx-epp/target/**'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: process.env.CI ? ['default', 'junit'] : ['default'],
    outputFile: { junit: 'reports/vitest-junit.xml' },
  },
});
