/* Gaussian blur of odd size K and width σ, normalised weights, zero padding K/2, one plane per
 * (b, c). The 2-D kernel is the outer product of the 1-D one (each normalised, so their product
 * is too), so the fast path is a vertical K-tap pass into a short row buffer followed by a
 * horizontal K-tap pass from it: 2K taps per pixel instead of K² and no image-sized scratch.
 * The kernel is symmetric, so the adjoint (backward) is the same blur. */
#include <math.h>
#include "kernels/ops.h"

#define BLUR_CHUNK 256   // row segment per buffer fill: ≤ 2 KiB of stack with the largest K, stays in L1

/* The 1-D weights exp(−½((i − R)/σ)²)/Σ in double, rounded once. */
static void blur_weights(float *g, int K, double sigma) {
    const int R = K / 2;
    double e[BLUR_K_MAX], s = 0;
    for (int i = 0; i < K; i++) { double t = (i - R) / sigma; e[i] = exp(-0.5 * t * t); s += e[i]; }
    for (int i = 0; i < K; i++) g[i] = (float)(e[i] / s);
}

/* dst (+)= blur(src) for all planes; accumulate selects += (backward) over = (forward). */
static void blur_planes(float *dst, const float *src, long nplane, int H, int W, int K, double sigma, int accumulate) {
    ERR_ASSERT(K >= 1 && K % 2 == 1 && K <= BLUR_K_MAX && sigma > 0, "blur: K %d sigma %g outside odd 1..%d, > 0", K,
               sigma, BLUR_K_MAX);
    const int R = K / 2;
    float g[BLUR_K_MAX];
    blur_weights(g, K, sigma);
    const long nrow = nplane * H;
    #pragma omp parallel for schedule(static)
    for (long row = 0; row < nrow; row++) {
        const long plane = row / H;
        const int y = (int)(row % H);
        const float *s = src + plane * H * W;
        float *d = dst + row * W;
        for (int x0 = 0; x0 < W; x0 += BLUR_CHUNK) {
            const int n = W - x0 < BLUR_CHUNK ? W - x0 : BLUR_CHUNK;
            // buf[t] = vertical blur at column x0 − R + t; columns outside the image stay 0
            float buf[BLUR_CHUNK + BLUR_K_MAX];
            for (int t = 0; t < n + 2 * R; t++) buf[t] = 0.0f;
            const int tlo = x0 < R ? R - x0 : 0;
            const int thi = W - x0 + R < n + 2 * R ? W - x0 + R : n + 2 * R;
            for (int k = 0; k < K; k++) {
                const int yy = y + k - R;
                if (yy < 0 || yy >= H) continue;
                const float *sr = s + (long)yy * W + x0, gk = g[k];
                #pragma omp simd
                for (int t = tlo; t < thi; t++) buf[t] += gk * sr[t - R];
            }
            if (accumulate) {
                #pragma omp simd
                for (int x = 0; x < n; x++) {
                    float v = 0.0f;
                    for (int k = 0; k < K; k++) v += g[k] * buf[x + k];
                    d[x0 + x] += v;
                }
            } else {
                #pragma omp simd
                for (int x = 0; x < n; x++) {
                    float v = 0.0f;
                    for (int k = 0; k < K; k++) v += g[k] * buf[x + k];
                    d[x0 + x] = v;
                }
            }
        }
    }
}

void blur_forward(float *out, const float *img, int B, int C, int H, int W, int K, double sigma) {
    blur_planes(out, img, (long)B * C, H, W, K, sigma, 0);
}

void blur_backward(float *dimg, const float *dout, int B, int C, int H, int W, int K, double sigma) {
    blur_planes(dimg, dout, (long)B * C, H, W, K, sigma, 1);
}

/* The reference uses the direct K² 2-D kernel exp(−(dy² + dx²)/(2σ²))/Σ, so comparing it with
 * the fast path checks the separable factorisation too. G holds K·K doubles. */
static void blur_weights2d_ref(double *G, int K, double sigma) {
    const int R = K / 2;
    double s = 0;
    for (int a = 0; a < K; a++)
        for (int c = 0; c < K; c++) {
            G[a * K + c] = exp(-((a - R) * (a - R) + (c - R) * (c - R)) / (2 * sigma * sigma));
            s += G[a * K + c];
        }
    for (int i = 0; i < K * K; i++) G[i] /= s;
}

void blur_forward_ref(double *out, const double *img, int B, int C, int H, int W, int K, double sigma) {
    const int R = K / 2;
    double G[BLUR_K_MAX * BLUR_K_MAX];
    blur_weights2d_ref(G, K, sigma);
    for (long p = 0; p < (long)B * C; p++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                double s = 0;
                for (int a = 0; a < K; a++)
                    for (int c = 0; c < K; c++) {
                        int yy = y + a - R, xx = x + c - R;
                        if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;   // zero padding
                        s += G[a * K + c] * img[(p * H + yy) * W + xx];
                    }
                out[(p * H + y) * W + x] = s;
            }
}

/* The adjoint written as the transpose of the forward (a scatter), not by appeal to symmetry. */
void blur_backward_ref(double *dimg, const double *dout, int B, int C, int H, int W, int K, double sigma) {
    const int R = K / 2;
    double G[BLUR_K_MAX * BLUR_K_MAX];
    blur_weights2d_ref(G, K, sigma);
    for (long p = 0; p < (long)B * C; p++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                const double g = dout[(p * H + y) * W + x];
                for (int a = 0; a < K; a++)
                    for (int c = 0; c < K; c++) {
                        int yy = y + a - R, xx = x + c - R;
                        if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
                        dimg[(p * H + yy) * W + xx] += G[a * K + c] * g;
                    }
            }
}
