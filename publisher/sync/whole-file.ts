/**
 * Whole-file sources (KEV, EPSS): one conditional GET with the validators of
 * the copy held (If-None-Match, If-Modified-Since), so a file that has not
 * changed costs one request and no body; the validators of the new copy are
 * kept in the source's state once it is written.
 */
import type { SourceContext } from './context.ts';
import type { Answer, UpstreamClient } from './http.ts';

/** The file, or null when the upstream answered 304 (noted; the watermark stays). */
export async function getIfChanged(ctx: SourceContext, client: UpstreamClient, url: string, held: boolean, o: { maxBytes: number; what: string }): Promise<Answer<Buffer> | null> {
  const headers: Record<string, string> = {};
  if (held && typeof ctx.state.extra.etag === 'string') headers['if-none-match'] = ctx.state.extra.etag;
  if (held && typeof ctx.state.extra.lastModified === 'string') headers['if-modified-since'] = ctx.state.extra.lastModified;
  const a = await client.getBytes(url, { ...o, headers, allow: [304] });
  ctx.report.watermark = typeof ctx.state.watermark === 'string' ? ctx.state.watermark : null;
  if (a.status !== 304) return a;
  ctx.note('not changed since the last sync (304)');
  return null;
}

/** After the new copy is written: its validators, and its watermark, into the state (saved). */
export async function keepWholeFile(ctx: SourceContext, a: Answer<Buffer>, watermark: string | null): Promise<void> {
  ctx.state.extra.etag = a.headers.get('etag') ?? undefined;
  ctx.state.extra.lastModified = a.headers.get('last-modified') ?? undefined;
  ctx.state.watermark = watermark;
  ctx.report.watermark = watermark;
  await ctx.checkpoint();
}
