// The seccomp program, run through a small classic-BPF interpreter against
// hand-made seccomp_data: the decisions for both architectures, including the
// one this host cannot execute, and for foreign ABIs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSeccompProgram, DENIED_SYSCALLS, encodeSeccompProgram, SYSCALL_TABLES, type SeccompArch } from '../server/sandbox/seccomp-filter.js';

const ALLOW = 0x7fff0000;
const KILL_PROCESS = 0x80000000;
const EPERM = 0x00050000 | 1;
const ENOSYS = 0x00050000 | 38;
const AUDIT = { x64: 0xc000003e, arm64: 0xc00000b7, i386: 0x40000003 } as const;

type Insn = [number, number, number, number];

/** Runs the program over seccomp_data {nr, arch, args}; returns the action. */
function run(program: readonly Insn[], nr: number, arch: number, args: readonly number[] = []): number {
  const data = Buffer.alloc(64);
  data.writeInt32LE(nr, 0);
  data.writeUInt32LE(arch, 4);
  args.forEach((a, i) => data.writeUInt32LE(a >>> 0, 16 + 8 * i));
  let acc = 0;
  for (let pc = 0; pc < program.length; pc++) {
    const [code, jt, jf, k] = program[pc]!;
    switch (code) {
      case 0x20:
        acc = data.readUInt32LE(k);
        break;
      case 0x15:
        pc += acc === k >>> 0 ? jt : jf;
        break;
      case 0x35:
        pc += acc >>> 0 >= k >>> 0 ? jt : jf;
        break;
      case 0x45:
        pc += (acc & k) !== 0 ? jt : jf;
        break;
      case 0x05:
        pc += k;
        break;
      case 0x06:
        return k >>> 0;
      default:
        throw new Error(`unknown instruction ${code.toString(16)} at ${pc}`);
    }
  }
  throw new Error('fell off the end of the program');
}

const program = buildSeccompProgram();

test('the program fits the kernel limits and encodes to 8 bytes per instruction', () => {
  assert.ok(program.length < 4096);
  assert.ok(program.every(([, jt, jf]) => jt < 256 && jf < 256));
  assert.equal(encodeSeccompProgram(program).length, program.length * 8);
});

for (const arch of ['x64', 'arm64'] as SeccompArch[]) {
  const n = SYSCALL_TABLES[arch].numbers;
  test(`${arch}: every listed call is refused with EPERM; ordinary calls pass`, () => {
    for (const name of DENIED_SYSCALLS) {
      const nr = n[name];
      if (nr === undefined) continue;
      assert.equal(run(program, nr, AUDIT[arch]), EPERM, name);
    }
    // read, write, openat, mmap, futex, epoll_wait / epoll_pwait, socket, accept4
    const ordinary = arch === 'x64' ? [0, 1, 257, 9, 202, 232, 41, 288] : [63, 64, 56, 222, 98, 22, 198, 242];
    for (const nr of ordinary) assert.equal(run(program, nr, AUDIT[arch]), ALLOW, `syscall ${nr}`);
  });

  test(`${arch}: clone3 answers ENOSYS; clone may make threads and processes but no namespaces`, () => {
    assert.equal(run(program, n.clone3!, AUDIT[arch]), ENOSYS);
    const thread = 0x00010000 | 0x00000100 | 0x00000200 | 0x00000400 | 0x00000800 | 0x00080000 | 0x00100000 | 0x00200000;
    assert.equal(run(program, n.clone!, AUDIT[arch], [thread]), ALLOW, 'pthread_create');
    assert.equal(run(program, n.clone!, AUDIT[arch], [17]), ALLOW, 'fork (SIGCHLD)');
    for (const flag of [0x10000000, 0x20000000, 0x40000000, 0x00020000, 0x08000000, 0x04000000, 0x02000000, 0x00000080]) {
      assert.equal(run(program, n.clone!, AUDIT[arch], [17 | flag]), EPERM, `clone with ${flag.toString(16)}`);
    }
  });

  test(`${arch}: ioctl TIOCSTI is refused, other ioctls pass`, () => {
    assert.equal(run(program, n.ioctl!, AUDIT[arch], [0, 0x5412]), EPERM);
    assert.equal(run(program, n.ioctl!, AUDIT[arch], [0, 0x5401]), ALLOW, 'TCGETS');
  });
}

test('foreign ABIs are killed: 32-bit x86 and x32', () => {
  assert.equal(run(program, 1, AUDIT.i386), KILL_PROCESS);
  assert.equal(run(program, 0x40000000 + 1, AUDIT.x64), KILL_PROCESS);
});
