/**
 * The sign-in page: a server-rendered HTML form (no script, no framework) that
 * posts the user name and password to /auth/login (the directory, or the
 * break-glass account), a "Sign in with <provider>" link when single sign-on is
 * configured, and the small bar the
 * dashboard shows (who is signed in, a sign-out button). `next` is only ever a
 * path on this server (safeNext): the form cannot be turned into an open redirect.
 */
const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A local path to go to after signing in; anything else (another host, `//x`, `/\\x`) is the dashboard. */
export function safeNext(next: unknown, fallback = '/admin/queues'): string {
  if (typeof next !== 'string' || next.length > 2000) return fallback;
  if (!/^\/(?![/\\])/.test(next) || /[\u0000-\u001f\u007f]/.test(next)) return fallback;
  return next;
}

export function signInPage(opts: { next: string; message?: string; username?: string; singleSignOn?: { name: string } }): string {
  const message = opts.message ? `<p class="msg" role="alert">${escapeHtml(opts.message)}</p>` : '';
  // single sign-on, when configured: the provider's own pages, then back here signed in (api/oidc-routes.ts)
  const sso = opts.singleSignOn
    ? `<p class="sso"><a href="/auth/oidc/login?next=${encodeURIComponent(opts.next)}">Sign in with ${escapeHtml(opts.singleSignOn.name)}</a></p>`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in — Stella OUK</title>
<style>
body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}
form{background:#fff;padding:2rem 2.5rem;border-radius:8px;box-shadow:0 1px 4px #0002;min-width:18rem}
h1{font-size:1.3rem;margin:0 0 1rem}label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.45rem;box-sizing:border-box}
button{margin-top:1.2rem;padding:.5rem 1.2rem}.msg{color:#a40000}.sso{margin:1.2rem 0 0;border-top:1px solid #ddd;padding-top:1rem}
</style></head>
<body><form method="post" action="/auth/login">
<h1>Stella OUK — sign in</h1>${message}
<label for="username">User name</label><input id="username" name="username" autocomplete="username" required maxlength="256" value="${escapeHtml(opts.username ?? '')}" autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024">
<input type="hidden" name="next" value="${escapeHtml(opts.next)}">
<button type="submit">Sign in</button>${sso}
</form></body></html>`;
}

/**
 * What the dashboard's pages get before `</body>`: the session's CSRF token for
 * the dashboard's own requests (every same-origin request that changes state
 * carries it as X-CSRF-Token), and a bar with the person and a sign-out form.
 */
export function sessionBar(opts: { username: string; roles: readonly string[]; csrfToken: string }): string {
  const token = JSON.stringify(opts.csrfToken);
  return `<div id="ouk-session" style="position:fixed;right:.6rem;bottom:.6rem;z-index:9999;background:#fff;border:1px solid #ccc;border-radius:6px;padding:.3rem .6rem;font:13px system-ui,sans-serif">
<span>${escapeHtml(opts.username)} (${escapeHtml(opts.roles.join(', '))})</span>
<form method="post" action="/auth/logout" style="display:inline;margin-left:.5rem"><input type="hidden" name="_csrf" value="${escapeHtml(opts.csrfToken)}"><button type="submit">Sign out</button></form></div>
<script>(function(){var t=${token.replace(/</g, '\\u003c')};var safe=/^(GET|HEAD|OPTIONS)$/i;
var open=XMLHttpRequest.prototype.open,send=XMLHttpRequest.prototype.send;
XMLHttpRequest.prototype.open=function(m,u){this.__oukUnsafe=!safe.test(m)&&new URL(u,location.href).origin===location.origin;return open.apply(this,arguments)};
XMLHttpRequest.prototype.send=function(){if(this.__oukUnsafe)this.setRequestHeader('X-CSRF-Token',t);return send.apply(this,arguments)};
var f=window.fetch;if(f)window.fetch=function(i,o){o=o||{};var m=(o.method||(i&&i.method)||'GET');var u=typeof i==='string'?i:(i&&i.url)||String(i);
if(!safe.test(m)&&new URL(u,location.href).origin===location.origin){var h=new Headers(o.headers||(i&&i.headers)||{});h.set('X-CSRF-Token',t);o=Object.assign({},o,{headers:h})}return f.call(this,i,o)};})();</script>`;
}
