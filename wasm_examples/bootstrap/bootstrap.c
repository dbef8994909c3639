// SPDX-License-Identifier: MIT
/* bootstrap: user side (WebAssembly). Prints every exec and exit that the
 * BPF side reports. Run with: wasm-bpf run bootstrap.wasm -- [-d MS] */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bootstrap.h"
#include "bootstrap.skel.h"

static const char usage[] =
	"Usage: bootstrap [-d MS] [-h]\n"
	"Trace process start (exec) and exit, with the process lifetime.\n"
	"\n"
	"  -d, --duration MS  only report exits of processes that lived at least\n"
	"                     MS milliseconds (exec events are then not shown)\n"
	"  -h, --help         show this help\n"
	"\n"
	"Example: wasm-bpf run bootstrap.wasm -- -d 100\n";

static uint64_t min_duration_ms;

static int parse_args(int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "duration", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int opt;

	while ((opt = getopt_long(argc, argv, "d:h", long_opts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			errno = 0;
			min_duration_ms = strtoull(optarg, &end, 10);
			if (errno || *end || end == optarg) {
				fprintf(stderr, "bootstrap: invalid duration '%s'\n", optarg);
				return -1;
			}
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
		fprintf(stderr, "bootstrap: unexpected argument '%s'\n", argv[optind]);
		fputs(usage, stderr);
		return -1;
	}
	return 0;
}

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct event *e = data;
	char ts[16];
	time_t now;

	if (size < sizeof(*e))
		return 0;

	now = time(NULL);
	strftime(ts, sizeof(ts), "%H:%M:%S", localtime(&now));

	if (e->kind == EVENT_EXEC) {
		printf("%-8s %-5s %-16.16s %-7d %-7d %.*s\n", ts, "EXEC", e->comm, e->pid, e->ppid,
		       (int)sizeof(e->filename), e->filename);
	} else {
		printf("%-8s %-5s %-16.16s %-7d %-7d [%u]", ts, "EXIT", e->comm, e->pid, e->ppid,
		       e->exit_code);
		if (e->duration_ns)
			printf(" (%llums)", (unsigned long long)(e->duration_ns / 1000000));
		printf("\n");
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct bpf_buffer *buf = NULL;
	struct bootstrap_bpf *skel;
	int err;

	/* line-buffered: a pipe sees every event as it happens */
	setvbuf(stdout, NULL, _IOLBF, 0);

	err = parse_args(argc, argv);
	if (err)
		return err < 0 ? 1 : 0;

	skel = bootstrap_bpf__open();
	if (!skel) {
		fprintf(stderr, "bootstrap: failed to open the BPF skeleton\n");
		return 1;
	}

	skel->rodata->min_duration_ns = min_duration_ms * 1000000ULL;

	err = bootstrap_bpf__load(skel);
	if (err) {
		fprintf(stderr, "bootstrap: failed to load the BPF object: %d\n", err);
		goto cleanup;
	}

	err = bootstrap_bpf__attach(skel);
	if (err) {
		fprintf(stderr, "bootstrap: failed to attach the BPF programs: %d\n", err);
		goto cleanup;
	}

	buf = bpf_buffer__open(skel->maps.events, handle_event, NULL);
	if (!buf) {
		err = errno ? -errno : -1;
		fprintf(stderr, "bootstrap: failed to open the ring buffer: %d\n", err);
		goto cleanup;
	}

	printf("%-8s %-5s %-16s %-7s %-7s %s\n", "TIME", "EVENT", "COMM", "PID", "PPID",
	       "FILENAME/EXIT CODE");

	for (;;) {
		err = bpf_buffer__poll(buf, 100 /* ms */);
		if (err == -EINTR) {
			err = 0;
			break;
		}
		if (err < 0) {
			fprintf(stderr, "bootstrap: error polling the ring buffer: %d\n", err);
			break;
		}
	}

cleanup:
	if (buf)
		bpf_buffer__free(buf);
	bootstrap_bpf__destroy(skel);
	return err ? 1 : 0;
}
