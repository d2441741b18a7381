/**
 * Single sign-on: the OpenID client from the parsed settings (lib/config.ts
 * oidcSettings): the client secret (OUK_OIDC_CLIENT_SECRET_FILE) and the site's
 * CA (OUK_CA_FILE) are read once, at start; an unreadable or empty file stops
 * the process with a message naming the variable.
 */
import fs from 'node:fs';
import type { OidcSettings } from '../../lib/config.ts';
import { OukError } from '../../lib/errors.ts';
import type { RoleMap } from '../role-map.ts';
import { createOidcClient, type OidcClient } from './client.ts';

const MAX_FILE_BYTES = 1024 * 1024;

function readSetting(file: string, name: string, what: string): string {
  let text: string;
  try {
    if (fs.statSync(file).size > MAX_FILE_BYTES) throw new Error(`larger than ${MAX_FILE_BYTES} bytes`);
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new OukError('USAGE', `${name}=${file} cannot be read (${err instanceof Error ? err.message : String(err)}): point it at ${what}`, { cause: err });
  }
  if (!text.trim()) throw new OukError('USAGE', `${name}=${file} is empty: point it at ${what}`);
  return text;
}

export interface OidcSetup {
  client: OidcClient;
  /** The client secret, for the key sealing the pending sign-in (identity/oidc/login-state.ts). */
  clientSecret: string;
}

export function oidcClientFromSettings(settings: OidcSettings, roleMap: RoleMap, now?: () => number): OidcSetup {
  const clientSecret = readSetting(settings.clientSecretFile, 'OUK_OIDC_CLIENT_SECRET_FILE', "a file holding the OpenID client's secret").trim();
  const ca = settings.caFile ? readSetting(settings.caFile, 'OUK_CA_FILE', "the site's CA certificates (PEM)") : undefined;
  return { client: createOidcClient({ settings, clientSecret, roleMap, ...(ca ? { ca } : {}), ...(now ? { now } : {}) }), clientSecret };
}
