/* Sampling from a small Qwen3 model on CPU: every layer and the sampling of every token in one C loop.
 *
 * The arithmetic of transformers' Qwen3ForCausalLM in float32 (RMSNorm, q/k norm on the head dim, rotate-half
 * RoPE, grouped-query attention, SwiGLU), for models so small that PyTorch spends a decode step on dispatching
 * ~100 tiny ops. A tile of up to TILE rows is in flight, each at its own position from its first prompt token to
 * its stop token, and a finished row's place goes to the next waiting row: neither padding nor finished rows are
 * computed. The tile shares each pass over the weights (stored transposed, `in x out`, so the products are
 * loops over the output dimension); each row's KV cache is its own. fused_decode.py compiles this file with
 * -O3 -march=native -ffast-math (vectorised exp and sums; the log-probs match the PyTorch model's to ~1e-6)
 * and packs the weights.
 *
 * Weights, one float buffer: per layer [in_norm hid | qkvT hid x (H+2KV)D | qk_norm (H+KV) x D (q's carries the
 * softmax scale) | oT HD x hid | post_norm hid | guT hid x 2I | downT I x hid], then [norm hid | headT hid x V |
 * embed V x hid]. RoPE tables: cos and sign-folded sin, (positions x D): rot(x)[d] = x[d] cos[d] + x[d^] sin[d]
 * where d^ is d's partner in the other half.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t layers, hidden, heads, kv_heads, head_dim, inter, vocab;
    float eps, temperature, top_p; /* temperature 0: greedy; top_p 1: no nucleus cut */
} Shape;

static void rms_norm(const float *x, const float *w, float *out, int64_t n, float eps) {
    float ss = 0.f;
    for (int64_t i = 0; i < n; i++) ss += x[i] * x[i];
    const float r = 1.f / sqrtf(ss / (float)n + eps);
    for (int64_t i = 0; i < n; i++) out[i] = w[i] * (x[i] * r);
}

/* out[r, 0:m] (+)= x[r, 0:n] @ wT (n x m) for each of `rows` rows (x's rows `xs` floats apart). Four input
 * features per pass: four weight rows stay in L1 while every row of the tile uses them, and each store of
 * `out` carries four multiply-adds. */
static void tile_matmul(const float *restrict x, int64_t xs, const float *restrict wT, float *restrict out,
                        int64_t rows, int64_t n, int64_t m, int accumulate) {
    if (!accumulate) memset(out, 0, (size_t)(rows * m) * sizeof(float));
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float *w0 = wT + i * m, *w1 = w0 + m, *w2 = w1 + m, *w3 = w2 + m;
        for (int64_t r = 0; r < rows; r++) {
            const float *xr = x + r * xs + i, a0 = xr[0], a1 = xr[1], a2 = xr[2], a3 = xr[3];
            float *o = out + r * m;
            for (int64_t j = 0; j < m; j++) o[j] += a0 * w0[j] + a1 * w1[j] + a2 * w2[j] + a3 * w3[j];
        }
    }
    for (; i < n; i++) {
        const float *w0 = wT + i * m;
        for (int64_t r = 0; r < rows; r++) {
            const float a0 = x[r * xs + i];
            float *o = out + r * m;
            for (int64_t j = 0; j < m; j++) o[j] += a0 * w0[j];
        }
    }
}

/* The next token from `logits` (modified in place) and its log-probability under the raw model. */
static int64_t sample(float *logits, float *probs, int64_t *order, int64_t V, float u, const Shape *s,
                      float *logprob) {
    float mx = logits[0];
    for (int64_t v = 1; v < V; v++) mx = logits[v] > mx ? logits[v] : mx;
    double z = 0.0;
    for (int64_t v = 0; v < V; v++) z += exp((double)(logits[v] - mx));
    const float lse = mx + (float)log(z);
    int64_t tok = 0;
    if (s->temperature == 0.f) {
        for (int64_t v = 1; v < V; v++) tok = logits[v] > logits[tok] ? v : tok;
    } else {
        double total = 0.0;
        for (int64_t v = 0; v < V; v++) {
            probs[v] = (float)exp((double)((logits[v] - mx) / s->temperature));
            total += probs[v];
        }
        if (s->top_p < 1.f) { /* nucleus: the smallest set of most likely tokens whose mass reaches top_p */
            for (int64_t v = 0; v < V; v++) order[v] = v;
            for (int64_t i = 1; i < V; i++) { /* insertion sort, descending: vocabularies here are small */
                int64_t o = order[i], j = i - 1;
                while (j >= 0 && probs[order[j]] < probs[o]) { order[j + 1] = order[j]; j--; }
                order[j + 1] = o;
            }
            double mass = 0.0, kept = 0.0;
            int64_t k = 0;
            for (; k < V && mass < s->top_p * total; k++) mass += probs[order[k]];
            for (int64_t i = k; i < V; i++) probs[order[i]] = 0.f;
            for (int64_t i = 0; i < k; i++) kept += probs[order[i]];
            total = kept;
        }
        /* inverse CDF: the first token whose cumulative probability exceeds u */
        const double target = (double)u * total;
        double cdf = 0.0;
        tok = -1;
        for (int64_t v = 0; v < V; v++) {
            cdf += probs[v];
            if (probs[v] > 0.f && cdf > target) { tok = v; break; }
        }
        if (tok < 0) for (int64_t v = V - 1; v >= 0; v--) if (probs[v] > 0.f) { tok = v; break; }
    }
    *logprob = logits[tok] - lse;
    return tok;
}

/* Attention of one row at position `pos` (its keys and values at 0..pos already written, both stored (D x S)
 * per key head, so every loop runs over slots, vectorised): out (H x D). */
static void attend(const float *restrict q_all, const float *restrict kl, const float *restrict vl,
                   float *restrict out, float *restrict scores, int64_t pos, int64_t H, int64_t KV, int64_t D,
                   int64_t S) {
    const int64_t G = H / KV, n = pos + 1;
    for (int64_t q = 0; q < H; q++) {
        const float *qv = q_all + q * D, *keys = kl + (q / G) * D * S, *vals = vl + (q / G) * D * S;
        for (int64_t p = 0; p < n; p++) scores[p] = qv[0] * keys[p];
        for (int64_t d = 1; d < D; d++) {
            const float qd = qv[d], *kd = keys + d * S;
            for (int64_t p = 0; p < n; p++) scores[p] += qd * kd[p];
        }
        float mx = scores[0], z = 0.f;
        for (int64_t p = 1; p < n; p++) mx = fmaxf(mx, scores[p]);
        for (int64_t p = 0; p < n; p++) scores[p] = expf(scores[p] - mx);
        for (int64_t p = 0; p < n; p++) z += scores[p];
        for (int64_t d = 0; d < D; d++) {
            const float *vd = vals + d * S;
            float acc = 0.f;
            for (int64_t p = 0; p < n; p++) acc += scores[p] * vd[p];
            out[q * D + d] = acc / z;
        }
    }
}

static void swiglu(float *restrict gate, const float *restrict up, int64_t n) {
    for (int64_t i = 0; i < n; i++) gate[i] = gate[i] / (1.f + expf(-gate[i])) * up[i];
}

#define TILE 8 /* rows that share each pass over the weights */

/* Rows [0, rows): prompt ids (rows x width, left-padded by pads[b]), uniforms (rows x max_new), outputs tokens
 * and logprobs (rows x max_new) and lengths (rows). Up to TILE rows are in flight, each at its own position;
 * a finished row's place goes to the next waiting row. Returns 0, or -1 when out of memory. */
int generate(const Shape *s, const float *weights, const float *cos_t, const float *sin_t, const int64_t *prompts,
             const int64_t *pads, int64_t rows, int64_t width, int64_t max_new, const float *uniforms,
             const int64_t *stops, int64_t n_stops, int64_t *tokens, float *logprobs, int64_t *lengths) {
    const int64_t L = s->layers, hid = s->hidden, H = s->heads, KV = s->kv_heads, D = s->head_dim;
    const int64_t I = s->inter, V = s->vocab, half = D / 2, QKV = (H + 2 * KV) * D;
    const int64_t S = width + max_new; /* positions a row can reach */
    const int64_t per_layer = hid + hid * QKV + (H + KV) * D + H * D * hid + hid + hid * 2 * I + I * hid;
    const float *final_norm = weights + L * per_layer, *headT = final_norm + hid, *embed = headT + hid * V;
    const int64_t per_row_cache = 2 * L * KV * S * D; /* keys, then values: (L, KV, D, S) each */

    float *work = malloc(sizeof(float) * (size_t)(TILE * (per_row_cache + 2 * hid + QKV + H * D + 2 * I + V + D)
                                                  + S + V));
    int64_t *order = malloc(sizeof(int64_t) * (size_t)V);
    if (!work || !order) { free(work); free(order); return -1; }
    float *cache = work, *x = cache + TILE * per_row_cache, *h = x + TILE * hid, *qkv = h + TILE * hid;
    float *att = qkv + TILE * QKV, *gu = att + TILE * H * D, *logits = gu + TILE * 2 * I, *tmp = logits + TILE * V;
    float *scores = tmp + TILE * D, *probs = scores + S;

    int64_t row_of[TILE], slot_of[TILE], act[TILE], sel[TILE], next = 0;
    for (int64_t r = 0; r < TILE; r++) row_of[r] = -1;
    for (;;) {
        int64_t n = 0, n_sel = 0;
        for (int64_t r = 0; r < TILE; r++) { /* refill free places, list the rows in flight */
            if (row_of[r] < 0 && next < rows) { row_of[r] = next; slot_of[r] = pads[next]; next++; }
            if (row_of[r] >= 0) act[n++] = r;
        }
        if (!n) break;
        for (int64_t k = 0; k < n; k++) {
            const int64_t b = row_of[act[k]], slot = slot_of[act[k]];
            const int64_t tok = slot < width ? prompts[b * width + slot] : tokens[b * max_new + slot - width];
            memcpy(x + k * hid, embed + tok * hid, sizeof(float) * (size_t)hid);
        }
        for (int64_t l = 0; l < L; l++) {
            const float *in_norm = weights + l * per_layer, *qkvT = in_norm + hid, *qk_norm = qkvT + hid * QKV;
            const float *oT = qk_norm + (H + KV) * D, *post_norm = oT + H * D * hid, *guT = post_norm + hid;
            const float *downT = guT + hid * 2 * I;
            for (int64_t k = 0; k < n; k++) rms_norm(x + k * hid, in_norm, h + k * hid, hid, s->eps);
            tile_matmul(h, hid, qkvT, qkv, n, hid, QKV, 0);
            for (int64_t k = 0; k < n; k++) {
                const int64_t r = act[k], pos = slot_of[r] - pads[row_of[r]];
                const float *cs = cos_t + pos * D, *sn = sin_t + pos * D;
                float *row_qkv = qkv + k * QKV, *t = tmp + k * D;
                float *kl = cache + r * per_row_cache + l * KV * D * S;
                float *vl = cache + r * per_row_cache + L * KV * D * S + l * KV * D * S;
                for (int64_t j = 0; j < H + KV; j++) { /* q and k heads: norm, then RoPE */
                    float *v = row_qkv + j * D;
                    rms_norm(v, qk_norm + j * D, t, D, s->eps);
                    for (int64_t d = 0; d < D; d++) v[d] = t[d] * cs[d] + t[d < half ? d + half : d - half] * sn[d];
                }
                for (int64_t kv = 0; kv < KV; kv++) {
                    const float *key = row_qkv + (H + kv) * D, *value = row_qkv + (H + KV + kv) * D;
                    for (int64_t d = 0; d < D; d++) {
                        kl[(kv * D + d) * S + pos] = key[d];
                        vl[(kv * D + d) * S + pos] = value[d];
                    }
                }
                attend(row_qkv, kl, vl, att + k * H * D, scores, pos, H, KV, D, S);
            }
            tile_matmul(att, H * D, oT, x, n, H * D, hid, 1);
            for (int64_t k = 0; k < n; k++) rms_norm(x + k * hid, post_norm, h + k * hid, hid, s->eps);
            tile_matmul(h, hid, guT, gu, n, hid, 2 * I, 0);
            for (int64_t k = 0; k < n; k++) swiglu(gu + k * 2 * I, gu + k * 2 * I + I, I);
            tile_matmul(gu, 2 * I, downT, x, n, I, hid, 1);
        }
        for (int64_t k = 0; k < n; k++) { /* rows past their prompt predict a token */
            if (slot_of[act[k]] < width - 1) continue;
            rms_norm(x + k * hid, final_norm, h + n_sel * hid, hid, s->eps);
            sel[n_sel++] = act[k];
        }
        tile_matmul(h, hid, headT, logits, n_sel, hid, V, 0);
        for (int64_t j = 0; j < n_sel; j++) {
            const int64_t r = sel[j], b = row_of[r], g = slot_of[r] - width + 1;
            const int64_t tok = sample(logits + j * V, probs, order, V, uniforms[b * max_new + g], s,
                                       &logprobs[b * max_new + g]);
            tokens[b * max_new + g] = tok;
            int stop = g == max_new - 1;
            for (int64_t i = 0; i < n_stops; i++) stop |= tok == stops[i];
            if (stop) { lengths[b] = g + 1; row_of[r] = -1; }
        }
        for (int64_t k = 0; k < n; k++) if (row_of[act[k]] >= 0) slot_of[act[k]]++;
    }
    free(work);
    free(order);
    return 0;
}
