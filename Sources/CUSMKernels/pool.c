// A small persistent thread pool for the kernels: no allocation per call, workers spin briefly before sleeping so
// that back-to-back products (a streaming encoder step) do not pay a wake-up each time. (libdispatch's
// concurrentPerform on Linux withholds threads while other processes keep the CPUs busy, so it does not scale here.)
#include "usm_kernels.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#define USM_MAX_WORKERS 63

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;   // one job at a time
static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake_cond = PTHREAD_COND_INITIALIZER;
static int workers = 0;

static void (*job_fn)(void *, int32_t);
static void *job_ctx;
// generation (bits 40-63), then for jobs of more than 32 parts: parts (bits 20-38) | next part (bits 0-19); for
// jobs of at most 32 (bit 39 set): parts (bits 32-38) | one bit per part claimed (bits 0-31). One atomic, so a
// claim always names the job it belongs to and how many parts that job has.
static _Atomic uint64_t job_state;
#define USM_JOB_MASKED (1ULL << 39)
static _Atomic int32_t job_done;
// workers that may join the current job (threads - 1), and how many asked so far: a job of many parts for few
// threads runs on that many threads, whatever the number of workers an earlier job started
static _Atomic int32_t job_helpers_max, job_helpers;

static inline void usm_pause(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

// Claims part `part` of job `gen` and runs it unless another thread has; returns 0 once the current job is another.
static int claim_part(uint64_t gen, int32_t part) {
    const uint64_t bit = 1ULL << part;
    uint64_t s = atomic_load_explicit(&job_state, memory_order_acquire);
    for (;;) {
        if ((s >> 40) != gen) return 0;
        if (s & bit) return 1;  // taken
        if (atomic_compare_exchange_weak_explicit(&job_state, &s, s | bit, memory_order_acq_rel, memory_order_acquire)) {
            job_fn(job_ctx, part);
            atomic_fetch_add_explicit(&job_done, 1, memory_order_release);
            return 1;
        }
    }
}

// Claims and runs parts until the job (whichever generation is current) has none left; returns its generation.
// Jobs of at most 32 parts: thread `home` of T (the caller 0, worker w: w) takes the parts [P h / T, P (h + 1) / T)
// first, then what is left from the last part down. So with 2 threads the caller runs the first half of every job
// and the worker the second, as long as both are on time: consecutive jobs split the same way (rows of tokens, say)
// find their inputs in the cache of the core that wrote them, instead of the other core's
// (docs/decisions/0008-thread-work-sharing.md). A late or slow thread's parts go to the other.
static uint64_t run_parts(int32_t home) {
    uint64_t s = atomic_load_explicit(&job_state, memory_order_acquire);
    const uint64_t gen = s >> 40;
    if (!(s & USM_JOB_MASKED)) {
        // A claim is a compare-and-swap on the state just read, never a blind increment: once this job's last part
        // is done its caller may return and publish another job, perhaps of the other layout, and an increment
        // landing on that state would run a part it did not claim (twice, or past the job's parts) with a context
        // whose caller may have returned.
        for (;;) {
            if ((s >> 40) != gen) return gen;  // another job is current: the caller (a worker) joins it afresh
            const uint32_t idx = (uint32_t)(s & 0xFFFFF), parts = (uint32_t)((s >> 20) & 0x7FFFF);
            if (idx >= parts) return gen;
            if (atomic_compare_exchange_weak_explicit(&job_state, &s, s + 1, memory_order_acq_rel, memory_order_acquire)) {
                job_fn(job_ctx, (int32_t)idx);
                atomic_fetch_add_explicit(&job_done, 1, memory_order_release);
                s = atomic_load_explicit(&job_state, memory_order_acquire);
            }
        }
    }
    const int32_t parts = (int32_t)((s >> 32) & 0x7F);
    // the job's threads (its helpers and the caller), and this thread's own parts [lo, hi)
    const int32_t n = atomic_load_explicit(&job_helpers_max, memory_order_relaxed) + 1, h = home % n;
    const int32_t lo = (int32_t)((int64_t)parts * h / n), hi = (int32_t)((int64_t)parts * (h + 1) / n);
    for (int32_t p = lo; p < hi; p++)
        if (!claim_part(gen, p)) return gen;
    for (int32_t p = parts - 1; p >= 0; p--)
        if ((p < lo || p >= hi) && !claim_part(gen, p)) return gen;
    return gen;
}

// arg: the worker's home (bits 0-7) and the generation before the job that started it (bits 8-31), so a worker
// started for a job takes part in that job however late it starts.
static void *worker(void *arg) {
    const int32_t home = (int32_t)((uintptr_t)arg & 0xFF);
    uint64_t seen = ((uintptr_t)arg >> 8) & 0xFFFFFF;
    for (;;) {
        int spins = 0;
        while ((atomic_load_explicit(&job_state, memory_order_acquire) >> 40) == seen) {
            // spin briefly (back-to-back products), then yield (an oversubscribed CPU goes to whoever has work),
            // then sleep
            if (++spins < 2000) { usm_pause(); continue; }
            if (spins < 4000) { sched_yield(); continue; }
            pthread_mutex_lock(&wake_lock);
            while ((atomic_load(&job_state) >> 40) == seen) pthread_cond_wait(&wake_cond, &wake_lock);
            pthread_mutex_unlock(&wake_lock);
            break;
        }
        if (atomic_fetch_add_explicit(&job_helpers, 1, memory_order_acq_rel) <
            atomic_load_explicit(&job_helpers_max, memory_order_acquire))
            seen = run_parts(home);
        else
            seen = atomic_load_explicit(&job_state, memory_order_acquire) >> 40;  // not needed: wait for the next
    }
    return NULL;
}

int32_t usm_hardware_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int32_t)n;
}

void usm_parallel_for(int32_t parts, int32_t threads, void (*fn)(void *, int32_t), void *ctx) {
    if (parts <= 1 || threads <= 1 || parts >= (1 << 19) || pthread_mutex_trylock(&pool_lock) != 0) {
        // one thread, or busy with another stream's job: run inline
        for (int32_t i = 0; i < parts; i++) fn(ctx, i);
        return;
    }
    int helpers = (threads < parts ? threads : parts) - 1;
    int want = helpers < USM_MAX_WORKERS ? helpers : USM_MAX_WORKERS;
    const uintptr_t previous = (uintptr_t)(atomic_load(&job_state) >> 40) & 0xFFFFFF;
    while (workers < want) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, worker, (void *)((previous << 8) | (uintptr_t)(workers + 1))) != 0) {
            pthread_attr_destroy(&attr);
            break;
        }
        pthread_attr_destroy(&attr);
        workers++;
    }
    job_fn = fn;
    job_ctx = ctx;
    atomic_store(&job_done, 0);
    atomic_store(&job_helpers, 0);
    atomic_store(&job_helpers_max, want);
    uint64_t gen = ((atomic_load(&job_state) >> 40) + 1) & 0xFFFFFF;
    const uint64_t layout = parts <= 32 ? USM_JOB_MASKED | ((uint64_t)parts << 32) : ((uint64_t)parts << 20);
    pthread_mutex_lock(&wake_lock);
    atomic_store_explicit(&job_state, (gen << 40) | layout, memory_order_release);
    pthread_cond_broadcast(&wake_cond);
    pthread_mutex_unlock(&wake_lock);
    run_parts(0);
    for (int spins = 0; atomic_load_explicit(&job_done, memory_order_acquire) < parts; spins++) {
        if (spins < 2000) usm_pause();
        else sched_yield();  // a worker may be waiting for this CPU
    }
    pthread_mutex_unlock(&pool_lock);
}

int32_t usm_map_large_blocks(int64_t bytes) {
#if defined(__GLIBC__)
    return (int32_t)mallopt(M_MMAP_THRESHOLD, (int)bytes);
#else
    (void)bytes;
    return 0;
#endif
}

int32_t usm_release_free_heap(void) {
#if defined(__GLIBC__)
    return (int32_t)malloc_trim(0);
#else
    return 0;
#endif
}
