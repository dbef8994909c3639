// SPDX-License-Identifier: MIT
/* runqlat: user side (WebAssembly). Every interval, reads the histogram map
 * through map operations, prints it and clears it.
 * Run with: wasm-bpf run runqlat.wasm -- [-m] [interval] [count] */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runqlat.h"
#include "runqlat.skel.h"

static const char usage[] =
	"Usage: runqlat [-m] [-h] [interval [count]]\n"
	"Summarise run queue latency (how long runnable tasks wait for a CPU)\n"
	"as a log2 histogram.\n"
	"\n"
	"  interval       seconds between histograms (default 1)\n"
	"  count          number of histograms, then exit (default: until Ctrl-C)\n"
	"  -m, --millis   histogram in milliseconds instead of microseconds\n"
	"  -h, --help     show this help\n"
	"\n"
	"Example: wasm-bpf run runqlat.wasm -- 1 5    # five 1-second histograms\n";

#define MAX_KEYS 16 /* = max_entries of the hists map */

static struct {
	bool millis;
	long interval_s;
	long count;
} env = { .interval_s = 1 };

static int parse_positive(const char *s, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v <= 0)
		return -1;
	*out = v;
	return 0;
}

static int parse_args(int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "millis", no_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "mh", long_opts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			env.millis = true;
			break;
		case 'h':
			fputs(usage, stdout);
			return 1;
		default:
			fputs(usage, stderr);
			return -1;
		}
	}
	if (optind < argc && parse_positive(argv[optind++], &env.interval_s)) {
		fprintf(stderr, "runqlat: invalid interval '%s'\n", argv[optind - 1]);
		return -1;
	}
	if (optind < argc && parse_positive(argv[optind++], &env.count)) {
		fprintf(stderr, "runqlat: invalid count '%s'\n", argv[optind - 1]);
		return -1;
	}
	if (optind < argc) {
		fprintf(stderr, "runqlat: unexpected argument '%s'\n", argv[optind]);
		fputs(usage, stderr);
		return -1;
	}
	return 0;
}

static void print_stars(uint64_t n, uint64_t max, int width)
{
	int stars = max ? (int)((n * width + max - 1) / max) : 0; /* round up: non-zero shows */

	if (stars > width)
		stars = width;
	for (int i = 0; i < width; i++)
		putchar(i < stars ? '*' : ' ');
}

static void print_log2_hist(const uint64_t *slots, int nr, const char *unit)
{
	int last = -1;
	uint64_t max = 0;

	for (int i = 0; i < nr; i++) {
		if (slots[i]) {
			last = i;
			if (slots[i] > max)
				max = slots[i];
		}
	}
	/* "%10llu -> %-10llu" below is 24 characters wide */
	printf("%15s%9s : count    distribution\n", unit, "");
	for (int i = 0; i <= last; i++) {
		unsigned long long low = i ? 1ULL << i : 0;
		unsigned long long high = (1ULL << (i + 1)) - 1;

		if (i == nr - 1)
			printf("%10llu -> %-10s : %-8llu |", low, "inf", (unsigned long long)slots[i]);
		else
			printf("%10llu -> %-10llu : %-8llu |", low, high, (unsigned long long)slots[i]);
		print_stars(slots[i], max, 40);
		printf("|\n");
	}
	if (last < 0)
		printf("%10s (no samples)\n", "");
}

/* Read every histogram in the map, print their sum, and delete them. */
static int print_and_clear(int fd)
{
	uint32_t keys[MAX_KEYS], next;
	int nkeys = 0, err = 0;
	struct hist total = {}, h;
	const void *prev = NULL; /* NULL: start from the first key */
	char ts[16];
	time_t now;

	while (nkeys < MAX_KEYS && (err = bpf_map_get_next_key(fd, prev, &next)) == 0) {
		keys[nkeys] = next;
		prev = &keys[nkeys++];
	}
	if (err && err != -ENOENT) {
		fprintf(stderr, "runqlat: cannot iterate the histogram map: %d\n", err);
		return err;
	}

	for (int k = 0; k < nkeys; k++) {
		err = bpf_map_lookup_elem(fd, &keys[k], &h);
		if (err == -ENOENT)
			continue;
		if (err) {
			fprintf(stderr, "runqlat: cannot read a histogram: %d\n", err);
			return err;
		}
		for (int i = 0; i < MAX_SLOTS; i++)
			total.slots[i] += h.slots[i];
		err = bpf_map_delete_elem(fd, &keys[k]);
		if (err && err != -ENOENT) {
			fprintf(stderr, "runqlat: cannot clear a histogram: %d\n", err);
			return err;
		}
	}

	now = time(NULL);
	strftime(ts, sizeof(ts), "%H:%M:%S", localtime(&now));
	printf("\n%s\n", ts);
	print_log2_hist(total.slots, MAX_SLOTS, env.millis ? "msecs" : "usecs");
	return 0;
}

static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Wait for ms milliseconds in short polls of a ring buffer that is never
 * written: unlike sleep(), a poll returns -EINTR as soon as the run is
 * stopped (Ctrl-C, SIGTERM, --timeout). */
static int wait_ms(struct bpf_buffer *buf, long long ms)
{
	long long deadline = now_ms() + ms, left;
	int err;

	while ((left = deadline - now_ms()) > 0) {
		err = bpf_buffer__poll(buf, left < 100 ? (int)left : 100);
		if (err < 0)
			return err;
	}
	return 0;
}

static int ignore_sample(void *ctx, void *data, size_t size)
{
	return 0;
}

int main(int argc, char **argv)
{
	struct bpf_buffer *ticks = NULL;
	struct runqlat_bpf *skel;
	int err, fd;

	setvbuf(stdout, NULL, _IOLBF, 0);

	err = parse_args(argc, argv);
	if (err)
		return err < 0 ? 1 : 0;

	skel = runqlat_bpf__open();
	if (!skel) {
		fprintf(stderr, "runqlat: failed to open the BPF skeleton\n");
		return 1;
	}

	skel->rodata->targ_ms = env.millis;

	err = runqlat_bpf__load(skel);
	if (err) {
		fprintf(stderr, "runqlat: failed to load the BPF object: %d\n", err);
		goto cleanup;
	}

	err = runqlat_bpf__attach(skel);
	if (err) {
		fprintf(stderr, "runqlat: failed to attach the BPF programs: %d\n", err);
		goto cleanup;
	}

	fd = bpf_map__fd(skel->maps.hists);
	if (fd < 0) {
		err = fd;
		fprintf(stderr, "runqlat: cannot find the histogram map: %d\n", err);
		goto cleanup;
	}

	ticks = bpf_buffer__open(skel->maps.ticks, ignore_sample, NULL);
	if (!ticks) {
		err = errno ? -errno : -1;
		fprintf(stderr, "runqlat: failed to open the wait buffer: %d\n", err);
		goto cleanup;
	}

	printf("Tracing run queue latency... Hit Ctrl-C to end.\n");

	for (long n = 0; env.count == 0 || n < env.count; n++) {
		int stop = wait_ms(ticks, env.interval_s * 1000LL);

		if (stop < 0 && stop != -EINTR) {
			err = stop;
			fprintf(stderr, "runqlat: error while waiting: %d\n", err);
			break;
		}
		/* on Ctrl-C, still show what was collected so far */
		err = print_and_clear(fd);
		if (err || stop == -EINTR)
			break;
	}

cleanup:
	if (ticks)
		bpf_buffer__free(ticks);
	runqlat_bpf__destroy(skel);
	return err ? 1 : 0;
}
