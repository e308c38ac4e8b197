/** Answers small to write and huge to evaluate exactly: each single power is under the old per-power cap. */
export const COMPLEX_POWER = '((3/2)^{2000}+i)^{64}';
export const PRODUCT = Array(8).fill('(3/2)^{9000}').join('\\cdot ');
export const SUM = Array.from({ length: 40 }, (_, i) => `${i % 2 ? '-' : '+'}(3/2)^{6000}`)
  .join('')
  .slice(1);
