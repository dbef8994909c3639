// SPDX-License-Identifier: MIT
/* opensnoop: user side (WebAssembly). Prints one line per open(2)/openat(2).
 * Run with: wasm-bpf run opensnoop.wasm -- [-p PID] [-x] */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opensnoop.h"
#include "opensnoop.skel.h"

static const char usage[] =
	"Usage: opensnoop [-p PID] [-x] [-h]\n"
	"Trace open(2) and openat(2) calls system-wide.\n"
	"\n"
	"  -p, --pid PID   only calls made by process PID\n"
	"  -x, --failed    only calls that failed\n"
	"  -h, --help      show this help\n"
	"\n"
	"FD is the new file descriptor (-1 on failure), ERR the errno of a failed\n"
	"call (e.g. 2 = ENOENT). Events are read from a BPF perf event array.\n";

static struct {
	int32_t pid;
	bool failed_only;
} env;

static int parse_args(int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "failed", no_argument, NULL, 'x' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	long v;
	int opt;

	while ((opt = getopt_long(argc, argv, "p:xh", long_opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || v <= 0 || v > INT32_MAX) {
				fprintf(stderr, "opensnoop: invalid pid '%s'\n", optarg);
				return -1;
			}
			env.pid = (int32_t)v;
			break;
		case 'x':
			env.failed_only = true;
			break;
		case 'h':
			fputs(usage, stdout);
			return 1;
		default:
			fputs(usage, stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "opensnoop: unexpected argument '%s'\n", argv[optind]);
		fputs(usage, stderr);
		return -1;
	}
	return 0;
}

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct event *e = data;

	/* perf records are padded to 8 bytes: size may exceed sizeof(*e) */
	if (size < sizeof(*e))
		return 0;

	printf("%-7d %-16.16s %4d %3d %.*s\n", e->pid, e->comm, e->fd, e->err, MAX_PATH_LEN,
	       e->path);
	return 0;
}

int main(int argc, char **argv)
{
	struct bpf_buffer *buf = NULL;
	struct opensnoop_bpf *skel;
	int err;

	setvbuf(stdout, NULL, _IOLBF, 0);

	err = parse_args(argc, argv);
	if (err)
		return err < 0 ? 1 : 0;

	skel = opensnoop_bpf__open();
	if (!skel) {
		fprintf(stderr, "opensnoop: failed to open the BPF skeleton\n");
		return 1;
	}

	skel->rodata->filter_pid = env.pid;
	skel->rodata->failed_only = env.failed_only;

	err = opensnoop_bpf__load(skel);
	if (err) {
		fprintf(stderr, "opensnoop: failed to load the BPF object: %d\n", err);
		goto cleanup;
	}

	err = opensnoop_bpf__attach(skel);
	if (err) {
		fprintf(stderr, "opensnoop: failed to attach the BPF programs: %d\n", err);
		goto cleanup;
	}

	/* the same call as for a ring buffer: the host sees the map type */
	buf = bpf_buffer__open(skel->maps.events, handle_event, NULL);
	if (!buf) {
		err = errno ? -errno : -1;
		fprintf(stderr, "opensnoop: failed to open the perf buffer: %d\n", err);
		goto cleanup;
	}

	printf("%-7s %-16s %4s %3s %s\n", "PID", "COMM", "FD", "ERR", "PATH");

	for (;;) {
		err = bpf_buffer__poll(buf, 100 /* ms */);
		if (err == -EINTR) {
			err = 0;
			break;
		}
		if (err < 0) {
			fprintf(stderr, "opensnoop: error polling the perf buffer: %d\n", err);
			break;
		}
	}

cleanup:
	if (buf)
		bpf_buffer__free(buf);
	opensnoop_bpf__destroy(skel);
	return err ? 1 : 0;
}
