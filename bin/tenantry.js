#!/usr/bin/env node
// Entry point of the `tenantry` command; the code is compiled into dist/ by `npm run build`.
import { main } from '../dist/server/cli/main.js';

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
