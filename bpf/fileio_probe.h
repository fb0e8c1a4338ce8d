/*
 * The fileio part of syscalls.bpf.c: file syscalls timed by filesystem type
 * and operation. Its entry and exit run either from the raw sys_enter/sys_exit
 * pair it shares with the syscalls part, or (fileio alone) from per-syscall
 * tracepoints on the file syscalls only (syscalls.bpf.c: fileio_fd_enter and the rest).
 *
 * The filesystem is the superblock type of the file behind the fd
 * (task->files->fdt->fd[fd]->f_inode->i_sb->s_type), read at entry so that a
 * close still finds its file and calls on sockets, pipes, proc and the like are
 * never timed; opens read it from the fd they return. Whether a filesystem is
 * wanted is decided once per type, from its name, and cached by the type's
 * address. Include after vmlinux.h, the libbpf headers, latency_histogram.h,
 * syscall_probe.h, counter_bank.h and fileio.h.
 */
#ifndef EBPF_COLLECTOR_FILEIO_PROBE_H
#define EBPF_COLLECTOR_FILEIO_PROBE_H

/* include/uapi/linux/fcntl.h */
#define AT_EMPTY_PATH 0x1000

#ifndef NO_BPF_RDONLY_CAST
/* A typed view of a kernel pointer, for direct (fault-safe) loads instead of a helper call per field. */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;
#define kernel_cast(pointer, type) ((type *)bpf_rdonly_cast((void *)(pointer), bpf_core_type_id_kernel(type)))
/* `field` of the kernel struct `type` at `pointer`. */
#define kernel_read(pointer, type, field) (kernel_cast(pointer, type)->field)
#else
/* Kernels without the bpf_rdonly_cast kfunc (before 6.2; syscalls_compat.bpf.c): a probe read per field. */
#define kernel_read(pointer, type, field) BPF_CORE_READ((type *)(pointer), field)
#endif

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fileio_config);
} fileio_settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FILEIO_MAX_SYSCALL_NR);
	__type(key, __u32);
	__type(value, struct file_syscall);
} file_syscalls SEC(".maps");

/* The fileio part's filters. */
PROCESS_FILTER_MAPS(fileio_);

/* The names in the filesystems filter (include or exclude list, by fileio_config.include_listed). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FILEIO_MAX_FILESYSTEMS);
	__type(key, char[FILESYSTEM_NAME_LEN]);
	__type(value, __u8);
} filesystem_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FILEIO_MAX_FILESYSTEMS);
	__type(key, __u64);
	__type(value, struct filesystem);
} filesystems SEC(".maps");

/* Series and recent series are banked (counter_bank.h, group BANK_GROUP_FILEIO). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, FILEIO_MAX_SERIES);
	__type(key, struct fileio_key);
	__type(value, struct fileio_value);
} COUNTER_BANKS(series);

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FILE_OP_COUNT);
	__type(key, __u32);
	__type(value, struct fileio_recent);
} COUNTER_BANKS(recent);

/* An all-zero value to insert new series from: it is too large for the BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fileio_value);
} fileio_empty_value SEC(".maps");

/* The filesystem the last decision on this CPU was about; user space zeroes it when the filter changes. */
struct filesystem_decision {
	__u64 fs_type;
	__u64 wanted;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct filesystem_decision);
} last_filesystem SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FILEIO_LOSS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} COUNTER_BANKS(fileio_losses);

static __always_inline void fileio_count_loss(__u32 reason)
{
	__u64 *n = bank_lookup(fileio_losses, current_bank(BANK_GROUP_FILEIO), &reason);

	if (n)
		(*n)++;
}

/* The file open at `fd` in the current task, or 0. */
static __always_inline struct file *fd_file(struct task_struct *task, long fd)
{
	struct fdtable *fdt = task->files->fdt;

	if (fd < 0 || fd >= fdt->max_fds)
		return 0;
	/*
	 * The verifier takes no variable index into a typed kernel array, but a
	 * computed address may be viewed as any struct: llist_node is one pointer,
	 * so its `next` is the fd's struct file *, loaded directly (fault-safe,
	 * like every load through a typed kernel pointer) instead of with a probe
	 * read, a helper call.
	 */
	return (struct file *)kernel_read((void *)fdt->fd + fd * sizeof(struct file *), struct llist_node, next);
}

/* Whether files of this filesystem type are recorded: decided from its name the first time it is met. */
static __always_inline bool filesystem_wanted(struct fileio_config *settings, __u64 fs_type)
{
	struct filesystem_decision *last = bpf_map_lookup_elem(&last_filesystem, &(__u32){ 0 });
	struct filesystem *known;
	struct filesystem met = {};

	/* Most calls on a CPU are on the filesystem of the call before: an inlined array lookup instead of a hash's. */
	if (last && last->fs_type == fs_type)
		return last->wanted;
	known = bpf_map_lookup_elem(&filesystems, &fs_type);
	if (known) {
		if (last) {
			last->fs_type = fs_type;
			last->wanted = known->wanted;
		}
		return known->wanted;
	}
	bpf_probe_read_kernel_str(met.name, sizeof(met.name), kernel_read(fs_type, struct file_system_type, name));
	met.wanted = !!bpf_map_lookup_elem(&filesystem_filter, met.name) == !!settings->include_listed;
	/* Unnamed in user space when the map is full: its series are dropped there, and counted. */
	if (bpf_map_update_elem(&filesystems, &fs_type, &met, BPF_NOEXIST) && !bpf_map_lookup_elem(&filesystems, &fs_type))
		fileio_count_loss(FILEIO_LOSS_FILESYSTEMS_FULL);
	return met.wanted;
}

/* The filesystem type of `file` (and its mount id, when aggregated by mountpoint) if wanted, else 0. */
static __always_inline __u64 wanted_filesystem(struct fileio_config *settings, struct file *file, __u32 *mnt_id)
{
#ifndef NO_BPF_RDONLY_CAST
	struct file *typed = kernel_cast(file, struct file);
	__u64 fs_type = (__u64)typed->f_inode->i_sb->s_type;
	struct vfsmount *vfsmount = typed->f_path.mnt;
#else
	__u64 fs_type = (__u64)BPF_CORE_READ(file, f_inode, i_sb, s_type);
	struct vfsmount *vfsmount = BPF_CORE_READ(file, f_path.mnt);
#endif

	if (!fs_type || !filesystem_wanted(settings, fs_type))
		return 0;
	if (settings->aggregate & FILEIO_AGGREGATE_MOUNT) {
		/* The vfsmount sits inside its struct mount, which holds the id /proc/PID/mountinfo lists. */
		void *mount = (void *)vfsmount - bpf_core_field_offset(struct mount, mnt);

		*mnt_id = kernel_read(mount, struct mount, mnt_id);
	}
	return fs_type;
}

/*
 * Whether the fileio part times syscall `nr`; fills the slot's fileio fields
 * when it does. `fd` is the call's first argument, `path` its second and
 * `flags` the argument the file_syscall entry names (used by fstatat-like
 * calls only).
 */
static __always_inline bool fileio_enter(struct fileio_config *settings, struct syscall_start *slot, const struct file_syscall *call,
					 struct task_struct *task, long fd, unsigned long path, unsigned long flags)
{
	struct file *file;
	char first = 0;

	if (call->source == FILE_FROM_EMPTY_PATH) {
		/* A path-based stat's filesystem is only known by walking the path: only the fd form is timed. */
		if (!(flags & AT_EMPTY_PATH) || bpf_probe_read_user(&first, 1, (void *)path) || first)
			return false;
	}
	if (settings->filters &&
	    !process_selected(settings->filters, &fileio_filter_pids, &fileio_filter_comms, &fileio_filter_cgroups))
		return false;
	slot->operation = call->operation;
	slot->fs_type = 0;
	slot->mnt_id = 0;
	if (call->source == FILE_FROM_RESULT)
		return true; /* an open: its file is known at exit */
	file = fd_file(task, fd);
	if (!file)
		return false;
	slot->fs_type = wanted_filesystem(settings, file, &slot->mnt_id);
	return slot->fs_type != 0;
}

static __always_inline struct fileio_value *fileio_series_of(void *series, const struct fileio_key *key)
{
	struct fileio_value *value, *empty;
	__u32 zero = 0;

	value = bpf_map_lookup_elem(series, key);
	if (value)
		return value;
	empty = bpf_map_lookup_elem(&fileio_empty_value, &zero);
	if (!empty)
		return 0;
	/* BPF_NOEXIST: an insert racing on another CPU wins and we add to its entry. */
	bpf_map_update_elem(series, key, empty, BPF_NOEXIST);
	return bpf_map_lookup_elem(series, key);
}

static __always_inline struct fileio_value *fileio_series(__u32 bank, const struct fileio_key *key)
{
	/* One call site per map, as in bank_lookup (counter_bank.h): the lookups are inlined. */
	if (bank) {
		struct fileio_value *value = fileio_series_of(&series_1, key);

		barrier();
		return value;
	}
	return fileio_series_of(&series_0, key);
}

/* This CPU's recent series of the key's operation when it holds (or can take) that key, else 0. */
static __always_inline struct fileio_value *fileio_recent(__u32 bank, const struct fileio_key *key)
{
	struct fileio_recent *recent;
	const __u64 *mine = (const __u64 *)key, *held;
	__u32 operation = key->operation;

	recent = bank_lookup(recent, bank, &operation);
	if (!recent)
		return 0;
	if (!recent->used) {
		recent->key = *key;
		recent->used = 1;
		return &recent->value;
	}
	held = (const __u64 *)&recent->key;
	for (int word = 0; word < sizeof(*key) / sizeof(__u64); word++)
		if (held[word] != mine[word])
			return 0;
	return &recent->value;
}

/* Records a timed file syscall that returned `ret` after `ns`. */
static __always_inline void fileio_exit(struct fileio_config *settings, const struct syscall_start *slot, struct task_struct *task,
					__u64 ns, long ret)
{
	struct fileio_key key = {
		.fs_type = slot->fs_type,
		.mnt_id = slot->mnt_id,
		.operation = slot->operation,
	};
	struct fileio_value *value;
	struct file *file;
	__u64 bytes = 0;
	__u32 bank;

	if (key.operation == FILE_OP_OPEN) {
		/* A failed open has no file, so no filesystem: not counted. */
		file = ret >= 0 ? fd_file(task, ret) : 0;
		if (!file)
			return;
		key.fs_type = wanted_filesystem(settings, file, &key.mnt_id);
		if (!key.fs_type)
			return;
	} else if ((key.operation == FILE_OP_READ || key.operation == FILE_OP_WRITE) && ret > 0) {
		bytes = ret;
	}
	if (settings->aggregate & FILEIO_AGGREGATE_CGROUP)
		key.cgroup_id = task->cgroups->dfl_cgrp->kn->id;
	if (settings->aggregate & FILEIO_AGGREGATE_PID)
		key.pid = task->tgid;
	if (settings->aggregate & FILEIO_AGGREGATE_COMM)
		bpf_get_current_comm(key.comm, sizeof(key.comm));

	bank = current_bank(BANK_GROUP_FILEIO);
	value = fileio_recent(bank, &key);
	if (!value)
		value = fileio_series(bank, &key);
	if (!value) {
		fileio_count_loss(FILEIO_LOSS_SERIES_FULL);
		return;
	}
	histogram_record(&value->histogram, ns);
	value->bytes += bytes;
}

#endif
