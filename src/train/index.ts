export * from './batch.ts';
export * from './checkpoint.ts';
export * from './gradcheck.ts';
export * from './loop.ts';
export * from './native.ts';
export * from './trainer.ts';
export * from './vectors.ts';
export * from './weights.ts';
