// SPDX-License-Identifier: MIT
/* sigsnoop: user side (WebAssembly). Prints one line per signal sent with
 * kill/tkill/tgkill. Run with: wasm-bpf run sigsnoop.wasm -- [options] */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sigsnoop.h"
#include "sigsnoop.skel.h"

static const char usage[] =
	"Usage: sigsnoop [-p PID] [-s SIG] [-x] [-n] [-h]\n"
	"Trace signals sent with kill(2), tkill(2) and tgkill(2).\n"
	"\n"
	"  -p, --pid PID      only signals sent by process PID\n"
	"  -s, --signal SIG   only signal SIG (a number, or a name such as USR1)\n"
	"  -x, --failed       only calls that failed\n"
	"  -n, --name         show signal names instead of numbers\n"
	"  -h, --help         show this help\n"
	"\n"
	"RESULT is 0 or -errno of the call (e.g. -3 = ESRCH, no such process).\n";

/* Linux signal numbers (x86, arm, riscv and most others) */
static const char *const sig_names[] = {
	[0] = "0",        [1] = "SIGHUP",     [2] = "SIGINT",    [3] = "SIGQUIT",
	[4] = "SIGILL",   [5] = "SIGTRAP",    [6] = "SIGABRT",   [7] = "SIGBUS",
	[8] = "SIGFPE",   [9] = "SIGKILL",    [10] = "SIGUSR1",  [11] = "SIGSEGV",
	[12] = "SIGUSR2", [13] = "SIGPIPE",   [14] = "SIGALRM",  [15] = "SIGTERM",
	[16] = "SIGSTKFLT", [17] = "SIGCHLD", [18] = "SIGCONT",  [19] = "SIGSTOP",
	[20] = "SIGTSTP", [21] = "SIGTTIN",   [22] = "SIGTTOU",  [23] = "SIGURG",
	[24] = "SIGXCPU", [25] = "SIGXFSZ",   [26] = "SIGVTALRM", [27] = "SIGPROF",
	[28] = "SIGWINCH", [29] = "SIGIO",    [30] = "SIGPWR",   [31] = "SIGSYS",
};
#define NR_SIG_NAMES ((int)(sizeof(sig_names) / sizeof(sig_names[0])))

static struct {
	int32_t pid;
	int32_t sig;
	bool failed_only;
	bool names;
} env;

static int parse_int(const char *s, int32_t *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < 0 || v > INT32_MAX)
		return -1;
	*out = (int32_t)v;
	return 0;
}

static int parse_signal(const char *s, int32_t *out)
{
	if (parse_int(s, out) == 0)
		return *out < 65 ? 0 : -1; /* up to SIGRTMAX */
	for (int i = 1; i < NR_SIG_NAMES; i++) {
		/* accept "SIGUSR1", "USR1", "sigusr1" */
		if (!strcasecmp(s, sig_names[i]) || !strcasecmp(s, sig_names[i] + 3)) {
			*out = i;
			return 0;
		}
	}
	return -1;
}

static int parse_args(int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "signal", required_argument, NULL, 's' },
		{ "failed", no_argument, NULL, 'x' },
		{ "name", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "p:s:xnh", long_opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			if (parse_int(optarg, &env.pid) || env.pid == 0) {
				fprintf(stderr, "sigsnoop: invalid pid '%s'\n", optarg);
				return -1;
			}
			break;
		case 's':
			if (parse_signal(optarg, &env.sig) || env.sig == 0) {
				fprintf(stderr, "sigsnoop: invalid signal '%s'\n", optarg);
				return -1;
			}
			break;
		case 'x':
			env.failed_only = true;
			break;
		case 'n':
			env.names = true;
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
		fprintf(stderr, "sigsnoop: unexpected argument '%s'\n", argv[optind]);
		fputs(usage, stderr);
		return -1;
	}
	return 0;
}

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct event *e = data;
	char ts[16], sig[16];
	time_t now;

	if (size < sizeof(*e))
		return 0;

	now = time(NULL);
	strftime(ts, sizeof(ts), "%H:%M:%S", localtime(&now));

	if (env.names && e->sig >= 0 && e->sig < NR_SIG_NAMES)
		snprintf(sig, sizeof(sig), "%s", sig_names[e->sig]);
	else if (env.names && e->sig >= 32 && e->sig <= 64)
		snprintf(sig, sizeof(sig), "SIGRT%d", e->sig - 32);
	else
		snprintf(sig, sizeof(sig), "%d", e->sig);

	printf("%-8s %-7d %-16.16s %-9s %-7d %d\n", ts, e->pid, e->comm, sig, e->tpid, e->ret);
	return 0;
}

int main(int argc, char **argv)
{
	struct bpf_buffer *buf = NULL;
	struct sigsnoop_bpf *skel;
	int err;

	setvbuf(stdout, NULL, _IOLBF, 0);

	err = parse_args(argc, argv);
	if (err)
		return err < 0 ? 1 : 0;

	skel = sigsnoop_bpf__open();
	if (!skel) {
		fprintf(stderr, "sigsnoop: failed to open the BPF skeleton\n");
		return 1;
	}

	skel->rodata->filter_pid = env.pid;
	skel->rodata->filter_sig = env.sig;
	skel->rodata->failed_only = env.failed_only;

	err = sigsnoop_bpf__load(skel);
	if (err) {
		fprintf(stderr, "sigsnoop: failed to load the BPF object: %d\n", err);
		goto cleanup;
	}

	err = sigsnoop_bpf__attach(skel);
	if (err) {
		fprintf(stderr, "sigsnoop: failed to attach the BPF programs: %d\n", err);
		goto cleanup;
	}

	buf = bpf_buffer__open(skel->maps.events, handle_event, NULL);
	if (!buf) {
		err = errno ? -errno : -1;
		fprintf(stderr, "sigsnoop: failed to open the ring buffer: %d\n", err);
		goto cleanup;
	}

	printf("%-8s %-7s %-16s %-9s %-7s %s\n", "TIME", "PID", "COMM", "SIG", "TPID", "RESULT");

	for (;;) {
		err = bpf_buffer__poll(buf, 100 /* ms */);
		if (err == -EINTR) {
			err = 0;
			break;
		}
		if (err < 0) {
			fprintf(stderr, "sigsnoop: error polling the ring buffer: %d\n", err);
			break;
		}
	}

cleanup:
	if (buf)
		bpf_buffer__free(buf);
	sigsnoop_bpf__destroy(skel);
	return err ? 1 : 0;
}
