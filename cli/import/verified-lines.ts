/**
 * What a verify stage recorded about trust, as lines for `stella ouk import`
 * and `stella ouk status`: the root the kit was verified against (and the
 * roots it moved the site to), and the feed snapshots its release attestation
 * names. Values from the kit go through terminalText.
 */
import type { VerifyResult } from '../../functions/verify.ts';
import { terminalText as t } from '../../lib/terminal-text.ts';

export function trustLine(v: VerifyResult): string | null {
  const tr = v.trust;
  if (!tr) return null;
  if (tr.implicit) return `trust:    ${t(tr.source)} (bare keys)${v.keyPath ? `, signed by ${t(v.keyPath)}` : ''}`;
  const walked = tr.chain.length > 1 ? `, reached v${tr.chain.join(' → v')}` : '';
  const stored = tr.stored.length ? `; stored v${tr.stored.join(', v')}` : '';
  return `trust:    root v${tr.rootVersion} (${t(tr.source)}${walked}${stored}), ${tr.keyids.length} kit key(s) (threshold ${tr.threshold}), expires ${t(tr.expires ?? 'never')}`;
}

export function attestedLines(v: VerifyResult): string[] {
  const a = v.attestation;
  if (!a) return [];
  return a.feeds.map(
    (f) => `attested: feed ${t(f.name)}: snapshot ${t(f.snapshot ?? 'unknown')}, ${t(f.records ?? '?')} records${f.sha256 ? `, inputs sha256:${t(f.sha256)}` : ''}`,
  );
}

export function verifiedLines(v: VerifyResult | null | undefined): string[] {
  if (!v) return [];
  const line = trustLine(v);
  return [...(line ? [line] : []), ...attestedLines(v)];
}
