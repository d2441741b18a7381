/**
 * `stella token request --api URL --user NAME [--role R] [--ttl D]`: a
 * person's own API token, through the API's sign-in and roles (POST
 * /auth/login, then POST /auth/tokens with the session's CSRF token, then
 * POST /auth/logout). The password is read from stdin (one line: `read -s P;
 * echo "$P" | stella token request …`), never from an argument or the
 * environment. The token goes to stdout, what it is to stderr.
 */
import { OukError } from '../../lib/errors.ts';

export interface TokenRequest {
  api: string;
  user: string;
  password: string;
  role?: string;
  ttl?: string;
}

export interface IssuedPersonalToken {
  token: string;
  sub: string;
  role: string;
  jti: string;
  expiresAt: string;
}

type ErrorBody = { error?: { code?: string; message?: string } };

async function refusal(r: Response, what: string): Promise<OukError> {
  const body = (await r.json().catch(() => ({}))) as ErrorBody;
  const code = body.error?.code;
  const message = `${what}: ${r.status} ${body.error?.message ?? r.statusText}`;
  if (code === 'LOGIN_FAILED' || code === 'LOGIN_LOCKED' || code === 'ROLE_REQUIRED' || code === 'PERSONAL_TOKENS_OFF' || code === 'DIRECTORY_UNAVAILABLE' || code === 'USAGE') {
    return new OukError(code, message);
  }
  return new OukError('TOKEN_INVALID', message);
}

export async function requestPersonalToken(req: TokenRequest): Promise<IssuedPersonalToken> {
  let base: URL;
  try {
    base = new URL(req.api);
  } catch {
    throw new OukError('USAGE', `--api ${req.api}: give the API's URL, e.g. https://ouk.example.org`);
  }
  if (base.protocol !== 'https:' && base.protocol !== 'http:') throw new OukError('USAGE', `--api ${req.api}: give an http(s) URL`);
  const at = (path: string): string => new URL(path, base).toString();
  const login = await fetch(at('/auth/login'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: req.user, password: req.password }) });
  if (login.status !== 200) throw await refusal(login, 'sign-in refused');
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  const { csrfToken } = (await login.json()) as { csrfToken: string };
  const headers = { cookie, 'x-csrf-token': csrfToken, 'content-type': 'application/json' };
  try {
    const r = await fetch(at('/auth/tokens'), { method: 'POST', headers, body: JSON.stringify({ ...(req.role ? { role: req.role } : {}), ...(req.ttl ? { ttl: req.ttl } : {}) }) });
    if (r.status !== 201) throw await refusal(r, 'token refused');
    return (await r.json()) as IssuedPersonalToken;
  } finally {
    await fetch(at('/auth/logout'), { method: 'POST', headers: { cookie, 'x-csrf-token': csrfToken } }).catch(() => undefined);
  }
}

/** The first line of stdin: the password. */
export async function readPasswordLine(stdin: NodeJS.ReadableStream = process.stdin): Promise<string> {
  let text = '';
  for await (const chunk of stdin) {
    text += String(chunk);
    if (text.includes('\n') || text.length > 4096) break;
  }
  const line = text.split(/\r?\n/)[0] ?? '';
  if (!line) throw new OukError('USAGE', 'give the password on stdin (one line), e.g. `read -s P; echo "$P" | stella token request …`');
  return line;
}
