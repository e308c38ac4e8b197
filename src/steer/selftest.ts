// "Is steering actually applied?" — checks any model can run before it is trusted for steering.
// Each check compares two real decodes of the same tokens; none needs the model's weights.
import { backendInfo, type Context, type DecodeOutput, type Model } from '../engine/index.ts';

type Batch = { token: number; seq: number; pos: number }[];

export interface CheckResult {
  name: string;
  pass: boolean;
  detail: string;
}

export interface SelfTestReport {
  backend: string;
  model: string;
  checks: CheckResult[];
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

function bitIdentical(a: Float32Array[], b: Float32Array[]): boolean {
  return (
    a.length === b.length &&
    a.every((x, i) =>
      Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(
        Buffer.from(b[i].buffer, b[i].byteOffset, b[i].byteLength),
      ),
    )
  );
}

/** A deterministic vector of the model's width with norm `scale`·sqrt(n_embd). */
function testVector(n: number, scale: number, seed: number): Float32Array {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = Math.sin((i + 1) * (seed + 0.37)) * scale;
  return v;
}

export async function runSelfTest(
  model: Model,
  opts: { layer?: number; threads?: number } = {},
): Promise<SelfTestReport> {
  const { nLayer, nEmbd } = model.info;
  // A middle layer ≥ 1, where llama.cpp's control vector also applies.
  const layer = opts.layer ?? Math.max(1, Math.floor(nLayer / 2));
  const hook = `blocks.${layer}.hook_resid_post`;
  const last = `blocks.${nLayer - 1}.hook_resid_post`;
  const ctx = model.createContext({ nCtx: 256, nBatch: 64, nSeqMax: 2, threads: opts.threads });
  const checks: CheckResult[] = [];
  const check = async (name: string, fn: () => Promise<[boolean, string]>) => {
    try {
      const [pass, detail] = await fn();
      checks.push({ name, pass, detail });
    } catch (err) {
      checks.push({ name, pass: false, detail: `error: ${(err as Error).message}` });
    }
  };
  const promptA = Array.from(model.tokenize('The quick brown fox jumps over the lazy dog.'));
  const promptB = Array.from(model.tokenize('Seven plus five equals twelve, so the answer is'));
  const n = Math.min(promptA.length, promptB.length, 24);
  const a = promptA.slice(0, n);
  const b = promptB.slice(0, n);
  // Every check decodes on fresh sequences: 0 and 1 name the first and second of them.
  const batch = (toks: number[], seq: number): Batch => toks.map((token, pos) => ({ token, seq, pos }));
  const fresh = async (rows: Batch, hooks: Parameters<Context['decode']>[1] = []): Promise<DecodeOutput> => {
    const seqs = [ctx.sequence(), ctx.sequence()];
    try {
      return await ctx.decode(
        rows.map((r) => ({ token: r.token, seq: seqs[r.seq], pos: r.pos, logits: true })),
        hooks,
      );
    } finally {
      for (const s of seqs) s.dispose();
    }
  };
  const v = testVector(nEmbd, 0.5, 1);

  try {
    const base = await fresh(batch(a, 0));

    await check('zero-vector parity', async () => {
      const z = await fresh(batch(a, 0), [{ hook, rows: 'all', add: new Float32Array(nEmbd) }]);
      const same = bitIdentical(base.logits, z.logits);
      const diff = Math.max(0, ...z.logits.map((l, i) => maxAbsDiff(l, base.logits[i])));
      return [same, `adding a zero vector at ${hook}: logits ${same ? 'bit-identical' : `differ by up to ${diff}`}`];
    });

    await check('isolation', async () => {
      const two = [...batch(a, 0), ...batch(b, 1)];
      const plain = await fresh(two);
      const steered = await fresh(two, [{ hook, rows: b.map((_, i) => n + i), add: v }]);
      const seq0Same = bitIdentical(plain.logits.slice(0, n), steered.logits.slice(0, n));
      const seq1Moved = maxAbsDiff(plain.logits[2 * n - 1], steered.logits[2 * n - 1]) > 0;
      const alone = await fresh(batch(a, 0));
      const batchInvariant = bitIdentical(alone.logits, plain.logits.slice(0, n));
      return [
        seq0Same && seq1Moved,
        `steering sequence 1 only: sequence 0 ${seq0Same ? 'bit-identical' : 'CHANGED'}, sequence 1 ${seq1Moved ? 'changed' : 'UNCHANGED'}` +
          ` (sequence 0 alone vs in a batch of 2: ${batchInvariant ? 'bit-identical' : 'differs slightly, as batched kernels may'})`,
      ];
    });

    await check('hook equals llama.cpp control vector', async () => {
      const viaHook = await fresh(batch(a, 0), [{ hook, rows: 'all', add: v }]);
      ctx.setControlVector(new Map([[layer, v]]));
      let viaCvec: DecodeOutput;
      try {
        viaCvec = await fresh(batch(a, 0));
      } finally {
        ctx.setControlVector(null);
      }
      const same = bitIdentical(viaHook.logits, viaCvec.logits);
      const moved = maxAbsDiff(viaHook.logits[n - 1], base.logits[n - 1]) > 0;
      return [
        same && moved,
        `same vector at layer ${layer} through the hook and through llama_set_adapter_cvec: ${same ? 'bit-identical' : 'DIFFERENT'} logits`,
      ];
    });

    await check('captured state after steering = h + v', async () => {
      const h = await fresh(batch(a, 0), [{ hook, rows: 'all', capture: true }]);
      const hv = await fresh(batch(a, 0), [
        { hook, rows: 'all', add: v },
        { hook, rows: 'all', capture: true },
      ]);
      let err = 0;
      h.captures[0]!.forEach((row, i) => {
        const got = hv.captures[1]![i];
        for (let j = 0; j < nEmbd; j++) err = Math.max(err, Math.abs(got[j] - (row[j] + v[j])));
      });
      return [err <= 1e-5, `max |captured − (h + v)| = ${err.toExponential(2)}`];
    });

    await check('known-direction logit shift', async () => {
      // Final-layer residual of A's last token, written into B's: B must then predict what A predicts.
      const capA = await fresh(batch(a, 0), [{ hook: last, rows: [n - 1], capture: true }]);
      const capB = await fresh(batch(b, 0), [{ hook: last, rows: [n - 1], capture: true }]);
      const hA = capA.captures[0]![0];
      const hB = capB.captures[0]![0];
      const shift = hA.map((x, i) => x - hB[i]);
      const steered = await fresh(batch(b, 0), [{ hook: last, rows: [n - 1], add: shift }]);
      const got = steered.logits[n - 1];
      const want = capA.logits[n - 1];
      const diff = maxAbsDiff(got, want);
      let scale = 0;
      for (const x of want) scale = Math.max(scale, Math.abs(x));
      const ok = argmax(got) === argmax(want) && diff <= 1e-3 * Math.max(1, scale);
      return [
        ok,
        `B steered by (h_A − h_B) at ${last}: argmax ${argmax(got)} (A's: ${argmax(want)}), max logit difference ${diff.toExponential(2)}`,
      ];
    });
  } finally {
    ctx.free();
  }
  return { backend: backendInfo().backend, model: model.info.path, checks };
}
