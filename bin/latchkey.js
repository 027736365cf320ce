#!/usr/bin/env node
// The latchkey command. The TypeScript sources compile to dist/ (npm run build).
import { main } from '../dist/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { process.stderr.write(`latchkey: ${err instanceof Error ? err.message : String(err)}\n`); process.exitCode = 1; },
);
