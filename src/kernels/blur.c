/* 9×9 Gaussian blur, σ = 1, normalised weights, zero padding 4, one plane per (b, c).
 * The 2-D kernel is the outer product of the 1-D one, so the fast path is a vertical 9-tap
 * pass into a short row buffer followed by a horizontal 9-tap pass from it: 18 taps per pixel
 * instead of 81 and no image-sized scratch. The kernel is symmetric, so the adjoint (backward)
 * is the same blur. */
#include <math.h>
#include "kernels/ops.h"

#define BLUR_R 4
#define BLUR_K (2 * BLUR_R + 1)
#define BLUR_CHUNK 256   // row segment per buffer fill: 1 KiB of stack, stays in L1

static void blur_weights(float g[BLUR_K]) {
    double e[BLUR_K], s = 0;
    for (int i = 0; i < BLUR_K; i++) { e[i] = exp(-0.5 * (i - BLUR_R) * (i - BLUR_R)); s += e[i]; }
    for (int i = 0; i < BLUR_K; i++) g[i] = (float)(e[i] / s);
}

/* dst (+)= blur(src) for all planes; accumulate selects += (backward) over = (forward). */
static void blur_planes(float *dst, const float *src, long nplane, int H, int W, int accumulate) {
    float g[BLUR_K];
    blur_weights(g);
    const long nrow = nplane * H;
    #pragma omp parallel for schedule(static)
    for (long row = 0; row < nrow; row++) {
        const long plane = row / H;
        const int y = (int)(row % H);
        const float *s = src + plane * H * W;
        float *d = dst + row * W;
        for (int x0 = 0; x0 < W; x0 += BLUR_CHUNK) {
            const int n = W - x0 < BLUR_CHUNK ? W - x0 : BLUR_CHUNK;
            // buf[t] = vertical blur at column x0 − 4 + t; columns outside the image stay 0
            float buf[BLUR_CHUNK + 2 * BLUR_R];
            for (int t = 0; t < n + 2 * BLUR_R; t++) buf[t] = 0.0f;
            const int tlo = x0 < BLUR_R ? BLUR_R - x0 : 0;
            const int thi = W - x0 + BLUR_R < n + 2 * BLUR_R ? W - x0 + BLUR_R : n + 2 * BLUR_R;
            for (int k = 0; k < BLUR_K; k++) {
                const int yy = y + k - BLUR_R;
                if (yy < 0 || yy >= H) continue;
                const float *sr = s + (long)yy * W + x0, gk = g[k];
                #pragma omp simd
                for (int t = tlo; t < thi; t++) buf[t] += gk * sr[t - BLUR_R];
            }
            if (accumulate) {
                #pragma omp simd
                for (int x = 0; x < n; x++) {
                    float v = 0.0f;
                    for (int k = 0; k < BLUR_K; k++) v += g[k] * buf[x + k];
                    d[x0 + x] += v;
                }
            } else {
                #pragma omp simd
                for (int x = 0; x < n; x++) {
                    float v = 0.0f;
                    for (int k = 0; k < BLUR_K; k++) v += g[k] * buf[x + k];
                    d[x0 + x] = v;
                }
            }
        }
    }
}

void blur9_forward(float *out, const float *img, int B, int C, int H, int W) {
    blur_planes(out, img, (long)B * C, H, W, 0);
}

void blur9_backward(float *dimg, const float *dout, int B, int C, int H, int W) {
    blur_planes(dimg, dout, (long)B * C, H, W, 1);
}

/* The reference uses the direct 81-tap 2-D kernel exp(−(dy² + dx²)/2)/Σ, so comparing it
 * with the fast path checks the separable factorisation too. */
static void blur_weights2d_ref(double G[BLUR_K][BLUR_K]) {
    double s = 0;
    for (int a = 0; a < BLUR_K; a++)
        for (int c = 0; c < BLUR_K; c++) {
            G[a][c] = exp(-0.5 * ((a - BLUR_R) * (a - BLUR_R) + (c - BLUR_R) * (c - BLUR_R)));
            s += G[a][c];
        }
    for (int a = 0; a < BLUR_K; a++)
        for (int c = 0; c < BLUR_K; c++) G[a][c] /= s;
}

void blur9_forward_ref(double *out, const double *img, int B, int C, int H, int W) {
    double G[BLUR_K][BLUR_K];
    blur_weights2d_ref(G);
    for (long p = 0; p < (long)B * C; p++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                double s = 0;
                for (int a = 0; a < BLUR_K; a++)
                    for (int c = 0; c < BLUR_K; c++) {
                        int yy = y + a - BLUR_R, xx = x + c - BLUR_R;
                        if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;   // zero padding
                        s += G[a][c] * img[(p * H + yy) * W + xx];
                    }
                out[(p * H + y) * W + x] = s;
            }
}

/* The adjoint written as the transpose of the forward (a scatter), not by appeal to symmetry. */
void blur9_backward_ref(double *dimg, const double *dout, int B, int C, int H, int W) {
    double G[BLUR_K][BLUR_K];
    blur_weights2d_ref(G);
    for (long p = 0; p < (long)B * C; p++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                const double g = dout[(p * H + y) * W + x];
                for (int a = 0; a < BLUR_K; a++)
                    for (int c = 0; c < BLUR_K; c++) {
                        int yy = y + a - BLUR_R, xx = x + c - BLUR_R;
                        if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
                        dimg[(p * H + yy) * W + xx] += G[a][c] * g;
                    }
            }
}
