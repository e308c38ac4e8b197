// `thinkwhen serve`: the OpenAI-compatible server (src/serve) on a base/thinking pair — the shipped
// organism unless --base/--thinking say otherwise — plus the hybrid model when a vector set is given,
// or, for the organism, when its shipped SAE and vectors belong to its models.
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { Model } from '../engine/index.ts';
import { ThinkwhenError } from '../errors.ts';
import { type HybridOptions, PAPER_GRID, POLICIES } from '../hybrid/index.ts';
import { type ArtifactPaths, artifactsMismatch, ORGANISM_COEFS, organismArtifactPaths } from '../organism/artifacts.ts';
import { organismModelPaths } from '../organism/index.ts';
import { HybridModel } from '../serve/hybrid.ts';
import { PlainModel, type ServedModel } from '../serve/models.ts';
import { type RunningServer, startServer } from '../serve/server.ts';
import { VectorLibrary } from '../serve/steering.ts';
import { loadVectorSet } from '../steer/vector-set.ts';
import { loadSae } from '../taxonomy/sae.ts';
import { choice, defineCommand, int, nums, text, threads } from './options.ts';

const fileOf = (dir: string, p: unknown): string | undefined =>
  typeof p === 'string' && p ? (isAbsolute(p) ? p : resolve(dir, p)) : undefined;

function mustExist(path: string, what: string, fix: string): string {
  if (!existsSync(path)) throw new ThinkwhenError('FILE_NOT_FOUND', `${what} not found: ${path}`, fix);
  return path;
}

export const command = defineCommand({
  name: 'serve',
  summary: 'an OpenAI-compatible HTTP server for base, thinking and hybrid models, with per-request steering',
  usage: '[--port N] [--host ADDR] [--vectors DIR] [--base FILE --thinking FILE] [options]',
  description: `Serves models over the OpenAI API (docs/serve.md): GET /v1/models,
POST /v1/chat/completions and /v1/completions (streaming with "stream": true, or
not), GET /health. Any OpenAI client works: point its base URL at
http://HOST:PORT/v1.

Models: 'base' and 'thinking' (the shipped organism pair unless --base and
--thinking name GGUF files), and 'hybrid' when --vectors names a vector set (its
manifest names the SAE; or --sae FILE --sae-layer L): the base model steered
where the thinking model disagrees (docs/hybrid.md). The organism pair serves
the hybrid without --vectors, from its shipped SAE and vectors, when
src/organism/models/artifacts.json says they were made from the models there;
otherwise the server says why the hybrid is off and how to get it.

Per request, beyond OpenAI's fields: "steering" adds vectors to the base or
thinking model's residual stream (inline, by name or by file from --vector-dir,
at a layer or hook, with a coefficient, on chosen positions); "hybrid" sets the
hybrid model's policy, grid or pure-steering cell for that request.

Requests to one model share its context (continuous batching, up to --parallel
at once); up to --queue more wait; beyond that the server answers 429 with
Retry-After. A client that disconnects cancels its generation. Errors are JSON:
{"error": {"message", "type", "param", "code", "fix"}}. Ctrl-C (or SIGTERM)
stops accepting, lets running requests finish for --grace seconds, then exits.`,
  options: {
    host: text({
      arg: 'ADDR',
      help: 'address to listen on (0.0.0.0: every interface; then set an API key)',
      default: '127.0.0.1',
    }),
    port: int({ help: 'TCP port (0: any free port, printed at start)', min: 0, max: 65535, default: 8080 }),
    base: text({ arg: 'FILE', help: 'base model GGUF (default: the shipped organism base model)' }),
    thinking: text({ arg: 'FILE', help: 'thinking model GGUF (default: the shipped organism thinking model)' }),
    vectors: text({
      arg: 'DIR',
      help: 'a vector set for the base model (thinkwhen vectors train): serves the hybrid model, and its vectors by name',
    }),
    sae: text({ arg: 'FILE', help: "the thinking model's SAE (default: the one the vector set's manifest names)" }),
    'sae-layer': int({
      arg: 'L',
      help: 'thinking-model layer the SAE reads (default: from the manifest or the SAE)',
      min: 0,
      max: 4096,
    }),
    policy: choice({
      arg: 'P',
      help: 'the hybrid policy requests get by default (docs/hybrid.md)',
      choices: POLICIES,
      default: 'paper',
    }),
    coefficients: nums({
      help: `the hybrid grid's coefficients (default ${PAPER_GRID.coefficients.join(',')}; the organism: ${ORGANISM_COEFS.join(',')})`,
      min: -1000,
      max: 1000,
    }),
    windows: nums({
      help: `the hybrid grid's windows: 0 = every position, -n = the last n (default ${PAPER_GRID.windows.join(',')}; write --windows=0,-1)`,
      min: -1_000_000,
      max: 0,
    }),
    'base-prompt': text({
      arg: 'SPEC',
      help: "hybrid chat requests: the base model's prompt, paper | chat | a template with {question} (default: chat for the organism, paper otherwise)",
    }),
    'thinking-prompt': text({ arg: 'SPEC', help: "hybrid chat requests: the thinking model's prompt (default chat)" }),
    speculate: int({
      arg: 'K',
      help: 'hybrid: base tokens drafted per thinking check (speed only; tokens do not change)',
      min: 1,
      max: 64,
      default: 4,
    }),
    'vector-dir': text({
      arg: 'DIR',
      help: 'folder of control-vector .gguf files requests may steer with by name or file (default: the --vectors folder); repeat with commas',
    }),
    'api-key': text({
      arg: 'KEY',
      help: 'require Authorization: Bearer KEY (default: the THINKWHEN_API_KEY environment variable; none when unset)',
    }),
    parallel: int({ help: 'requests one plain model decodes together', min: 1, max: 256, default: 8 }),
    'hybrid-parallel': int({
      help: 'hybrid requests running at once (each holds its own KV caches)',
      min: 1,
      max: 64,
      default: 2,
    }),
    queue: int({
      help: 'requests waiting per model beyond those running; more get 429',
      min: 0,
      max: 100_000,
      default: 64,
    }),
    'ctx-size': int({
      help: "tokens one request may hold, prompt included (default: the model's training context, at most 4096)",
      min: 2,
      max: 1 << 20,
    }),
    'max-body': int({ arg: 'BYTES', help: 'largest request body', min: 1024, max: 1 << 30, default: 4 << 20 }),
    timeout: int({
      arg: 'S',
      help: 'seconds a request may run before it is stopped (504)',
      min: 1,
      max: 86_400,
      default: 600,
    }),
    grace: int({
      arg: 'S',
      help: 'seconds running requests get to finish at shutdown',
      min: 0,
      max: 3600,
      default: 10,
    }),
    threads: threads('CPU threads per context (default: THINKWHEN_THREADS or all cores)'),
  },
  examples: [
    'thinkwhen serve                                   # the organism: base, thinking and hybrid on http://127.0.0.1:8080/v1',
    'thinkwhen serve --vectors runs/organism/vectors   # the organism with a vector set of your own',
    'thinkwhen serve --base Qwen2.5-Math-1.5B.gguf --thinking DeepSeek-R1-Distill-Qwen-1.5B.gguf --vectors runs/vectors --port 9000',
    `curl -s localhost:8080/v1/chat/completions -d '{"model": "base", "messages": [{"role": "user", "content": "Ann has 4 pens. She buys 5 more. How many?"}], "temperature": 0}'`,
  ],
  epilogue: `Exit status: 0 after a clean shutdown (Ctrl-C, SIGTERM), 2 when the server
cannot start (a missing model file, a port in use).`,
  async run({ values }) {
    const organism = !values.base && !values.thinking;
    if (!organism && (!values.base || !values.thinking)) {
      throw new ThinkwhenError(
        'BAD_ARGUMENT',
        'give both --base and --thinking, or neither (the shipped organism pair)',
        'add the missing one',
      );
    }
    const paths = organism ? organismModelPaths() : { base: values.base!, thinking: values.thinking! };
    const fix = organism ? 'run `thinkwhen organism build`, or pass --base FILE --thinking FILE' : 'check the path';
    const basePath = mustExist(paths.base, 'base model', fix);
    const thinkingPath = mustExist(paths.thinking, 'thinking model', fix);
    const apiKey = values['api-key'] ?? (process.env.THINKWHEN_API_KEY || undefined);
    if (values.sae && !values.vectors) {
      throw new ThinkwhenError(
        'BAD_ARGUMENT',
        '--sae serves the hybrid model, which also needs steering vectors',
        'add --vectors DIR',
      );
    }
    const hybrid = values.vectors
      ? { vectors: values.vectors }
      : organism
        ? await shippedHybrid(organismArtifactPaths(), paths)
        : { off: 'pass --vectors DIR (a vector set of this base model, `thinkwhen vectors train`) to serve it' };
    const vectorDirs = (values['vector-dir']?.split(',') ?? ('vectors' in hybrid ? [hybrid.vectors] : [])).filter(
      Boolean,
    );
    const library = new VectorLibrary(vectorDirs);

    const loaded: Model[] = [];
    const served: ServedModel[] = [];
    let server: RunningServer | null = null;
    try {
      const base = await Model.load(basePath);
      loaded.push(base);
      const thinking = await Model.load(thinkingPath);
      loaded.push(thinking);
      const plain = {
        ctxSize: values['ctx-size'],
        parallel: values.parallel,
        queue: values.queue,
        threads: values.threads,
        library,
      };
      served.push(new PlainModel('base', 'base', base, plain), new PlainModel('thinking', 'thinking', thinking, plain));
      if ('vectors' in hybrid) served.push(await hybridModel(hybrid.vectors, values, base, thinking, organism));
      server = await startServer(served, {
        host: values.host,
        port: values.port,
        apiKey,
        maxBodyBytes: values['max-body'],
        timeoutMs: values.timeout * 1000,
        graceMs: values.grace * 1000,
      });
    } catch (err) {
      for (const m of served) await m.close();
      for (const m of loaded) m.free();
      throw err;
    }
    const names = served.map((m) => m.id).join(', ');
    console.log(`thinkwhen serve: listening on ${server.url}/v1 (models: ${names})`);
    if ('off' in hybrid) console.error(`thinkwhen serve: hybrid not served: ${hybrid.off}`);
    if (values.host !== '127.0.0.1' && values.host !== 'localhost' && !apiKey) {
      console.error(`thinkwhen serve: warning: listening on ${values.host} without an API key (set THINKWHEN_API_KEY)`);
    }
    const signal = await new Promise<string>((done) => {
      process.once('SIGINT', () => done('SIGINT'));
      process.once('SIGTERM', () => done('SIGTERM'));
    });
    console.error(`thinkwhen serve: ${signal}: finishing running requests (up to ${values.grace} s), then exiting`);
    await server.close();
    for (const m of loaded) m.free();
    console.error('thinkwhen serve: stopped');
    return 0;
  },
});

/**
 * The organism's hybrid without --vectors: its shipped vector set (whose manifest names the shipped
 * SAE) when artifacts.json says both were made from these models; else why not and how to get one.
 */
export async function shippedHybrid(
  artifacts: ArtifactPaths,
  models: { base: string; thinking: string },
): Promise<{ vectors: string } | { off: string }> {
  const why = await artifactsMismatch(artifacts, models);
  if (why === null) return { vectors: artifacts.vectors };
  return {
    off:
      `the organism's shipped SAE and vectors do not belong to its models (${why}); ` +
      '`thinkwhen demo --problems 1 --pass-problems 0` regenerates them into runs/demo/default/artifacts/, ' +
      'then serve with --vectors runs/demo/default/artifacts/vectors',
  };
}

/** The hybrid model from a vector set: its SAE from --sae or the manifest. */
async function hybridModel(
  dir: string,
  values: {
    sae?: string;
    'sae-layer'?: number;
    policy: HybridOptions['policy'];
    coefficients?: number[];
    windows?: number[];
    'base-prompt'?: string;
    'thinking-prompt'?: string;
    speculate: number;
    'ctx-size'?: number;
    'hybrid-parallel': number;
    queue: number;
    threads?: number;
  },
  base: Model,
  thinking: Model,
  organism: boolean,
): Promise<HybridModel> {
  const set = await loadVectorSet(dir, base);
  for (const w of set.warnings) console.error(`thinkwhen serve: warning: ${w}`);
  const fromSet = set.manifest.sae ?? {};
  const saePath = values.sae ?? fileOf(dir, fromSet.sae);
  if (!saePath) {
    throw new ThinkwhenError(
      'BAD_ARGUMENT',
      `the vector set ${dir} does not name its SAE`,
      'pass --sae FILE --sae-layer L',
    );
  }
  const file = saePath.replace(/\.(safetensors|json)$/, '');
  mustExist(`${file}.safetensors`, 'SAE', 'pass --sae FILE (a .safetensors written by `thinkwhen taxonomy train`)');
  const sae = await loadSae(file);
  const saeLayer =
    values['sae-layer'] ??
    (typeof fromSet.layer === 'number'
      ? fromSet.layer
      : typeof sae.config.layer === 'number'
        ? sae.config.layer
        : undefined);
  if (saeLayer === undefined)
    throw new ThinkwhenError('BAD_ARGUMENT', `${saePath} does not say which layer it reads`, 'pass --sae-layer L');
  if (saeLayer >= thinking.info.nLayer) {
    throw new ThinkwhenError(
      'LAYER_OUT_OF_RANGE',
      `--sae-layer ${saeLayer}: the thinking model has ${thinking.info.nLayer} layers`,
      `pass a layer 0..${thinking.info.nLayer - 1}`,
    );
  }
  if (sae.dim !== thinking.info.nEmbd) {
    throw new ThinkwhenError(
      'WIDTH_MISMATCH',
      `the SAE reads ${sae.dim}-wide activations; the thinking model's are ${thinking.info.nEmbd}`,
      'pass the SAE trained on this thinking model',
    );
  }
  if (typeof fromSet.k === 'number' && fromSet.k !== sae.latents) {
    throw new ThinkwhenError(
      'BAD_HYBRID_PAIR',
      `the vectors were trained for a ${fromSet.k}-latent SAE but ${saePath} has ${sae.latents} latents`,
      'pass the SAE of the taxonomy the vectors were trained from (or omit --sae)',
    );
  }
  return new HybridModel(
    'hybrid',
    { base, thinking, sae, saeLayer, vectors: set },
    {
      parallel: values['hybrid-parallel'],
      queue: values.queue,
      ctxSize: values['ctx-size'],
      basePrompt: values['base-prompt'] ?? (organism ? 'chat' : 'paper'),
      thinkingPrompt: values['thinking-prompt'] ?? 'chat',
      defaults: {
        policy: values.policy,
        grid: {
          coefficients: values.coefficients ?? (organism ? ORGANISM_COEFS : PAPER_GRID.coefficients),
          windows: values.windows ?? PAPER_GRID.windows,
        },
        speculate: values.speculate,
        threads: values.threads,
        // the organism's shipped sets lack vectors for rare latents: steer those with c·bias (marked), as the demo does
        missingVector: organism ? 'bias' : undefined,
      },
    },
  );
}
