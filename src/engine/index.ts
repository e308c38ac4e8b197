export * from './chat-template.ts';
export * from './context.ts';
export * from './generate.ts';
export * from './hooks.ts';
export * from './model.ts';
export { backendInfo, type BackendInfo } from './native.ts';
export * from './sampling.ts';
export * from './tokens.ts';
