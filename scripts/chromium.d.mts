export const CHROMIUM_ARGS: string[];
export function findChromium(): { executablePath: string; source: string; env: Record<string, string> };
