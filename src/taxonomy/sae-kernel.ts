/**
 * The inner loop of Top-K SAE training, shared by the main thread and worker threads.
 *
 * Gradients are accumulated for the UNSCALED squared error S = Σ‖x̂ − x‖²: every gradient is linear in
 * the residual, so the caller multiplies by 2/D once the whole batch's D = Σ‖x − mean_batch‖² is known.
 * This lets several threads each take a slice of the batch with a single join per step.
 */

export interface SaeParams {
  /** Latents K. */
  latents: number;
  /** Input width d. */
  dim: number;
  /** Active latents per input (paper: 3). */
  topK: number;
  /** Encoder weight, row-major [K, d]. */
  wEnc: Float32Array;
  /** Encoder bias [K]. */
  bEnc: Float32Array;
  /** Decoder weight, row-major [K, d]; rows kept at unit norm. */
  wDec: Float32Array;
  /** Decoder bias [d] (also subtracted before encoding). */
  bDec: Float32Array;
}

/** Per-thread accumulators. `stats` = [Σ squared error, Σ‖x‖²]; `colSum` = Σ x (for D). */
export interface GradBuffers {
  gWEnc: Float32Array;
  gBEnc: Float64Array;
  gWDec: Float32Array;
  gBDec: Float64Array;
  /** Σ over rows of ∂S/∂z_j (needed for the b_dec term that flows through the encoder). */
  dzSum: Float64Array;
  colSum: Float64Array;
  stats: Float64Array;
}

export function allocGrads(latents: number, dim: number, shared = false): GradBuffers {
  const make = (n: number) => (shared ? new Float64Array(new SharedArrayBuffer(n * 8)) : new Float64Array(n));
  // The two big matrices are float32 (as in the reference) to halve memory traffic in the hot loop.
  const make32 = (n: number) => (shared ? new Float32Array(new SharedArrayBuffer(n * 4)) : new Float32Array(n));
  return {
    gWEnc: make32(latents * dim),
    gBEnc: make(latents),
    gWDec: make32(latents * dim),
    gBDec: make(dim),
    dzSum: make(latents),
    colSum: make(dim),
    stats: make(2),
  };
}

export function zeroGrads(g: GradBuffers): void {
  g.gWEnc.fill(0);
  g.gBEnc.fill(0);
  g.gWDec.fill(0);
  g.gBDec.fill(0);
  g.dzSum.fill(0);
  g.colSum.fill(0);
  g.stats.fill(0);
}

/** Scratch memory for one thread, allocated once. */
export interface Scratch {
  xc: Float32Array;
  resid: Float32Array;
  z: Float64Array;
  topIdx: Int32Array;
  topVal: Float64Array;
}

export function allocScratch(p: { latents: number; dim: number; topK: number }): Scratch {
  return {
    xc: new Float32Array(p.dim),
    resid: new Float32Array(p.dim),
    z: new Float64Array(p.latents),
    topIdx: new Int32Array(p.topK),
    topVal: new Float64Array(p.topK),
  };
}

/** Indices and values of the k largest entries of z (ties: lower index first), descending. */
export function selectTopK(z: Float64Array, k: number, idx: Int32Array, val: Float64Array): void {
  for (let t = 0; t < k; t++) {
    idx[t] = -1;
    val[t] = Number.NEGATIVE_INFINITY;
  }
  for (let j = 0; j < z.length; j++) {
    const v = z[j];
    if (v <= val[k - 1] && idx[k - 1] >= 0) continue;
    let t = k - 1;
    while (t > 0 && (idx[t - 1] < 0 || v > val[t - 1])) {
      val[t] = val[t - 1];
      idx[t] = idx[t - 1];
      t--;
    }
    val[t] = v;
    idx[t] = j;
  }
}

/**
 * Forward + backward for rows `order[from..to)` of X (row-major [n, d]), adding into `g`.
 * Encode z = W_enc(x − b_dec) + b_enc (no ReLU); keep the top-k; x̂ = Σ z_j W_dec[j] + b_dec.
 */
export function accumulateRows(
  p: SaeParams,
  X: Float32Array,
  order: Int32Array,
  from: number,
  to: number,
  g: GradBuffers,
  s: Scratch,
): void {
  const { dim, latents, topK, wEnc, bEnc, bDec } = p;
  const { xc, resid, z, topIdx, topVal } = s;
  const { colSum, stats } = g;
  let sqErr = 0;
  let sqX = 0;
  for (let t = from; t < to; t++) {
    const base = order[t] * dim;
    for (let d = 0; d < dim; d++) {
      const x = X[base + d];
      colSum[d] += x;
      sqX += x * x;
      xc[d] = x - bDec[d];
      resid[d] = bDec[d] - x;
    }
    // Encoder: two latents per pass so each xc load feeds two dot products.
    let j = 0;
    for (; j + 1 < latents; j += 2) {
      const w0 = j * dim;
      const w1 = w0 + dim;
      let a0 = 0;
      let a1 = 0;
      let b0 = 0;
      let b1 = 0;
      let d = 0;
      for (; d + 1 < dim; d += 2) {
        const x0 = xc[d];
        const x1 = xc[d + 1];
        a0 += wEnc[w0 + d] * x0;
        b0 += wEnc[w1 + d] * x0;
        a1 += wEnc[w0 + d + 1] * x1;
        b1 += wEnc[w1 + d + 1] * x1;
      }
      for (; d < dim; d++) {
        a0 += wEnc[w0 + d] * xc[d];
        b0 += wEnc[w1 + d] * xc[d];
      }
      z[j] = a0 + a1 + bEnc[j];
      z[j + 1] = b0 + b1 + bEnc[j + 1];
    }
    for (; j < latents; j++) {
      const w = j * dim;
      let a = 0;
      for (let d = 0; d < dim; d++) a += wEnc[w + d] * xc[d];
      z[j] = a + bEnc[j];
    }
    selectTopK(z, topK, topIdx, topVal);
    if (topK === 3) {
      sqErr += backward3(p, xc, resid, topIdx, topVal, g);
    } else {
      sqErr += backwardAny(p, xc, resid, topIdx, topVal, g);
    }
  }
  stats[0] += sqErr;
  stats[1] += sqX;
}

/**
 * After all rows of a batch are accumulated into `g`: add the b_dec term that flows through the encoder
 * input and return the batch loss (FVU) and the factor 2/D that turns the accumulated sums into
 * gradients of the loss.
 */
export function finishBatch(p: SaeParams, g: GradBuffers, rows: number): { loss: number; scale: number } {
  const { dim, latents, wEnc } = p;
  // D = Σ‖x‖² − rows·‖mean‖², the batch's total variance.
  let sumSq = 0;
  for (let d = 0; d < dim; d++) sumSq += g.colSum[d] * g.colSum[d];
  const variance = Math.max(g.stats[1] - sumSq / rows, 1e-30);
  for (let j = 0; j < latents; j++) {
    const dz = g.dzSum[j];
    if (dz === 0) continue;
    for (let d = 0; d < dim; d++) g.gBDec[d] -= dz * wEnc[j * dim + d];
  }
  return { loss: g.stats[0] / variance, scale: 2 / variance };
}

/**
 * Decode and backward for one row with top-3 (the paper's k), all three latents fused into each pass.
 * On entry resid = b_dec − x; returns this row's squared error.
 */
function backward3(
  p: SaeParams,
  xc: Float32Array,
  resid: Float32Array,
  idx: Int32Array,
  val: Float64Array,
  g: GradBuffers,
): number {
  const { dim, wDec } = p;
  const { gWEnc, gWDec, gBDec } = g;
  const w0 = idx[0] * dim;
  const w1 = idx[1] * dim;
  const w2 = idx[2] * dim;
  const v0 = val[0];
  const v1 = val[1];
  const v2 = val[2];
  let sq = 0;
  let da0 = 0;
  let da1 = 0;
  let da2 = 0;
  for (let d = 0; d < dim; d++) {
    const u0 = wDec[w0 + d];
    const u1 = wDec[w1 + d];
    const u2 = wDec[w2 + d];
    const r = resid[d] + v0 * u0 + v1 * u1 + v2 * u2;
    resid[d] = r;
    sq += r * r;
    gBDec[d] += r;
    da0 += r * u0;
    da1 += r * u1;
    da2 += r * u2;
    gWDec[w0 + d] += v0 * r;
    gWDec[w1 + d] += v1 * r;
    gWDec[w2 + d] += v2 * r;
  }
  for (let d = 0; d < dim; d++) {
    const x = xc[d];
    gWEnc[w0 + d] += da0 * x;
    gWEnc[w1 + d] += da1 * x;
    gWEnc[w2 + d] += da2 * x;
  }
  g.gBEnc[idx[0]] += da0;
  g.gBEnc[idx[1]] += da1;
  g.gBEnc[idx[2]] += da2;
  g.dzSum[idx[0]] += da0;
  g.dzSum[idx[1]] += da1;
  g.dzSum[idx[2]] += da2;
  return sq;
}

/** The same for any k, one latent per pass. */
function backwardAny(
  p: SaeParams,
  xc: Float32Array,
  resid: Float32Array,
  idx: Int32Array,
  val: Float64Array,
  g: GradBuffers,
): number {
  const { dim, topK, wDec } = p;
  const { gWEnc, gWDec, gBDec } = g;
  for (let t = 0; t < topK; t++) {
    const w = idx[t] * dim;
    const a = val[t];
    for (let d = 0; d < dim; d++) resid[d] += a * wDec[w + d];
  }
  let sq = 0;
  for (let d = 0; d < dim; d++) {
    const r = resid[d];
    sq += r * r;
    gBDec[d] += r;
  }
  for (let t = 0; t < topK; t++) {
    const j = idx[t];
    const w = j * dim;
    const a = val[t];
    let da = 0;
    for (let d = 0; d < dim; d++) {
      const r = resid[d];
      da += r * wDec[w + d];
      gWDec[w + d] += a * r;
    }
    for (let d = 0; d < dim; d++) gWEnc[w + d] += da * xc[d];
    g.gBEnc[j] += da;
    g.dzSum[j] += da;
  }
  return sq;
}
