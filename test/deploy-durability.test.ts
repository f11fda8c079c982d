// A deploy answers 201 only once it is on disk, in order: every file and
// folder of the release fsynced, its name in releases/, the manifest, the
// rename of `live` and an fsync of the folder holding it, then the database
// row (WAL fsynced: synchronous=FULL). Proven on a real server process run
// under strace, from the order of the system calls it made, for an archive
// upload and for a manifest deploy built from the content store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { CLI, httpRequest, tempDir } from './helpers/harness.js';
import { createTenant, tarGz, uploadArchive, type RawEntry } from './helpers/deploy-archives.js';
import { openDatabase } from '../server/db/database.js';

const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

const TRACED = 'fsync,fdatasync,rename,renameat,renameat2';

/** Why strace cannot be used here, or undefined when it can. */
function straceProblem(): string | undefined {
  if (process.platform !== 'linux') return 'strace is Linux only';
  const probe = spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', 'true'], { encoding: 'utf8' });
  if (probe.error) return 'strace is not installed (apt-get install strace)';
  if (probe.status !== 0) return `strace cannot trace here (ptrace refused?): ${probe.stderr.trim().split('\n')[0]}`;
  return undefined;
}

interface Call {
  readonly name: string;
  /** Decoded by strace -y: the fd's path for fsync, the two paths for a rename. */
  readonly paths: readonly string[];
  /** Line numbers: when the call was entered and when it returned. */
  readonly start: number;
  readonly end: number;
  readonly ok: boolean;
}

/**
 * Parses `strace -f -y` output. A call another thread interrupts is split into
 * `name(args <unfinished ...>` and `<... name resumed>) = ret` lines; the
 * pieces are joined per thread id.
 */
function parseTrace(text: string): Call[] {
  const calls: Call[] = [];
  const open = new Map<string, { name: string; args: string; start: number }>();
  const finish = (name: string, args: string, start: number, end: number, ret: string) => {
    const paths: string[] = [];
    if (name === 'fsync' || name === 'fdatasync') {
      const m = /^\d+<(.*)>$/.exec(args.trim());
      if (m) paths.push(m[1]!);
    } else {
      for (const m of args.matchAll(/"((?:[^"\\]|\\.)*)"/g)) paths.push(m[1]!);
    }
    calls.push({ name, paths, start, end, ok: /^\s*=\s*0\b/.test(ret) });
  };
  text.split('\n').forEach((line, i) => {
    const m = /^(\d+)\s+(.*)$/.exec(line);
    if (!m) return;
    const [, tid, rest] = m as unknown as [string, string, string];
    const unfinished = /^(\w+)\((.*) <unfinished \.\.\.>$/.exec(rest);
    if (unfinished) {
      open.set(tid, { name: unfinished[1]!, args: unfinished[2]!, start: i });
      return;
    }
    const resumed = /^<\.\.\. (\w+) resumed>(.*)\)(\s*=.*)$/.exec(rest);
    if (resumed) {
      const o = open.get(tid);
      open.delete(tid);
      if (o) finish(o.name, o.args + resumed[2]!, o.start, i, resumed[3]!);
      return;
    }
    const whole = /^(\w+)\((.*)\)(\s*=.*)$/.exec(rest);
    if (whole) finish(whole[1]!, whole[2]!, i, i, whole[3]!);
  });
  return calls;
}

function filesAndFolders(root: string, skip: (rel: string) => boolean): { files: string[]; folders: string[] } {
  const files: string[] = [];
  const folders: string[] = [''];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (skip(r)) continue;
      if (e.isDirectory()) {
        folders.push(r);
        walk(r);
      } else if (e.isFile()) files.push(r);
    }
  };
  walk('');
  return { files, folders };
}

test('the platform database runs in WAL mode with synchronous=FULL (every commit fsynced)', () => {
  const dir = tempDir();
  try {
    const db = openDatabase(path.join(dir, 'platform.db'));
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.pragma('synchronous', { simple: true }), 2, 'synchronous=FULL');
    db.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a deploy fsyncs every file and folder of the release, then the manifest, then renames live and fsyncs its folder, then the database', async (t) => {
  const problem = straceProblem();
  if (problem) {
    console.log(`# SKIPPED: ${problem}`);
    t.skip(problem);
    return;
  }
  const dataDir = tempDir();
  const traceFile = path.join(tempDir('tenantry-trace-'), 'trace.txt');
  const child = spawn('strace', ['-f', '-y', '-qq', '-e', `trace=${TRACED}`, '-e', 'signal=none', '-o', traceFile, process.execPath, CLI, 'serve', '--port', '0'], {
    env: { ...process.env, TENANTRY_DATA_DIR: dataDir, TENANTRY_ISOLATION: 'off' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server under strace did not start within 60 s:\n${out}`)), 60_000);
      child.stdout.on('data', () => {
        const m = /bound to [^:]+:(\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      child.once('exit', (code) => reject(new Error(`strace exited with ${code}:\n${out}`)));
    });
    const url = `http://127.0.0.1:${port}`;
    const admin = fs.readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
    await createTenant(url, admin, 'durable');

    const entries: RawEntry[] = [
      { name: 'public/index.html', body: '<h1>durable</h1>\n'.repeat(100) },
      { name: 'public/big.bin', body: Buffer.alloc(300 * 1024, 7) }, // over the small-file size: the streamed path
      { name: 'public/link.html', type: 'symlink', linkname: 'index.html' },
      { name: 'api/hello.js', body: 'module.exports = (req, res) => res.json({ ok: true });\n' },
    ];
    for (let i = 0; i < 60; i++) entries.push({ name: `public/deep/d${i % 4}/sub${i % 3}/f${i}.css`, body: `.c${i} { color: red; }\n`.repeat(80) });
    const answer = await uploadArchive(url, admin, 'durable', tarGz(entries));
    assert.equal(answer.status, 201, answer.body);
    const deployId = (JSON.parse(answer.body) as { id: string }).id;

    // The same files by manifest with one changed: a release built from the content store.
    const manifest2: Record<string, string> = {};
    const bodies = new Map<string, Buffer>();
    const changed = Buffer.from('<h1>durable, changed</h1>\n'.repeat(100));
    for (const e of entries) {
      if ((e.type ?? 'file') !== 'file') continue;
      const body = e.name === 'public/index.html' ? changed : Buffer.from(e.body!);
      manifest2[e.name] = sha256(body);
      bodies.set(sha256(body), body);
    }
    const auth = { Authorization: `Bearer ${admin}` };
    const created = await httpRequest(url, { host: 'localhost', method: 'POST', path: '/api/v1/tenants/durable/deploys', headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ files: manifest2 }) });
    assert.equal(created.status, 202, created.body);
    const pending = JSON.parse(created.body) as { id: string; required: string[] };
    assert.deepEqual(pending.required, [sha256(changed)], 'only the changed file is asked for');
    const put = await httpRequest(url, { host: 'localhost', method: 'PUT', path: `/api/v1/tenants/durable/deploys/${pending.id}/files/${sha256(changed)}`, headers: { ...auth, 'Content-Type': 'application/octet-stream' }, body: changed });
    assert.equal(put.status, 200, put.body);
    const finalized = await httpRequest(url, { host: 'localhost', method: 'POST', path: `/api/v1/tenants/durable/deploys/${pending.id}/finalize`, headers: auth });
    assert.equal(finalized.status, 201, finalized.body);

    // Stop the traced server (strace's child), so the trace is complete.
    const children = fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    for (const pid of children) process.kill(Number(pid), 'SIGTERM');
    await exited;

    const calls = parseTrace(fs.readFileSync(traceFile, 'utf8'));
    const tenantDir = path.join(dataDir, 'tenants/durable');
    const releaseDir = path.join(tenantDir, 'releases', deployId);
    const stagingTree = path.join(tenantDir, 'staging', deployId, 'tree');
    const intoReleases = calls.find((c) => c.name.startsWith('rename') && c.ok && c.paths.at(-1) === releaseDir);
    assert.ok(intoReleases, 'the rename from staging into releases/ is in the trace');
    // The tenant's starter site went live earlier: the switch wanted is the one after this release's rename.
    const liveRename = calls.find((c) => c.name.startsWith('rename') && c.ok && c.start > intoReleases.end && c.paths.at(-1) === path.join(tenantDir, 'live'));
    assert.ok(liveRename, 'the rename of live is in the trace');

    const fsyncs = calls.filter((c) => (c.name === 'fsync' || c.name === 'fdatasync') && c.ok);
    /** The first fsync of one of `names` that returned before `before` and started after `after`. */
    const fsyncOf = (names: string[], after = -1, before = Number.POSITIVE_INFINITY) =>
      fsyncs.find((c) => names.includes(c.paths[0] ?? '') && c.start > after && c.end < before);
    const both = (rel: string) => (rel ? [path.join(stagingTree, rel), path.join(releaseDir, rel)] : [stagingTree, releaseDir]);

    // 1. Every file and folder of the release (as unpacked: not the compressed copies made after going live).
    const { files, folders } = filesAndFolders(releaseDir, (rel) => rel.startsWith('.tenantry'));
    assert.ok(files.length >= 63 && folders.length >= 15, `walked ${files.length} files, ${folders.length} folders`);
    const unsynced = [...files, ...folders].filter((rel) => !fsyncOf(both(rel), -1, liveRename.start));
    assert.deepEqual(unsynced, [], 'every file and folder of the release fsynced before the live switch');
    // Folders bottom-up: each folder's fsync starts after its subfolders' returned.
    for (const rel of folders.filter((f) => f.includes('/'))) {
      const child = fsyncOf(both(rel), -1, liveRename.start)!;
      const parent = fsyncOf(both(path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel)), child.end, liveRename.start);
      assert.ok(parent, `the folder holding ${rel} is fsynced after it`);
    }

    // 2. The release's name in releases/: the rename from staging, then releases/ fsynced.
    assert.ok(fsyncOf([path.join(tenantDir, 'releases')], intoReleases.end, liveRename.start), 'releases/ fsynced after the rename into it, before the live switch');

    // 3. The manifest: its temporary file fsynced, renamed, .tenantry/ fsynced; all before the live switch.
    const manifest = path.join(releaseDir, '.tenantry/index.json');
    const manifestRename = calls.find((c) => c.name.startsWith('rename') && c.ok && c.paths.at(-1) === manifest && c.end < liveRename.start);
    assert.ok(manifestRename, 'the manifest is renamed into place before the live switch');
    assert.ok(fsyncOf([manifestRename.paths[0]!], -1, manifestRename.start), 'the manifest is fsynced before its rename');
    assert.ok(fsyncOf([path.join(releaseDir, '.tenantry')], manifestRename.end, liveRename.start), '.tenantry/ fsynced after the rename');

    // 4. The live switch, then the folder holding `live`, then the database row.
    const liveSynced = fsyncOf([tenantDir], liveRename.end);
    assert.ok(liveSynced, 'the tenant folder (holding live) is fsynced after the rename of live');
    assert.ok(fsyncOf([path.join(dataDir, 'platform.db-wal')], liveSynced.end), 'the database log is fsynced after the live switch (the row)');

    // The manifest deploy, in the same order: the uploaded content fsynced before any name points at it
    // (the unchanged files are the archive's, fsynced above), the release's folders deepest first, its
    // name in releases/, the manifest, the live switch and its folder, then the row.
    const release2 = path.join(tenantDir, 'releases', pending.id);
    const staging2 = path.join(tenantDir, 'staging', pending.id, 'tree');
    const both2 = (rel: string) => (rel ? [path.join(staging2, rel), path.join(release2, rel)] : [staging2, release2]);
    const into2 = calls.find((c) => c.name.startsWith('rename') && c.ok && c.paths.at(-1) === release2);
    assert.ok(into2, 'the manifest release is renamed into releases/');
    const live2 = calls.find((c) => c.name.startsWith('rename') && c.ok && c.start > into2.end && c.paths.at(-1) === path.join(tenantDir, 'live'));
    assert.ok(live2, 'and then made live');
    const incoming = path.join(tenantDir, 'staging', 'incoming') + path.sep;
    const upload = fsyncs.find((c) => (c.paths[0] ?? '').startsWith(incoming) && c.start > liveSynced.end);
    assert.ok(upload && upload.end < into2.start, 'the uploaded file is fsynced before the release is built from it');
    const folders2 = filesAndFolders(release2, (rel) => rel.startsWith('.tenantry')).folders;
    assert.deepEqual(folders2.filter((rel) => !fsyncOf(both2(rel), upload.end, into2.start)), [], 'every folder of the manifest release fsynced before its rename');
    for (const rel of folders2.filter((f) => f.includes('/'))) {
      const child = fsyncOf(both2(rel), upload.end, into2.start)!;
      assert.ok(fsyncOf(both2(path.posix.dirname(rel)), child.end, into2.start), `the folder holding ${rel} is fsynced after it`);
    }
    assert.ok(fsyncOf([path.join(tenantDir, 'releases')], into2.end, live2.start), 'releases/ fsynced after the rename into it');
    const manifestPath2 = path.join(release2, '.tenantry/index.json');
    const manifestRename2 = calls.find((c) => c.name.startsWith('rename') && c.ok && (c.paths.at(-1) === manifestPath2 || c.paths.at(-1) === path.join(staging2, '.tenantry/index.json')) && c.end < live2.start);
    assert.ok(manifestRename2 && fsyncOf([manifestRename2.paths[0]!], -1, manifestRename2.start), 'the manifest is fsynced, then renamed into place, before the live switch');
    const live2Synced = fsyncOf([tenantDir], live2.end);
    assert.ok(live2Synced && fsyncOf([path.join(dataDir, 'platform.db-wal')], live2Synced.end), 'live folder, then the database log');
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
    if (!process.env.KEEP_TRACE) fs.rmSync(path.dirname(traceFile), { recursive: true, force: true });
  }
});
