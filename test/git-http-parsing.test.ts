// The pure parts of the git bridge: URLs, credentials, CGI answers, quarantine folders.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parseGitPath } from '../server/git/git-http.js';
import { accessFor, basicCredentialsFrom } from '../server/git/git-auth.js';
import { parseCgiHead } from '../server/git/cgi.js';
import { quarantineEnv } from '../server/git/push-deploy.js';
import { tempDir } from './helpers/harness.js';

test('git URLs name a tenant and a path inside its repository, nothing else', () => {
  assert.deepEqual(parseGitPath('/acme.git/info/refs?service=git-upload-pack'), { tenantId: 'acme', tail: '/info/refs', query: 'service=git-upload-pack' });
  assert.deepEqual(parseGitPath('/acme/git-receive-pack'), { tenantId: 'acme', tail: '/git-receive-pack', query: '' });
  for (const bad of ['/', '/ACME.git/info/refs', '/acme.git/../other.git/HEAD', '/acme.git/%2e%2e/x', '/a.git/HEAD', '/acme.git\\info', '/-acme.git/HEAD']) {
    assert.equal(parseGitPath(bad), undefined, bad);
  }
});

test('pushing is asked for by receive-pack only', () => {
  assert.equal(accessFor('/git-receive-pack', ''), 'push');
  assert.equal(accessFor('/info/refs', 'service=git-receive-pack'), 'push');
  assert.equal(accessFor('/info/refs', 'service=git-upload-pack'), 'fetch');
  assert.equal(accessFor('/git-upload-pack', ''), 'fetch');
  assert.equal(accessFor('/HEAD', ''), 'fetch');
});

test('Basic credentials: any user name, the password is the token', () => {
  const enc = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;
  assert.deepEqual(basicCredentialsFrom(enc('x:tnt_abc')), { user: 'x', password: 'tnt_abc' });
  assert.deepEqual(basicCredentialsFrom(enc(':tnt_a:b')), { user: '', password: 'tnt_a:b' });
  assert.equal(basicCredentialsFrom(enc('no-colon')), undefined);
  assert.equal(basicCredentialsFrom('Bearer tnt_abc'), undefined);
  assert.equal(basicCredentialsFrom(undefined), undefined);
});

test('CGI answers: Status, repeated headers, LF or CRLF lines', () => {
  assert.deepEqual(parseCgiHead('Status: 404 Not Found\r\nContent-Type: text/plain\r\nExpires: x'), {
    status: 404,
    headers: [
      ['Content-Type', 'text/plain'],
      ['Expires', 'x'],
    ],
  });
  assert.deepEqual(parseCgiHead('Content-Type: application/x-git-upload-pack-result\nCache-Control: no-cache'), {
    status: 200,
    headers: [
      ['Content-Type', 'application/x-git-upload-pack-result'],
      ['Cache-Control', 'no-cache'],
    ],
  });
  assert.equal(parseCgiHead('Location: /elsewhere').status, 302);
  assert.equal(parseCgiHead('Status: banana').status, 200);
});

test('the quarantine folders a hook names must lie inside the tenant repository', () => {
  const root = tempDir('tenantry-quarantine-');
  try {
    const repo = path.join(root, 'acme.git');
    const incoming = path.join(repo, 'objects', 'incoming-abc');
    fs.mkdirSync(incoming, { recursive: true });
    fs.mkdirSync(path.join(root, 'other.git', 'objects'), { recursive: true });
    assert.deepEqual(quarantineEnv(repo, { objectDirectory: incoming, alternateObjectDirectories: path.join(repo, 'objects') }), {
      GIT_OBJECT_DIRECTORY: incoming,
      GIT_ALTERNATE_OBJECT_DIRECTORIES: path.join(repo, 'objects'),
    });
    assert.equal(quarantineEnv(repo, { objectDirectory: path.join(root, 'other.git', 'objects') }), undefined);
    assert.equal(quarantineEnv(repo, { objectDirectory: path.join(repo, '..', 'other.git', 'objects') }), undefined);
    assert.equal(quarantineEnv(repo, { alternateObjectDirectories: `${path.join(repo, 'objects')}:/etc` }), undefined);
    assert.equal(quarantineEnv(repo, { objectDirectory: 'objects/incoming-abc' }), undefined, 'relative folders are refused');
    assert.deepEqual(quarantineEnv(repo, {}), {});
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
