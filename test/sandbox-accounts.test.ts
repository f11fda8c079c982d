// Tenant users written into the account files directly, on copies in a
// scratch folder: ids never collide (with existing ids, subordinate ranges, or
// other processes adding at the same time), removal leaves the other lines,
// and the shadow-utils lock files are honoured and cleaned up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { addUserLocked, removeUserLocked, TENANT_ID_MIN, withAccountLocks } from '../server/sandbox/passwd-files.js';

function scratch(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'accounts-'));
  fs.writeFileSync(path.join(dir, 'passwd'), `root:x:0:0:root:/root:/bin/bash\nold:x:${TENANT_ID_MIN}:100::/home/old:/bin/sh\n`);
  fs.writeFileSync(path.join(dir, 'group'), `root:x:0:\nsome:x:${TENANT_ID_MIN + 1}:\n`);
  fs.writeFileSync(path.join(dir, 'shadow'), 'root:*:19000:0:99999:7:::\n', { mode: 0o640 });
  fs.writeFileSync(path.join(dir, 'gshadow'), 'root:*::\n', { mode: 0o640 });
  fs.writeFileSync(path.join(dir, 'subuid'), `alice:${TENANT_ID_MIN + 2}:3\n`);
  return dir;
}

test('a tenant user gets a free id, its own group, shadow entries; removal takes exactly those lines', () => {
  const dir = scratch();
  try {
    const files = { dir };
    const a = withAccountLocks(files, () => addUserLocked(files, 'tn-a'));
    assert.deepEqual(a, { uid: TENANT_ID_MIN + 5, gid: TENANT_ID_MIN + 5 }, 'skips used uids, gids and subordinate ranges');
    const again = withAccountLocks(files, () => addUserLocked(files, 'tn-a'));
    assert.deepEqual(again, a, 'an existing name keeps its ids');
    const b = withAccountLocks(files, () => addUserLocked(files, 'tn-b'));
    assert.equal(b.uid, TENANT_ID_MIN + 6);
    const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
    assert.match(read('passwd'), new RegExp(`^tn-a:x:${a.uid}:${a.gid}::/nonexistent:/usr/sbin/nologin$`, 'm'));
    assert.match(read('group'), new RegExp(`^tn-a:x:${a.gid}:$`, 'm'));
    assert.match(read('shadow'), /^tn-a:!:\d+::::::$/m);
    assert.match(read('gshadow'), /^tn-a:!::$/m);
    assert.equal(fs.statSync(path.join(dir, 'shadow')).mode & 0o777, 0o640, 'modes are kept');
    withAccountLocks(files, () => removeUserLocked(files, 'tn-a'));
    for (const f of ['passwd', 'group', 'shadow', 'gshadow']) assert.doesNotMatch(read(f), /^tn-a:/m, f);
    assert.match(read('passwd'), /^tn-b:/m);
    assert.match(read('passwd'), /^old:/m);
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('.lock') || f.includes('tenantry')), [], 'no lock or temporary file left');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a held lock is waited for, a stale one (its process gone) is taken over', () => {
  const dir = scratch();
  try {
    const files = { dir };
    fs.writeFileSync(path.join(dir, 'passwd.lock'), '999999999');
    const a = withAccountLocks(files, () => addUserLocked(files, 'tn-a'));
    assert.ok(a.uid >= TENANT_ID_MIN);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('processes adding users at the same time never share an id', async () => {
  const dir = scratch();
  const mod = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'server', 'sandbox', 'passwd-files.js');
  const script = `import(${JSON.stringify(mod)}).then((m) => { const f = { dir: ${JSON.stringify(dir)} };
    for (let i = 0; i < 25; i++) m.withAccountLocks(f, () => m.addUserLocked(f, 'tn-p' + process.argv[1] + '-' + i)); });`;
  try {
    await Promise.all(
      [0, 1, 2, 3].map(
        (n) =>
          new Promise<void>((resolve, reject) => {
            const child = spawn(process.execPath, ['-e', script, String(n)], { stdio: 'inherit' });
            child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
          }),
      ),
    );
    const lines = fs.readFileSync(path.join(dir, 'passwd'), 'utf8').split('\n').filter((l) => l.startsWith('tn-p'));
    assert.equal(lines.length, 100);
    assert.equal(new Set(lines.map((l) => l.split(':')[2])).size, 100, 'every uid distinct');
    const groups = fs.readFileSync(path.join(dir, 'group'), 'utf8').split('\n').filter((l) => l.startsWith('tn-p'));
    assert.equal(new Set(groups.map((l) => l.split(':')[2])).size, 100, 'every gid distinct');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
