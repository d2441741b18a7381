/**
 * The files the directory client reads: the service account's password
 * (OUK_LDAP_BIND_PASSWORD_FILE, one trailing newline dropped) and the site's
 * CA (OUK_CA_FILE). Read at each sign-in, so a rotated password or CA takes
 * effect without a restart; bounded, and never shown in a message.
 */
import { readFile } from 'node:fs/promises';
import type { LdapSettings } from '../../lib/config.ts';
import { OukError } from '../../lib/errors.ts';

export interface DirectorySecrets {
  readonly bindPassword: string;
  readonly ca: string | undefined;
}

const MAX_PASSWORD_BYTES = 4096;
const MAX_CA_BYTES = 1024 * 1024;

async function readBounded(file: string, max: number, variable: string): Promise<string> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (e) {
    throw new OukError('DIRECTORY_NOT_CONFIGURED', `${variable}=${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'}): check the path and its permissions`, { cause: e });
  }
  if (buf.length > max) throw new OukError('DIRECTORY_NOT_CONFIGURED', `${variable}=${file} is larger than ${max} bytes: is it the right file?`);
  return buf.toString('utf8');
}

export async function loadSecrets(settings: LdapSettings): Promise<DirectorySecrets> {
  const bindPassword = (await readBounded(settings.bindPasswordFile, MAX_PASSWORD_BYTES, 'OUK_LDAP_BIND_PASSWORD_FILE')).replace(/\r?\n$/, '');
  if (!bindPassword) throw new OukError('DIRECTORY_NOT_CONFIGURED', `OUK_LDAP_BIND_PASSWORD_FILE=${settings.bindPasswordFile} is empty: an empty password would bind anonymously; put the service account's password in it`);
  let ca: string | undefined;
  if (settings.caFile) {
    ca = await readBounded(settings.caFile, MAX_CA_BYTES, 'OUK_CA_FILE');
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new OukError('DIRECTORY_NOT_CONFIGURED', `OUK_CA_FILE=${settings.caFile} holds no PEM certificate: give the site's CA certificate (PEM)`);
  }
  return { bindPassword, ca };
}
