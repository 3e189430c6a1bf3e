// Times the 1-bit single-token kernels alone (no activation quantization, no dispatch) on cold weights: 256 MB of
// distinct copies of a packed matrix (w1a5 lookup layout, u8 block-64 scale codes, per-row factors) cycled, 1 thread,
// best of 5 batches of 0.2 s. Arguments: ROWS K [KERNEL: 0 lookup (usm_lut1a6_gemm, fold 1), 1 popcount
// (usm_popcnt1_gemv, 5-bit codes)] [N tokens, lookup only: 1, or 8 for a streaming chunk]. Used to pick the prefetch
// distances in kernels_x86*.c (override them with -D, e.g. -DUSM_LUT6_PF=1024). Build and run from the repository root:
//   clang -O2 -ISources/CUSMKernels/include -ISources/CUSMKernels Benchmarks/c/gemv-cold.c \
//     Sources/CUSMKernels/{kernels,kernels_x86_int,kernels_x86_onebit,kernels_x86_quant,kernels_x86_f32,kernels_x86_attention,elementwise,pool}.c -lm -lpthread -o /tmp/gc && /tmp/gc 6144 1536 0 1
#include "usm_kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s ROWS K [0 lookup | 1 popcount] [N]\n", argv[0]); return 2; }
    const int rows = atoi(argv[1]), k = atoi(argv[2]), pop = argc > 3 ? atoi(argv[3]) : 0, n = argc > 4 ? atoi(argv[4]) : 1;
    if (rows < 16 || k < 64 || k % 64 || k > 8192 || n < 1 || n > 8 || (pop && n != 1)) { fprintf(stderr, "bad shape\n"); return 2; }
    const int tiles = (rows + 15) / 16, nb = k / 64, chunks = k / 32;
    const size_t wb = (size_t)tiles * chunks * 64, sb = (size_t)tiles * nb * 16, fb = (size_t)tiles * 16 * 4;
    const size_t per = wb + sb + fb + 4096;
    const int copies = (int)(256e6 / per) + 1;
    uint8_t *mem = aligned_alloc(64, per * copies);
    for (size_t i = 0; i < per * copies; i++) mem[i] = (uint8_t)((i * 2654435761u) >> 13);
    static int8_t x[8 * 8192];
    static float sx[8 * 128], y[8 * 8192];
    for (int i = 0; i < n * k; i++) x[i] = (int8_t)((i * 7) % 31 - 15);
    for (int i = 0; i < n * nb; i++) sx[i] = 0.01f;
    uint8_t *scratch = aligned_alloc(64, usm_lut1a6_gemm_scratch(k) + usm_popcnt1_scratch(k, nb) + 4096);
    double best = 1e9;
    for (int rep = 0; rep < 5; rep++) {
        long calls = 0;
        const double t0 = now();
        while (now() - t0 < 0.2) {
            for (int c = 0; c < copies; c++, calls++) {
                uint8_t *b = mem + per * c;
                usm_qgemm_args a;
                memset(&a, 0, sizeof a);
                a.w = b; a.scale = b + wb; a.corr = a.scale; a.fa = (const float *)(b + wb + sb);
                a.x = x; a.sx = sx; a.y = y;
                a.rows = rows; a.groups = k / 4; a.nb = nb; a.block_groups = 16; a.xstride = k; a.ystride = rows;
                a.bits = 1; a.shift = 1; a.offset = 1; a.scale_u8 = 1; a.corr_is_scale = 1;
                int64_t next[1] = {0};
                if (pop) usm_popcnt1_gemv(&a, 5, scratch, 0, tiles, 0, 1);
                else usm_lut1a6_gemm(&a, 1, scratch, next, 0, 1, 1, 1, 0, tiles, 0, n, -1);
            }
        }
        const double dt = (now() - t0) / calls;
        if (dt < best) best = dt;
    }
    printf("%s %dx%d N=%d cold %.1f us, %.1f GB/s of weights, scales and row factors\n", pop ? "popcount" : "lookup",
           rows, k, n, best * 1e6, (wb + sb + fb) / best / 1e9);
    return 0;
}
