/**
 * How the gateway's own process is started: the Node flags and environment that keep its memory
 * within what its manifests grant (measured by bench/footprint.ts; docs/deployment.md, "Memory").
 * Written out in the `start` script of package.json, the Dockerfile and k8s/base; the deploy
 * tests keep all three equal to these.
 */

/**
 * Node (V8) flags, before the script: a young generation of 2 MiB per semi-space (Node sizes it
 * from the machine's memory, up to 16 MiB, and the untouched part still ends up resident), and
 * one V8 worker thread (each thread brings its own malloc arena and stack).
 */
export const RUNTIME_FLAGS: readonly string[] = ['--max-semi-space-size=2', '--v8-pool-size=1'];

/**
 * Environment: glibc's malloc arenas capped at 2 (one per thread otherwise, each holding freed
 * memory), and the old generation's ceiling in NODE_OPTIONS, where an operator with a larger
 * memory limit (or a file store of many lists) raises it without touching the command.
 */
export const RUNTIME_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2', NODE_OPTIONS: '--max-old-space-size=128' };
