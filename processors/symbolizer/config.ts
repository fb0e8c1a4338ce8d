import { z } from 'zod';

const absoluteDir = z
  .string()
  .refine((dir) => dir.startsWith('/') && !dir.includes(':'), (dir) => ({ message: `must be an absolute path without ':', got "${dir}"` }));

export const symbolizerConfigSchema = z
  .object({
    /** ELF files kept open with their symbol tables and DWARF (LRU); one per build id. */
    max_cached_binaries: z.number().int().min(1).max(65_536).default(256),
    /** Symbol lookups (function, file, line) kept (LRU), over all binaries. */
    max_cached_symbols: z.number().int().min(1).max(10_000_000).default(200_000),
    /** Name frames in JIT code from /tmp/perf-PID.map (node --perf-basic-prof, python -X perf, Java agents). */
    perf_maps: z.boolean().default(true),
    /** Memory for one process's perf map table (names plus 20 bytes a line); a larger map is refused. */
    perf_map_max_process_mib: z.number().int().min(1).max(1024).default(64),
    /** Memory for the perf map tables of all processes together; a map that would exceed it waits for room. */
    perf_map_max_total_mib: z.number().int().min(1).max(65_536).default(256),
    /** Where separate debug files are found: <dir>/.build-id/xx/rest.debug, and by .gnu_debuglink. */
    debug_dirs: z.array(absoluteDir).default(['/usr/lib/debug']),
    /**
     * Uncompressed copies of debug files whose DWARF is compressed (as Debian's -dbg packages ship
     * it): elfutils maps a copy where it would inflate every section into memory, 14 MB for libc's.
     * The directory is created 0700; an existing one must be a directory (not a symlink) owned by the
     * collector's uid and writable by no group or other, or the collector refuses to start.
     */
    debug_file_cache: z
      .object({
        directory: absoluteDir.default('/var/cache/ebpf-collector'),
        /** Bound on all files in the directory; the least recently used go first. 0: no copies, no directory. */
        max_mib: z.number().int().min(0).max(1_048_576).default(1024),
      })
      .strict()
      .default({}),
  })
  .strict();

export type SymbolizerConfig = z.output<typeof symbolizerConfigSchema>;
