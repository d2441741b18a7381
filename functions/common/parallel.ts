/** Runs `tasks` with at most `limit` at a time; the first failure fails all (the others finish first). */
export async function inParallel<T>(tasks: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  let failure: unknown = null;
  const lane = async (): Promise<void> => {
    while (next < tasks.length && failure === null) {
      const i = next++;
      try {
        results[i] = await tasks[i]!();
      } catch (e) {
        failure ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, lane));
  if (failure !== null) throw failure;
  return results;
}
