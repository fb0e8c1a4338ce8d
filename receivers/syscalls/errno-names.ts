/** errno numbers as names: Node's table (the platform's), inverted. */
import { constants } from 'node:os';

/**
 * Codes the kernel uses inside a syscall that is restarted or turned into
 * EINTR before user space sees it (include/linux/errno.h); the sys_exit
 * tracepoint sees them, no user-space table has them.
 */
const KERNEL_INTERNAL: Record<number, string> = {
  512: 'ERESTARTSYS',
  513: 'ERESTARTNOINTR',
  514: 'ERESTARTNOHAND',
  515: 'ENOIOCTLCMD',
  516: 'ERESTART_RESTARTBLOCK',
};

const NAMES = new Map<number, string>(Object.entries(KERNEL_INTERNAL).map(([n, name]) => [Number(n), name]));
// Aliases (EWOULDBLOCK, EDEADLOCK...) share a number: the first name in the table wins.
for (const [name, n] of Object.entries(constants.errno)) if (!NAMES.has(n)) NAMES.set(n, name);

/** "ENOENT" for 2; "unknown_NNN" for a number without a name. */
export function errnoName(errno: number): string {
  return NAMES.get(errno) ?? `unknown_${errno}`;
}
