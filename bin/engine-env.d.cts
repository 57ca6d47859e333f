/** `env` with rrx's engine options added where it does not set them (`cpus`: the host's CPUs). */
export function engineEnv(env: Record<string, string | undefined>, cpus?: number): Record<string, string | undefined>;
export const WASM_THREADS: string;
export const INLINING_DEPTH: string;
