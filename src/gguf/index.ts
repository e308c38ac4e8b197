export * from './control-vector.ts';
export * from './read.ts';
export * from './tiny-model.ts';
export * from './types.ts';
export * from './write.ts';
