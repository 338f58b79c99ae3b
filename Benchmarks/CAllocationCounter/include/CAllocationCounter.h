#ifndef C_ALLOCATION_COUNTER_H
#define C_ALLOCATION_COUNTER_H

/// Allocation calls (malloc, calloc, realloc, posix_memalign, aligned_alloc) since the process
/// started; 0 where interposition is not supported (not Linux with glibc).
unsigned long long oa_allocation_count(void);

#endif
