/* Structs the fileio part of syscalls.bpf.c shares with user space (receivers/fileio/layout.ts). */
#ifndef EBPF_COLLECTOR_FILEIO_H
#define EBPF_COLLECTOR_FILEIO_H

#define FILEIO_COMM_LEN 16
#define FILESYSTEM_NAME_LEN 32

/* Distinct (filesystem, operation, aggregate labels) series per interval. */
#define FILEIO_MAX_SERIES 16384
/* Filesystem types seen (a system has a few dozen) and names in the filesystems filter. */
#define FILEIO_MAX_FILESYSTEMS 256
/* Syscall numbers file_syscalls covers (x86-64 has about 470). */
#define FILEIO_MAX_SYSCALL_NR 512

/* fileio_settings[0], written by user space. */
struct fileio_config {
	__u32 enabled;   /* the fileio receiver runs: entries are timed for it */
	__u32 route;     /* FILEIO_ROUTE_*: which programs time file syscalls */
	__u32 filters;   /* FILTER_* bits (syscall_probe.h) */
	__u32 aggregate; /* FILEIO_AGGREGATE_* bits: the fields of fileio_key that are filled in */
	__u32 include_listed; /* 1: only filesystems in filesystem_filter; 0: all but those */
};

enum fileio_route {
	/* the raw sys_enter/sys_exit pair, shared with the syscalls receiver */
	FILEIO_ROUTE_RAW = 0,
	/* per-syscall tracepoints on the file syscalls only (fileio alone: other syscalls run no BPF) */
	FILEIO_ROUTE_TRACEPOINTS = 1,
};

enum fileio_aggregate {
	FILEIO_AGGREGATE_CGROUP = 1,
	FILEIO_AGGREGATE_PID = 2,
	FILEIO_AGGREGATE_COMM = 4,
	FILEIO_AGGREGATE_MOUNT = 8,
};

enum file_operation {
	FILE_OP_NONE = 0,
	FILE_OP_READ = 1,
	FILE_OP_WRITE = 2,
	FILE_OP_OPEN = 3,
	FILE_OP_FSYNC = 4,
	FILE_OP_FDATASYNC = 5,
	FILE_OP_CLOSE = 6,
	FILE_OP_STAT = 7,
	FILE_OP_COUNT,
};

/* Where a file syscall's file comes from. */
enum file_source {
	FILE_FROM_FD_ARG = 0,     /* the fd in its first argument */
	FILE_FROM_RESULT = 1,     /* the fd it returns (opens) */
	FILE_FROM_EMPTY_PATH = 2, /* newfstatat/statx: the fd in its first argument, only with AT_EMPTY_PATH and path "" (glibc's fstat) */
};

/* file_syscalls[nr], written by user space from the syscall names: operation 0 for other syscalls. */
struct file_syscall {
	__u8 operation;  /* enum file_operation */
	__u8 source;     /* enum file_source */
	__u8 flags_arg;  /* FILE_FROM_EMPTY_PATH: the argument holding the AT_* flags */
	__u8 padding;
};

/* series_0/1: one series; fields not aggregated by are 0. */
struct fileio_key {
	__u64 cgroup_id;
	__u64 fs_type;   /* struct file_system_type address: named through `filesystems` */
	__u32 pid;       /* tgid */
	__u32 mnt_id;
	__u32 operation; /* enum file_operation */
	__u32 padding;
	char comm[FILEIO_COMM_LEN];
};

struct fileio_value {
	struct latency_histogram histogram;
	__u64 bytes; /* read/write calls: the bytes they returned */
};

/*
 * recent_0/1 (per CPU, by operation): the first series an operation exits
 * with on this CPU since the bank was drained, so that the common case adds
 * to it without hashing a key; other series go to series_0/1.
 */
struct fileio_recent {
	struct fileio_key key;
	__u64 used; /* 0: empty, key not set */
	struct fileio_value value;
};

/* filesystems: each filesystem type the probe met, by its struct file_system_type address. */
struct filesystem {
	char name[FILESYSTEM_NAME_LEN];
	__u32 wanted; /* the filesystems filter lets its files through */
	__u32 padding;
};

/* Index into the per-CPU `fileio_losses` array: file operations that could not be recorded. */
enum fileio_loss {
	FILEIO_LOSS_SERIES_FULL = 0,
	FILEIO_LOSS_FILESYSTEMS_FULL = 1,
	FILEIO_LOSS_MAX,
};

#endif
