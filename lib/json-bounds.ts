/**
 * Bounds on parsed JSON from outside (feed files, `--vex` documents), checked
 * before anything walks it: JSON.parse builds any depth without recursing, but
 * a recursive walk over the result (a schema validator, a normaliser,
 * JSON.stringify) overflows the stack on 50,000 levels. `jsonDepthProblem`
 * walks with an explicit stack, so no input can overflow it, and stops at the
 * first container deeper than the limit.
 */

/** Path segments shown in a depth error before it is cut: the start says where, the rest is repetition. */
const SHOWN_SEGMENTS = 8;

interface Frame {
  /** the container's children still to visit, as [key, value] */
  entries: Array<[string, unknown]> | null;
  items: unknown[] | null;
  next: number;
}

function childrenOf(v: unknown): Frame | null {
  if (Array.isArray(v)) return { entries: null, items: v, next: 0 };
  if (typeof v === 'object' && v !== null) return { entries: Object.entries(v as Record<string, unknown>), items: null, next: 0 };
  return null;
}

/**
 * null when no object or array in `value` is nested more than `maxDepth`
 * levels deep (the top-level container is level 1), else why: the depth limit
 * and the JSON pointer of the first container past it (cut after a few
 * segments).
 */
export function jsonDepthProblem(value: unknown, maxDepth: number): string | null {
  const top = childrenOf(value);
  if (!top) return null;
  const stack: Frame[] = [top];
  const keys: string[] = [];
  while (stack.length > 0) {
    const f = stack[stack.length - 1]!;
    const size = f.items ? f.items.length : f.entries!.length;
    if (f.next >= size) {
      stack.pop();
      keys.pop();
      continue;
    }
    const i = f.next++;
    const [key, child] = f.items ? [String(i), f.items[i]] : f.entries![i]!;
    const frame = childrenOf(child);
    if (!frame) continue;
    keys.push(key);
    if (stack.length + 1 > maxDepth) {
      const shown = keys.slice(0, SHOWN_SEGMENTS).map((k) => k.replace(/~/g, '~0').replace(/\//g, '~1').slice(0, 40));
      return `it is nested more than ${maxDepth} levels deep (at /${shown.join('/')}${keys.length > SHOWN_SEGMENTS ? '/…' : ''})`;
    }
    stack.push(frame);
  }
  return null;
}
