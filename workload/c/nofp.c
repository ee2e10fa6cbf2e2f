/* A CPU-bound workload for the DWARF unwinding tests: main -> outer -> leaf, built with
 * -fomit-frame-pointer, so only the binary's CFI (.eh_frame) can find leaf's callers.
 * Every function keeps a frame of its own (noinline, work after each call: no tail calls). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile unsigned long sink;

__attribute__((noinline)) unsigned long leaf(unsigned long n)
{
	unsigned long x = n;
	for (unsigned long i = 0; i < 200000; i++)
		x = x * 6364136223846793005UL + 1442695040888963407UL;
	return x;
}

__attribute__((noinline)) unsigned long outer(unsigned long n)
{
	/* A big local array keeps outer's frame away from leaf's, as real callers' frames are. */
	volatile unsigned long scratch[64];
	scratch[n % 64] = leaf(n);
	return scratch[n % 64] + 1;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 3.0;
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	unsigned long n;
	for (n = 0;; n++) {
		sink += outer(n);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 >= seconds)
			break;
	}
	/* Calls per second, for the benchmark's workload slowdown. */
	printf("%.1f\n", n / seconds);
	return 0;
}
