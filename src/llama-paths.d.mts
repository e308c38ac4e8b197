export const NODE_LLAMA_CPP_VERSION: string;
export function headersCacheDir(): string;
export function binsDir(): string;
