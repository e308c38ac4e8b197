export * from './chat-template.ts';
export * from './context.ts';
export * from './generate.ts';
export * from './hooks.ts';
export * from './model.ts';
export { type BackendInfo, backendInfo } from './native.ts';
export * from './sampling.ts';
export * from './tokens.ts';
