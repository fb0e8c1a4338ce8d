// SPDX-License-Identifier: GPL-2.0
/*
 * The guest side of test/kernels/run.sh: opens, loads and attaches every BPF
 * object named on the command line, each program by its section (perf_event
 * programs on a cpu-clock event per CPU, bare uprobes on uprobe_target() in
 * this binary, bare tracepoints on the file syscalls' tracepoints), runs a
 * small workload, and prints what ran: the kernel's own count of each
 * program's runs (kernel.bpf_stats_enabled). Lines for run.sh start with
 * RESULT, PROG or RTCHECK; libbpf's messages start with LOG.
 *
 * --slot-check OBJ then checks the syscalls object's per-CPU slot design
 * against the truth: two threads pinned to one CPU play ping-pong over pipes,
 * so that every read is switched out in the middle of its syscall, and the
 * counts the object recorded for each thread must equal the calls made.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/types.h>
/* The syscalls object's structs, as its user space reads them; the histogram's inline helpers need these. */
#define barrier_var(x) ((void)(x))
#include "../../bpf/latency_histogram.h"
#include "../../bpf/syscalls.h"

#define MAX_OBJECTS 16
#define MAX_LINKS 1024
#define LOG_LINES 40

struct loaded {
	const char *name;
	struct bpf_object *object;
	int attached;
	int programs;
};

static struct loaded objects[MAX_OBJECTS];
static int object_count;
static struct bpf_link *links[MAX_LINKS];
static int link_count;
static const char *current_object = "-";
static int log_lines;

/* libbpf's warnings (and the verifier's log after a failed load), a bounded number per object. */
static int print_libbpf(enum libbpf_print_level level, const char *format, va_list args)
{
	char line[512];
	char *start, *end;

	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(line, sizeof(line), format, args);
	for (start = line; *start; start = end) {
		end = strchr(start, '\n');
		if (end)
			*end++ = 0;
		else
			end = start + strlen(start);
		if (*start && log_lines++ < LOG_LINES)
			printf("LOG %s %s\n", current_object, start);
	}
	return 0;
}

/* Bare SEC("uprobe") and SEC("uretprobe") programs attach here. */
__attribute__((noinline)) int uprobe_target(int value)
{
	__asm__ volatile("" ::: "memory");
	return value + 1;
}

static void keep(struct loaded *loaded, const char *program, struct bpf_link *link, const char *what)
{
	if (!link) {
		printf("PROG %s %s attach=FAIL %s: %s\n", loaded->name, program, what, strerror(errno));
		return;
	}
	if (link_count < MAX_LINKS)
		links[link_count++] = link;
}

static void attach_perf_event(struct loaded *loaded, struct bpf_program *program)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.config = PERF_COUNT_SW_CPU_CLOCK,
		.size = sizeof(attr),
		.freq = 1,
		.sample_freq = 99,
	};
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int ok = 1;

	for (int cpu = 0; cpu < cpus; cpu++) {
		int fd = syscall(__NR_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
		struct bpf_link *link = fd < 0 ? NULL : bpf_program__attach_perf_event(program, fd);

		keep(loaded, bpf_program__name(program), link, "perf_event");
		ok &= link != NULL;
	}
	loaded->attached += ok;
}

/* The file syscall tracepoint that a bare SEC("tracepoint") program of fileio's reads its record from. */
static const char *syscall_tracepoint(const char *program)
{
	if (strstr(program, "exit"))
		return "sys_exit_read";
	if (strstr(program, "stat_at"))
		return "sys_enter_newfstatat";
	if (strstr(program, "open"))
		return "sys_enter_openat";
	return "sys_enter_read";
}

static void attach_program(struct loaded *loaded, struct bpf_program *program, const char *self)
{
	const char *section = bpf_program__section_name(program);
	const char *name = bpf_program__name(program);
	struct bpf_link *link;

	if (!strcmp(section, "perf_event")) {
		attach_perf_event(loaded, program);
		return;
	}
	if (!strcmp(section, "uprobe") || !strcmp(section, "uretprobe")) {
		LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = "uprobe_target", .retprobe = section[1] == 'r');

		link = bpf_program__attach_uprobe_opts(program, -1, self, 0, &opts);
	} else if (!strcmp(section, "tracepoint")) {
		link = bpf_program__attach_tracepoint(program, "syscalls", syscall_tracepoint(name));
	} else {
		link = bpf_program__attach(program);
	}
	keep(loaded, name, link, section);
	loaded->attached += link != NULL;
}

static void load(const char *path, const char *self)
{
	struct loaded *loaded = &objects[object_count];
	const char *slash = strrchr(path, '/');
	struct bpf_program *program;

	*loaded = (struct loaded){ 0 };
	loaded->name = slash ? slash + 1 : path;
	current_object = loaded->name;
	log_lines = 0;
	loaded->object = bpf_object__open_file(path, NULL);
	if (!loaded->object) {
		printf("RESULT %s open FAIL %s\n", loaded->name, strerror(errno));
		return;
	}
	bpf_object__for_each_program(program, loaded->object)
		loaded->programs++;
	if (bpf_object__load(loaded->object)) {
		printf("RESULT %s load FAIL %s\n", loaded->name, strerror(errno));
		bpf_object__close(loaded->object);
		return;
	}
	bpf_object__for_each_program(program, loaded->object)
		attach_program(loaded, program, self);
	object_count++;
}

static unsigned long long run_count(struct bpf_program *program)
{
	struct bpf_prog_info info = {};
	__u32 length = sizeof(info);

	if (bpf_obj_get_info_by_fd(bpf_program__fd(program), &info, &length))
		return 0;
	return info.run_cnt;
}

static void loopback_up(void)
{
	struct ifreq request = {};
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	strcpy(request.ifr_name, "lo");
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &request) < 0)
		return;
	request.ifr_flags |= IFF_UP;
	ioctl(fd, SIOCSIFFLAGS, &request);
	close(fd);
}

/* A connect that completes (SYN_SENT -> ESTABLISHED) and one refused with a reset. */
static void tcp_connects(void)
{
	struct sockaddr_in address = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t length = sizeof(address);
	int listener = socket(AF_INET, SOCK_STREAM, 0), client, accepted;

	if (listener < 0 || bind(listener, (struct sockaddr *)&address, sizeof(address)) || listen(listener, 4) ||
	    getsockname(listener, (struct sockaddr *)&address, &length))
		return;
	client = socket(AF_INET, SOCK_STREAM, 0);
	connect(client, (struct sockaddr *)&address, sizeof(address));
	accepted = accept(listener, NULL, NULL);
	close(accepted);
	close(client);
	close(listener);
	client = socket(AF_INET, SOCK_STREAM, 0);
	connect(client, (struct sockaddr *)&address, sizeof(address)); /* the listener is gone: ECONNREFUSED */
	close(client);
}

/* One DNS question for example.com to 127.0.0.1:53; nobody answers. */
static void dns_query(void)
{
	static const unsigned char query[] = { 0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e',
					       3, 'c', 'o', 'm', 0, 0, 1, 0, 1 };
	struct sockaddr_in server = { .sin_family = AF_INET, .sin_port = htons(53), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	sendto(fd, query, sizeof(query), 0, (struct sockaddr *)&server, sizeof(server));
	close(fd);
}

static void workload(const char *self)
{
	char buffer[256];
	struct stat status;
	struct timespec start, now;

	for (int i = 0; i < 1000; i++)
		syscall(SYS_getppid);
	for (int i = 0; i < 5; i++) {
		pid_t child = fork();

		if (child == 0) {
			execl("/bin/busybox", "true", NULL);
			_exit(127);
		}
		waitpid(child, NULL, 0);
	}
	for (int i = 0; i < 20; i++) {
		int fd = open(self, O_RDONLY);

		read(fd, buffer, sizeof(buffer));
		fstat(fd, &status);
		fstatat(AT_FDCWD, self, &status, 0);
		fsync(fd);
		close(fd);
	}
	loopback_up();
	tcp_connects();
	dns_query();
	for (int i = 0; i < 10; i++)
		uprobe_target(i);
	/* A third of a second on the CPU, for the sampling programs. */
	clock_gettime(CLOCK_MONOTONIC, &start);
	do
		clock_gettime(CLOCK_MONOTONIC, &now);
	while ((now.tv_sec - start.tv_sec) * 1000000000L + now.tv_nsec - start.tv_nsec < 300000000L);
}

/* preemption.bpf.o's counts: runs per hook kind, with preemption disabled or not. */
static void report_preemption(struct bpf_object *object)
{
	static const char *const hooks[] = { "raw_tp", "tp_btf/sched_switch", "tp_btf/net_dev_queue", "tracepoint", "uprobe", "perf_event" };
	struct bpf_map *map = bpf_object__find_map_by_name(object, "preemption");

	for (__u32 hook = 0; map && hook < sizeof(hooks) / sizeof(hooks[0]); hook++) {
		__u64 disabled = 0, preemptible = 0;
		__u32 key = hook * 2;

		bpf_map_lookup_elem(bpf_map__fd(map), &key, &disabled);
		key++;
		bpf_map_lookup_elem(bpf_map__fd(map), &key, &preemptible);
		printf("PREEMPTION hook=%s runs=%llu preemptible=%llu\n", hooks[hook], (unsigned long long)(disabled + preemptible),
		       (unsigned long long)preemptible);
	}
}

static void report(void)
{
	for (int i = 0; i < object_count; i++) {
		struct loaded *loaded = &objects[i];
		struct bpf_program *program;
		int ran = 0;

		bpf_object__for_each_program(program, loaded->object) {
			unsigned long long runs = run_count(program);

			ran += runs > 0;
			printf("PROG %s %s runs=%llu\n", loaded->name, bpf_program__name(program), runs);
		}
		printf("RESULT %s loaded attached=%d/%d ran=%d/%d\n", loaded->name, loaded->attached, loaded->programs, ran,
		       loaded->programs);
		report_preemption(loaded->object);
	}
}

#define ROUNDS 5000
#define NR_READ 0
#define NR_WRITE 1
#define NR_GETPPID 110
#define NR_CLOCK_NANOSLEEP 230

struct player {
	int in, out;
	pid_t tid;
};

/* Pinned to CPU 0: each read blocks until the other thread writes, so it is switched out mid-syscall. */
static void *play(void *argument)
{
	struct player *player = argument;
	cpu_set_t cpu0;
	char ball = 0;

	CPU_ZERO(&cpu0);
	CPU_SET(0, &cpu0);
	sched_setaffinity(0, sizeof(cpu0), &cpu0);
	player->tid = syscall(SYS_gettid);
	for (int i = 0; i < ROUNDS; i++) {
		if (player->out > 0 && write(player->out, &ball, 1) != 1)
			break;
		syscall(SYS_getppid);
		if (read(player->in, &ball, 1) != 1)
			break;
		if (player->out < 0 && write(-player->out, &ball, 1) != 1)
			break;
	}
	return NULL;
}

static volatile int playing;

/*
 * SCHED_FIFO on CPU 0, woken by a timer every 50 us: it preempts the players
 * wherever they are, in the middle of a BPF program too if the kernel lets
 * programs be preempted (the PREEMPT_RT question). Its own sleeps are counted.
 */
static void *preempt_players(void *argument)
{
	struct player *self = argument;
	struct sched_param fifo = { .sched_priority = 50 };
	struct timespec nap = { .tv_nsec = 50000 };
	cpu_set_t cpu0;

	CPU_ZERO(&cpu0);
	CPU_SET(0, &cpu0);
	sched_setaffinity(0, sizeof(cpu0), &cpu0);
	if (sched_setscheduler(0, SCHED_FIFO, &fifo))
		printf("RTCHECK sched_setscheduler FAIL %s\n", strerror(errno));
	self->tid = syscall(SYS_gettid);
	while (playing) {
		clock_nanosleep(CLOCK_MONOTONIC, 0, &nap, NULL);
		self->in++; /* sleeps made */
	}
	return NULL;
}

/* A map by name, or its first bank (counter_bank.h) when it has two. */
static int map_fd(struct bpf_object *object, const char *name)
{
	char bank[64];
	struct bpf_map *map = bpf_object__find_map_by_name(object, name);

	snprintf(bank, sizeof(bank), "%s_0", name);
	return bpf_map__fd(map ? map : bpf_object__find_map_by_name(object, bank));
}

/* The calls of `nr` the object recorded for thread `tid`: its recent series on every CPU, and its hash entries. */
static unsigned long long recorded(struct bpf_object *object, pid_t tid, __u32 nr)
{
	int cpus = libbpf_num_possible_cpus();
	size_t stride = (sizeof(struct recent_series) + 7) & ~7UL;
	struct latency_histogram *histogram;
	struct syscall_key key, *previous = NULL;
	unsigned long long total = 0;
	char *values = calloc(cpus, stride > sizeof(*histogram) + 8 ? stride : sizeof(*histogram) + 8);
	int recent = map_fd(object, "recent_series_0");
	int hash = map_fd(object, "histograms");

	if (!bpf_map_lookup_elem(recent, &nr, values))
		for (int cpu = 0; cpu < cpus; cpu++) {
			struct recent_series *series = (void *)(values + cpu * stride);

			if (series->used && series->key.tid == (__u32)tid)
				for (int slot = 0; slot < HISTOGRAM_SLOTS; slot++)
					total += series->histogram.slots[slot];
		}
	while (!bpf_map_get_next_key(hash, previous, &key)) {
		size_t histogram_stride = (sizeof(*histogram) + 7) & ~7UL;

		previous = &key;
		if (key.tid != (__u32)tid || key.nr != nr || bpf_map_lookup_elem(hash, &key, values))
			continue;
		for (int cpu = 0; cpu < cpus; cpu++) {
			histogram = (void *)(values + cpu * histogram_stride);
			for (int slot = 0; slot < HISTOGRAM_SLOTS; slot++)
				total += histogram->slots[slot];
		}
	}
	free(values);
	return total;
}

/* Whether the kernel has the bpf_rdonly_cast kfunc (6.2+); without it the receivers load the *_compat objects. */
static int has_rdonly_cast(void)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	int found = vmlinux && btf__find_by_name_kind(vmlinux, "bpf_rdonly_cast", BTF_KIND_FUNC) > 0;

	btf__free(vmlinux);
	return found;
}

static int check_slots(const char *path)
{
	struct syscalls_config settings = { .aggregate = AGGREGATE_TID, .enabled = 1 };
	static const char *const programs[] = { "syscall_enter", "syscall_exit", "syscall_switch" };
	static const struct { __u32 nr; const char *name; } calls[] = {
		{ NR_READ, "read" }, { NR_WRITE, "write" }, { NR_GETPPID, "getppid" } };
	char compat[256];
	struct bpf_object *object;
	struct player players[2], preemptor = { 0 };
	pthread_t threads[2], preempting;
	int ping[2], pong[2], failed = 0, cpus = libbpf_num_possible_cpus();
	__u32 zero = 0;

	if (!has_rdonly_cast()) {
		snprintf(compat, sizeof(compat), "%.*s_compat.bpf.o", (int)(strlen(path) - strlen(".bpf.o")), path);
		path = compat;
	}
	printf("RTCHECK object %s\n", strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
	object = bpf_object__open_file(path, NULL);
	if (!object || bpf_object__load(object)) {
		printf("RTCHECK load FAIL %s\n", strerror(errno));
		return 1;
	}
	bpf_map_update_elem(bpf_map__fd(bpf_object__find_map_by_name(object, "receiver_settings")), &zero, &settings, 0);
	link_count = 0;
	for (int i = 0; i < 3; i++) {
		struct bpf_link *link = bpf_program__attach(bpf_object__find_program_by_name(object, programs[i]));

		if (!link) {
			printf("RTCHECK attach %s FAIL %s\n", programs[i], strerror(errno));
			return 1;
		}
		links[link_count++] = link;
	}
	if (pipe(ping) || pipe(pong))
		return 1;
	players[0] = (struct player){ .in = pong[0], .out = ping[1] };
	players[1] = (struct player){ .in = ping[0], .out = -pong[1] };
	playing = 1;
	pthread_create(&preempting, NULL, preempt_players, &preemptor);
	for (int i = 0; i < 2; i++)
		pthread_create(&threads[i], NULL, play, &players[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(threads[i], NULL);
	playing = 0;
	pthread_join(preempting, NULL);
	for (int i = 0; i < link_count; i++)
		bpf_link__destroy(links[i]);
	for (int i = 0; i < 2; i++)
		for (int c = 0; c < 3; c++) {
			unsigned long long counted = recorded(object, players[i].tid, calls[c].nr);

			printf("RTCHECK thread=%d syscall=%s made=%d recorded=%llu %s\n", i, calls[c].name, ROUNDS, counted,
			       counted == ROUNDS ? "ok" : "MISMATCH");
			failed |= counted != ROUNDS;
		}
	{
		unsigned long long counted = recorded(object, preemptor.tid, NR_CLOCK_NANOSLEEP);

		printf("RTCHECK thread=preemptor syscall=clock_nanosleep made=%d recorded=%llu %s\n", preemptor.in, counted,
		       counted == (unsigned long long)preemptor.in ? "ok" : "MISMATCH");
		failed |= counted != (unsigned long long)preemptor.in;
	}
	{
		__u64 losses[LOSS_MAX] = {}, *values = calloc(cpus, sizeof(__u64));
		int fd = map_fd(object, "losses");

		for (__u32 reason = 0; reason < LOSS_MAX; reason++)
			if (!bpf_map_lookup_elem(fd, &reason, values))
				for (int cpu = 0; cpu < cpus; cpu++)
					losses[reason] += values[cpu];
		printf("RTCHECK losses histograms_full=%llu errors_full=%llu no_task_storage=%llu\n",
		       (unsigned long long)losses[0], (unsigned long long)losses[1], (unsigned long long)losses[2]);
		free(values);
	}
	printf("RTCHECK result %s\n", failed ? "FAIL" : "ok");
	bpf_object__close(object);
	return failed;
}

int main(int argc, char **argv)
{
	const char *slot_check = NULL;
	int fd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	libbpf_set_print(print_libbpf);
	fd = open("/proc/sys/kernel/bpf_stats_enabled", O_WRONLY);
	if (fd < 0 || write(fd, "1", 1) != 1)
		printf("LOG - cannot enable bpf_stats: %s\n", strerror(errno));
	for (int i = 1; i < argc && object_count < MAX_OBJECTS; i++) {
		if (!strcmp(argv[i], "--slot-check") && i + 1 < argc)
			slot_check = argv[++i];
		else
			load(argv[i], argv[0]);
	}
	workload(argv[0]);
	report();
	for (int i = 0; i < link_count; i++)
		bpf_link__destroy(links[i]);
	for (int i = 0; i < object_count; i++)
		bpf_object__close(objects[i].object);
	if (slot_check)
		return check_slots(slot_check);
	return 0;
}
