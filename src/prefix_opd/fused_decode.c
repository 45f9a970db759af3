/* Sampling from a small Qwen3 model on CPU, one sequence at a time, every layer and the sampling in one loop.
 *
 * The arithmetic of transformers' Qwen3ForCausalLM in float32 (RMSNorm, q/k norm on the head dim, rotate-half
 * RoPE, grouped-query attention, SwiGLU), for models so small that PyTorch spends a decode step on dispatching
 * ~100 tiny ops. Each row runs alone from its first prompt token to its stop token: no padding and no finished
 * rows are computed, and its KV cache (a few hundred KB) stays in the core's cache. Matrix-vector products are
 * written as axpy loops over the output dimension (weights stored transposed, `in x out`), which the compiler
 * vectorises without reassociating sums. fused_decode.py compiles this file and packs the weights.
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
    int64_t layers, hidden, heads, kv_heads, head_dim, inter, vocab, positions;
    float eps, temperature, top_p;
} Shape;

static void rms_norm(const float *x, const float *w, float *out, int64_t n, float eps) {
    float ss = 0.f;
    for (int64_t i = 0; i < n; i++) ss += x[i] * x[i];
    const float r = 1.f / sqrtf(ss / (float)n + eps);
    for (int64_t i = 0; i < n; i++) out[i] = w[i] * (x[i] * r);
}

/* out[0:m] (+)= x[0:n] @ wT (n x m) */
static void matvec(const float *x, const float *wT, float *out, int64_t n, int64_t m, int accumulate) {
    if (!accumulate) memset(out, 0, (size_t)m * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        const float xi = x[i];
        const float *row = wT + i * m;
        for (int64_t j = 0; j < m; j++) out[j] += xi * row[j];
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

/* Rows [0, rows): prompt ids (rows x width, left-padded by pads[b]), uniforms (rows x max_new), outputs tokens
 * and logprobs (rows x max_new) and lengths (rows). Returns 0, or -1 when out of memory. */
int generate(const Shape *s, const float *weights, const float *cos_t, const float *sin_t, const int64_t *prompts,
             const int64_t *pads, int64_t rows, int64_t width, int64_t max_new, const float *uniforms,
             const int64_t *stops, int64_t n_stops, int64_t *tokens, float *logprobs, int64_t *lengths) {
    const int64_t L = s->layers, hid = s->hidden, H = s->heads, KV = s->kv_heads, D = s->head_dim;
    const int64_t I = s->inter, V = s->vocab, G = H / KV, half = D / 2, QKV = (H + 2 * KV) * D;
    const int64_t S = width + max_new; /* positions a row can reach */
    const int64_t per_layer = hid + hid * QKV + (H + KV) * D + H * D * hid + hid + hid * 2 * I + I * hid;
    const float *final_norm = weights + L * per_layer, *headT = final_norm + hid, *embed = headT + hid * V;

    float *work = malloc(sizeof(float) * (size_t)(2 * L * KV * S * D + 3 * hid + QKV + H * D + 2 * I + S + 2 * V));
    int64_t *order = malloc(sizeof(int64_t) * (size_t)V);
    if (!work || !order) { free(work); free(order); return -1; }
    float *kT = work;                        /* (L, KV, D, S): keys transposed, scores vectorise over slots */
    float *vals = kT + L * KV * D * S;       /* (L, KV, S, D) */
    float *x = vals + L * KV * S * D, *h = x + hid, *qkv = h + hid, *att = qkv + QKV, *gu = att + H * D;
    float *scores = gu + 2 * I, *logits = scores + S, *probs = logits + V;

    for (int64_t b = 0; b < rows; b++) {
        const int64_t pad = pads[b], *prompt = prompts + b * width;
        int64_t *out = tokens + b * max_new;
        float *out_lp = logprobs + b * max_new;
        int64_t generated = 0;
        for (int64_t slot = pad; slot < width + max_new - 1; slot++) {
            const int64_t pos = slot - pad, tok = slot < width ? prompt[slot] : out[slot - width];
            memcpy(x, embed + tok * hid, sizeof(float) * (size_t)hid);
            const float *cs = cos_t + pos * D, *sn = sin_t + pos * D;
            for (int64_t l = 0; l < L; l++) {
                const float *in_norm = weights + l * per_layer, *qkvT = in_norm + hid, *qk_norm = qkvT + hid * QKV;
                const float *oT = qk_norm + (H + KV) * D, *post_norm = oT + H * D * hid, *guT = post_norm + hid;
                const float *downT = guT + hid * 2 * I;
                float *kl = kT + l * KV * D * S, *vl = vals + l * KV * S * D;
                rms_norm(x, in_norm, h, hid, s->eps);
                matvec(h, qkvT, qkv, hid, QKV, 0);
                for (int64_t j = 0; j < H + KV; j++) { /* q and k heads: norm, then RoPE */
                    float *v = qkv + j * D, tmp[D];
                    rms_norm(v, qk_norm + j * D, tmp, D, s->eps);
                    for (int64_t d = 0; d < D; d++) v[d] = tmp[d] * cs[d] + tmp[d < half ? d + half : d - half] * sn[d];
                }
                for (int64_t k = 0; k < KV; k++) {
                    const float *key = qkv + (H + k) * D, *value = qkv + (H + KV + k) * D;
                    for (int64_t d = 0; d < D; d++) kl[(k * D + d) * S + pos] = key[d];
                    memcpy(vl + (k * S + pos) * D, value, sizeof(float) * (size_t)D);
                }
                for (int64_t q = 0; q < H; q++) {
                    const int64_t k = q / G;
                    const float *qv = qkv + q * D, *keys = kl + k * D * S, *vs = vl + k * S * D;
                    for (int64_t p = 0; p <= pos; p++) scores[p] = 0.f;
                    for (int64_t d = 0; d < D; d++) {
                        const float qd = qv[d], *kd = keys + d * S;
                        for (int64_t p = 0; p <= pos; p++) scores[p] += qd * kd[p];
                    }
                    float mx = scores[0], z = 0.f;
                    for (int64_t p = 1; p <= pos; p++) mx = scores[p] > mx ? scores[p] : mx;
                    for (int64_t p = 0; p <= pos; p++) { scores[p] = expf(scores[p] - mx); z += scores[p]; }
                    float *o = att + q * D;
                    memset(o, 0, sizeof(float) * (size_t)D);
                    for (int64_t p = 0; p <= pos; p++) {
                        const float w = scores[p] / z, *vp = vs + p * D;
                        for (int64_t d = 0; d < D; d++) o[d] += w * vp[d];
                    }
                }
                matvec(att, oT, x, H * D, hid, 1);
                rms_norm(x, post_norm, h, hid, s->eps);
                matvec(h, guT, gu, hid, 2 * I, 0);
                for (int64_t i = 0; i < I; i++) gu[i] = gu[i] / (1.f + expf(-gu[i])) * gu[I + i];
                matvec(gu, downT, x, I, hid, 1);
            }
            if (slot < width - 1) continue; /* still reading the prompt */
            rms_norm(x, final_norm, h, hid, s->eps);
            matvec(h, headT, logits, hid, V, 0);
            const int64_t g = slot - width + 1;
            const int64_t next = sample(logits, probs, order, V, uniforms[b * max_new + g], s, &out_lp[g]);
            out[g] = next;
            generated = g + 1;
            int stop = 0;
            for (int64_t i = 0; i < n_stops; i++) stop |= next == stops[i];
            if (stop) break;
        }
        lengths[b] = generated;
    }
    free(work);
    free(order);
    return 0;
}
