/* The user program whose stack tests/test_kernel_only_print.py reads: main calls
 * koprint_middle, which calls koprint_leaf (a uprobe's target); then it waits so its
 * /proc/PID/maps is there when the record is printed. */
#include <unistd.h>

__attribute__((noinline)) int koprint_leaf(int x)
{
	return x * 3 + 1;
}

__attribute__((noinline)) int koprint_middle(int x)
{
	return koprint_leaf(x) + 2;
}

int main(int argc, char **argv)
{
	volatile int r = koprint_middle(argc);

	(void)argv;
	sleep(3);
	return r == 0;
}
