// Counts allocation calls by interposing glibc's entry points in the benchmark executable and
// forwarding each to glibc's own implementation. Single-threaded benchmarks only need a plain
// counter; frees are not counted.
#include "CAllocationCounter.h"

#include <stdlib.h>

#if defined(__linux__)
#include <errno.h>
#include <stddef.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

static unsigned long long allocation_count;

void *malloc(size_t size) {
    allocation_count++;
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
    allocation_count++;
    return __libc_calloc(count, size);
}

void *realloc(void *pointer, size_t size) {
    allocation_count++;
    return __libc_realloc(pointer, size);
}

int posix_memalign(void **result, size_t alignment, size_t size) {
    allocation_count++;
    void *pointer = __libc_memalign(alignment, size);
    if (pointer == NULL) return ENOMEM;
    *result = pointer;
    return 0;
}

void *aligned_alloc(size_t alignment, size_t size) {
    allocation_count++;
    return __libc_memalign(alignment, size);
}

// Referenced here so the release build's dead-code stripping keeps the interposers: only shared
// libraries call them, which the linker's reachability analysis does not see.
static void *volatile keep_interposers[] = {
    (void *)malloc, (void *)calloc, (void *)realloc, (void *)posix_memalign, (void *)aligned_alloc,
};

unsigned long long oa_allocation_count(void) {
    (void)keep_interposers[0];
    return allocation_count;
}
#else
unsigned long long oa_allocation_count(void) { return 0; }
#endif
