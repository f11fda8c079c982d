// docs/errors.md lists every error code of server/errors.ts, with its status.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ERRORS } from '../server/errors.js';
import { REPO_ROOT } from './helpers/harness.js';

test('every error code is documented with its status, and nothing else is', () => {
  const doc = fs.readFileSync(path.join(REPO_ROOT, 'docs/errors.md'), 'utf8');
  const rows = new Map<string, number>();
  for (const m of doc.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)) rows.set(m[1]!, Number(m[2]));
  for (const [code, { status }] of Object.entries(ERRORS)) {
    assert.equal(rows.get(code), status, `docs/errors.md: ${code} should be listed with ${status}`);
  }
  for (const code of rows.keys()) assert.ok(code in ERRORS, `docs/errors.md lists ${code}, which server/errors.ts does not have`);
});
