// The columns `thinkwhen vectors eval --json` prints per category, first and in this order: the
// issue's spec, asserted by the CLI test and by the test of the stored organism record.
export const VECTOR_EVAL_COLUMNS = [
  'latent',
  'title',
  'type',
  'n',
  'best_coef',
  'rate_vector',
  'rate_bias',
  'rate_random',
  'rate_random_bias',
  'rate_unsteered',
] as const;
