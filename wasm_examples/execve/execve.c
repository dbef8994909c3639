// SPDX-License-Identifier: MIT
/* execve: user side (WebAssembly). Prints "[pid] comm -> argv..." for every
 * execve(2) on the system. Run with: wasm-bpf run execve.wasm */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "execve.h"
#include "execve.skel.h"

static const char usage[] =
	"Usage: execve [-h]\n"
	"Print every execve(2) on the system as\n"
	"  [PID] COMM -> ARGV...\n"
	"where COMM is the command name of the caller (before the exec).\n"
	"Only the first 8 arguments are shown, each cut at 63 bytes;\n"
	"\"...\" marks a longer argument list. Control characters are escaped\n"
	"(\\n, \\t, \\xNN). Failed calls are shown too (e.g. execvp trying each\n"
	"directory of PATH).\n";

/* One argument, with control characters escaped so that every exec stays
 * on one line (scripts passed with sh -c often contain newlines). */
static void print_arg(const char *arg)
{
	putchar(' ');
	for (int i = 0; i < ARG_LEN && arg[i]; i++) {
		unsigned char c = (unsigned char)arg[i];

		if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\t')
			fputs("\\t", stdout);
		else if (c < 0x20 || c == 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
}

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct event *e = data;
	uint32_t i, n;

	if (size < sizeof(*e))
		return 0;

	n = e->argc < MAX_ARGS ? e->argc : MAX_ARGS;
	printf("[%d] %.*s ->", e->pid, TASK_COMM_LEN, e->comm);
	for (i = 0; i < n; i++)
		print_arg(e->args[i]);
	printf("%s\n", e->truncated ? " ..." : "");
	return 0;
}

int main(int argc, char **argv)
{
	struct bpf_buffer *buf = NULL;
	struct execve_bpf *skel;
	int opt, err;

	setvbuf(stdout, NULL, _IOLBF, 0);

	while ((opt = getopt(argc, argv, "h")) != -1) {
		if (opt == 'h') {
			fputs(usage, stdout);
			return 0;
		}
		fputs(usage, stderr);
		return 1;
	}
	if (optind < argc) {
		fprintf(stderr, "execve: unexpected argument '%s'\n", argv[optind]);
		fputs(usage, stderr);
		return 1;
	}

	skel = execve_bpf__open();
	if (!skel) {
		fprintf(stderr, "execve: failed to open the BPF skeleton\n");
		return 1;
	}

	err = execve_bpf__load(skel);
	if (err) {
		fprintf(stderr, "execve: failed to load the BPF object: %d\n", err);
		goto cleanup;
	}

	err = execve_bpf__attach(skel);
	if (err) {
		fprintf(stderr, "execve: failed to attach the BPF program: %d\n", err);
		goto cleanup;
	}

	buf = bpf_buffer__open(skel->maps.events, handle_event, NULL);
	if (!buf) {
		err = errno ? -errno : -1;
		fprintf(stderr, "execve: failed to open the ring buffer: %d\n", err);
		goto cleanup;
	}

	printf("Tracing execve... Hit Ctrl-C to end.\n");

	for (;;) {
		err = bpf_buffer__poll(buf, 100 /* ms */);
		if (err == -EINTR) {
			err = 0;
			break;
		}
		if (err < 0) {
			fprintf(stderr, "execve: error polling the ring buffer: %d\n", err);
			break;
		}
	}

cleanup:
	if (buf)
		bpf_buffer__free(buf);
	execve_bpf__destroy(skel);
	return err ? 1 : 0;
}
