// A seccomp filter as a classic BPF program, built here so no libseccomp is
// needed: bwrap loads it from a file descriptor (`bwrap --seccomp FD`) just
// before it executes the worker. It denies the system calls a tenant's code
// has no use for and that widen the kernel surface it can reach: namespaces,
// mounts, tracing other processes, BPF, io_uring, keyrings, modules, reboot.
// Everything else is allowed; the other layers (user, namespaces, cgroups)
// carry the rest.
import os from 'node:os';

/** struct seccomp_data: nr at 0, arch at 4, args[i] at 16 + 8i (low word first on little-endian). */
const OFFSET_NR = 0;
const OFFSET_ARCH = 4;
const argLow = (i: number) => 16 + 8 * i;

const AUDIT_ARCH_X86_64 = 0xc000003e;
const AUDIT_ARCH_AARCH64 = 0xc00000b7;
/** x86_64 system call numbers with this bit set are the x32 ABI; we allow none of them. */
const X32_SYSCALL_BIT = 0x40000000;

const BPF_LD_W_ABS = 0x20;
const BPF_JMP_JEQ_K = 0x15;
const BPF_JMP_JGE_K = 0x35;
const BPF_JMP_JSET_K = 0x45;
const BPF_JMP_JA = 0x05;
const BPF_RET_K = 0x06;

const RET_ALLOW = 0x7fff0000;
const RET_KILL_PROCESS = 0x80000000;
const retErrno = (errno: number) => 0x00050000 | (errno & 0xffff);
const EPERM = 1;
const ENOSYS = 38;

/** CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME */
const CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080;
const TIOCSTI = 0x5412;

export type SeccompArch = 'x64' | 'arm64';

/** Denied with EPERM. Names as in the kernel's syscall tables; numbers per architecture below. */
export const DENIED_SYSCALLS = [
  'unshare', 'setns', 'mount', 'umount2', 'pivot_root', 'chroot',
  'mount_setattr', 'move_mount', 'open_tree', 'fsopen', 'fsconfig', 'fsmount', 'fspick',
  'ptrace', 'process_vm_readv', 'process_vm_writev', 'process_madvise', 'pidfd_getfd', 'kcmp',
  'bpf', 'perf_event_open', 'userfaultfd',
  'io_uring_setup', 'io_uring_enter', 'io_uring_register',
  'keyctl', 'add_key', 'request_key',
  'init_module', 'finit_module', 'delete_module', 'kexec_load', 'kexec_file_load',
  'reboot', 'swapon', 'swapoff', 'acct', 'quotactl', 'lookup_dcookie', 'vhangup', 'syslog',
  'settimeofday', 'clock_settime', 'clock_adjtime', 'adjtimex', 'sethostname', 'setdomainname',
  'open_by_handle_at', 'name_to_handle_at', 'fanotify_init',
  'iopl', 'ioperm', 'uselib', 'nfsservctl', '_sysctl',
] as const;
export type DeniedSyscall = (typeof DENIED_SYSCALLS)[number];

interface SyscallTable {
  readonly audit: number;
  readonly numbers: Partial<Record<DeniedSyscall | 'clone' | 'clone3' | 'ioctl', number>>;
  readonly rejectX32: boolean;
}

/** From <asm/unistd_64.h> (x86_64) and <asm-generic/unistd.h> (aarch64). Absent: no such call there. */
export const SYSCALL_TABLES: Readonly<Record<SeccompArch, SyscallTable>> = {
  x64: {
    audit: AUDIT_ARCH_X86_64,
    rejectX32: true,
    numbers: {
      unshare: 272, setns: 308, mount: 165, umount2: 166, pivot_root: 155, chroot: 161,
      mount_setattr: 442, move_mount: 429, open_tree: 428, fsopen: 430, fsconfig: 431, fsmount: 432, fspick: 433,
      ptrace: 101, process_vm_readv: 310, process_vm_writev: 311, process_madvise: 440, pidfd_getfd: 438, kcmp: 312,
      bpf: 321, perf_event_open: 298, userfaultfd: 323,
      io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427,
      keyctl: 250, add_key: 248, request_key: 249,
      init_module: 175, finit_module: 313, delete_module: 176, kexec_load: 246, kexec_file_load: 320,
      reboot: 169, swapon: 167, swapoff: 168, acct: 163, quotactl: 179, lookup_dcookie: 212, vhangup: 153, syslog: 103,
      settimeofday: 164, clock_settime: 227, clock_adjtime: 305, adjtimex: 159, sethostname: 170, setdomainname: 171,
      open_by_handle_at: 304, name_to_handle_at: 303, fanotify_init: 300,
      iopl: 172, ioperm: 173, uselib: 134, nfsservctl: 180, _sysctl: 156,
      clone: 56, clone3: 435, ioctl: 16,
    },
  },
  arm64: {
    audit: AUDIT_ARCH_AARCH64,
    rejectX32: false,
    numbers: {
      unshare: 97, setns: 268, mount: 40, umount2: 39, pivot_root: 41, chroot: 51,
      mount_setattr: 442, move_mount: 429, open_tree: 428, fsopen: 430, fsconfig: 431, fsmount: 432, fspick: 433,
      ptrace: 117, process_vm_readv: 270, process_vm_writev: 271, process_madvise: 440, pidfd_getfd: 438, kcmp: 272,
      bpf: 280, perf_event_open: 241, userfaultfd: 282,
      io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427,
      keyctl: 219, add_key: 217, request_key: 218,
      init_module: 105, finit_module: 273, delete_module: 106, kexec_load: 104, kexec_file_load: 294,
      reboot: 142, swapon: 224, swapoff: 225, acct: 89, quotactl: 60, lookup_dcookie: 18, vhangup: 58, syslog: 116,
      settimeofday: 170, clock_settime: 112, clock_adjtime: 266, adjtimex: 171, sethostname: 161, setdomainname: 162,
      open_by_handle_at: 265, name_to_handle_at: 264, fanotify_init: 262,
      nfsservctl: 42,
      clone: 220, clone3: 435, ioctl: 29,
    },
  },
};

type Insn = [code: number, jt: number, jf: number, k: number];

const load = (offset: number): Insn => [BPF_LD_W_ABS, 0, 0, offset];
const ret = (value: number): Insn => [BPF_RET_K, 0, 0, value];
/** if (A == k) fall through to the next instruction, else skip `skip` instructions. */
const ifEqual = (k: number, skip: number): Insn => [BPF_JMP_JEQ_K, 0, skip, k];
const jumpAlways = (offset: number): Insn => [BPF_JMP_JA, 0, 0, offset];

/** The checks for one architecture; every path ends in a return. */
function archSection(table: SyscallTable): Insn[] {
  const n = table.numbers;
  const out: Insn[] = [load(OFFSET_NR)];
  if (table.rejectX32) out.push([BPF_JMP_JGE_K, 0, 1, X32_SYSCALL_BIT], ret(RET_KILL_PROCESS));
  for (const name of DENIED_SYSCALLS) {
    const nr = n[name];
    if (nr === undefined) continue;
    out.push(ifEqual(nr, 1), ret(retErrno(EPERM)));
  }
  // clone3 takes its flags in a struct BPF cannot read: ENOSYS makes glibc and libuv fall back to clone.
  out.push(ifEqual(n.clone3!, 1), ret(retErrno(ENOSYS)));
  // clone: threads and fork are fine, new namespaces are not. flags is the first argument on both ABIs.
  out.push(ifEqual(n.clone!, 4), load(argLow(0)), [BPF_JMP_JSET_K, 0, 1, CLONE_NAMESPACE_FLAGS], ret(retErrno(EPERM)), ret(RET_ALLOW));
  // ioctl(TIOCSTI) would push keystrokes into a terminal outside the sandbox.
  out.push(ifEqual(n.ioctl!, 3), load(argLow(1)), ifEqual(TIOCSTI, 1), ret(retErrno(EPERM)));
  out.push(ret(RET_ALLOW));
  return out;
}

/** The whole program: dispatch on the architecture; any other ABI (e.g. 32-bit int 0x80) is killed. */
export function buildSeccompProgram(arches: readonly SeccompArch[] = ['x64', 'arm64']): Insn[] {
  const sections = arches.map((a) => ({ table: SYSCALL_TABLES[a], body: archSection(SYSCALL_TABLES[a]) }));
  const head: Insn[] = [load(OFFSET_ARCH)];
  // Dispatch: per arch two instructions (compare, jump), then the kill for unknown arches.
  const dispatchLength = 1 + sections.length * 2 + 1;
  let bodyStart = dispatchLength;
  for (const [i, s] of sections.entries()) {
    const jaIndex = 1 + i * 2 + 1;
    head.push(ifEqual(s.table.audit, 1), jumpAlways(bodyStart - (jaIndex + 1)));
    bodyStart += s.body.length;
  }
  head.push(ret(RET_KILL_PROCESS));
  return [...head, ...sections.flatMap((s) => s.body)];
}

/** The program as bytes in the kernel's struct sock_filter layout (host byte order). */
export function encodeSeccompProgram(program: readonly Insn[]): Buffer {
  const buf = Buffer.alloc(program.length * 8);
  const le = os.endianness() === 'LE';
  program.forEach(([code, jt, jf, k], i) => {
    const o = i * 8;
    if (le) {
      buf.writeUInt16LE(code, o);
      buf.writeUInt32LE(k >>> 0, o + 4);
    } else {
      buf.writeUInt16BE(code, o);
      buf.writeUInt32BE(k >>> 0, o + 4);
    }
    buf.writeUInt8(jt, o + 2);
    buf.writeUInt8(jf, o + 3);
  });
  return buf;
}

/** The architecture this process runs on, when the filter knows its system call numbers. */
export function hostSeccompArch(): SeccompArch | undefined {
  return process.arch === 'x64' || process.arch === 'arm64' ? process.arch : undefined;
}

export function seccompFilterBytes(): Buffer {
  return encodeSeccompProgram(buildSeccompProgram());
}
