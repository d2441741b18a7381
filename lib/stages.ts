/**
 * The import pipeline's stages, in the order they run — written once here and
 * used by the stages' context, the queue wiring, the metrics and the CLI.
 */
export const STAGES = ['verify', 'unpack', 'load', 'activate', 'images'] as const;
export type StageName = (typeof STAGES)[number];
