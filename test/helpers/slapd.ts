/**
 * A real OpenLDAP for a test file: Debian's slapd (/usr/sbin/slapd), started on
 * two free loopback ports — ldaps:// and ldap:// (StartTLS) — with its own
 * cn=config (slapadd'ed into a temp directory: mdb, the memberof and ppolicy overlays) and
 * data directory, over TLS from a CA the fixture makes with the openssl CLI.
 * A second CA (`otherCaFile`) signs nothing the server shows: a client that
 * trusts only it must refuse the server.
 *
 * It allows unauthenticated binds (a DN with an empty password "succeeds", as
 * RFC 4513 permits and some directories do): a client that forgets to refuse
 * an empty password signs anybody in here.
 *
 * The directory (DIRECTORY below, or the entries given) is added over LDAP as
 * its root DN once slapd answers, so the memberof overlay fills `memberOf` as
 * it would in production. `env()` gives the OUK_LDAP_* settings a Stella
 * process needs to sign people in against it (the sessions and Chromium tests
 * reuse it). `close()` stops slapd.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'ldapts';
import { freePort, tmpDir } from './services.ts';

const run = promisify(execFile);

export const BASE_DN = 'dc=example,dc=org';
export const ROOT_DN = `cn=admin,${BASE_DN}`;
const ROOT_PASSWORD = 'root-secret';
export const SERVICE_DN = `cn=ouk-reader,ou=services,${BASE_DN}`;
export const SERVICE_PASSWORD = 'reader-secret';

export interface LdapEntry {
  readonly dn: string;
  readonly attributes: Readonly<Record<string, string | readonly string[]>>;
}

const person = (uid: string, password: string, cn = uid): LdapEntry => ({
  dn: `uid=${uid},ou=people,${BASE_DN}`,
  attributes: { objectClass: ['inetOrgPerson'], uid, cn, sn: cn, displayName: cn, userPassword: password },
});
const group = (cn: string, members: readonly string[]): LdapEntry => ({
  dn: `cn=${cn},ou=groups,${BASE_DN}`,
  attributes: { objectClass: ['groupOfNames'], cn, member: members },
});
const people = (uid: string): string => `uid=${uid},ou=people,${BASE_DN}`;
const groups = (cn: string): string => `cn=${cn},ou=groups,${BASE_DN}`;

/**
 * The test directory. Passwords are `<uid>-pw`.
 *   alice  in ouk-operators                                    → operator
 *   bob    in team-blue, which is in ouk-viewers (nested)      → viewer; also in loop-a ⇄ loop-b (a cycle)
 *   erin   in team-red ⊂ platform-leads ⊂ ouk-admins (2 levels above her own group) → admin
 *   carol  in staff (mapped to nothing)                        → no role
 *   dave   a uniqueMember of auditors (groupOfUniqueNames)     → viewer when groups are searched by member
 *   pat(ops) a uid with parentheses, in ouk-operators          → operator (escaping finds real names too)
 *   frank  in ouk-operators, under the directory's lockout policy (ppolicy: 3 wrong passwords lock him)
 */
export const DIRECTORY: readonly LdapEntry[] = [
  { dn: BASE_DN, attributes: { objectClass: ['dcObject', 'organization'], dc: 'example', o: 'Example' } },
  { dn: `ou=people,${BASE_DN}`, attributes: { objectClass: ['organizationalUnit'], ou: 'people' } },
  { dn: `ou=groups,${BASE_DN}`, attributes: { objectClass: ['organizationalUnit'], ou: 'groups' } },
  { dn: `ou=services,${BASE_DN}`, attributes: { objectClass: ['organizationalUnit'], ou: 'services' } },
  { dn: `ou=policies,${BASE_DN}`, attributes: { objectClass: ['organizationalUnit'], ou: 'policies' } },
  // the directory's own lockout (ppolicy), for frank only: three wrong passwords lock him until an administrator unlocks him
  {
    dn: `cn=lockout,ou=policies,${BASE_DN}`,
    attributes: { objectClass: ['device', 'pwdPolicy'], cn: 'lockout', pwdAttribute: 'userPassword', pwdLockout: 'TRUE', pwdMaxFailure: '3', pwdLockoutDuration: '0' },
  },
  { dn: SERVICE_DN, attributes: { objectClass: ['organizationalRole', 'simpleSecurityObject'], cn: 'ouk-reader', userPassword: SERVICE_PASSWORD } },
  person('alice', 'alice-pw', 'Alice Operator'),
  person('bob', 'bob-pw', 'Bob Viewer'),
  person('carol', 'carol-pw', 'Carol Staff'),
  person('dave', 'dave-pw', 'Dave Auditor'),
  person('erin', 'erin-pw', 'Erin Admin'),
  person('pat(ops)', 'pat(ops)-pw', 'Pat Ops'),
  { dn: people('frank'), attributes: { ...person('frank', 'frank-pw', 'Frank Locked').attributes, pwdPolicySubentry: `cn=lockout,ou=policies,${BASE_DN}` } },
  group('ouk-operators', [people('alice'), people('pat(ops)'), people('frank')]),
  group('team-blue', [people('bob')]),
  group('ouk-viewers', [groups('team-blue')]),
  group('team-red', [people('erin')]),
  group('platform-leads', [groups('team-red')]),
  group('ouk-admins', [groups('platform-leads')]),
  group('staff', [people('carol')]),
  group('loop-a', [people('bob')]),
  group('loop-b', [groups('loop-a')]),
  // loop-a ⇄ loop-b: loop-a gains loop-b as a member once both exist (modify below)
  { dn: `cn=auditors,ou=groups,${BASE_DN}`, attributes: { objectClass: ['groupOfUniqueNames'], cn: 'auditors', uniqueMember: [people('dave')] } },
];

export const ROLE_MAP = [
  `operator:${groups('ouk-operators')}`,
  `viewer:${groups('ouk-viewers')}`,
  `admin:${groups('ouk-admins')}`,
  `viewer:${groups('auditors')}`,
].join(';');

export interface TestSlapd {
  readonly ldapsUrl: string;
  /** Plain LDAP on its own port; the server takes StartTLS on it. */
  readonly ldapUrl: string;
  readonly caFile: string;
  /** A CA that signed nothing the server shows. */
  readonly otherCaFile: string;
  readonly bindPasswordFile: string;
  readonly dir: string;
  /** The OUK_LDAP_* (and OUK_CA_FILE, OUK_ROLE_MAP) settings for this directory over ldaps://, groups searched under ou=groups. */
  env(overrides?: Record<string, string>): Record<string, string>;
  close(): Promise<void>;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await run('openssl', args, { cwd });
}

async function makeCertificates(dir: string): Promise<void> {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/CN=Stella test LDAP CA', '-days', '3650'], dir);
  await openssl(['req', '-x509', ...ec, '-keyout', 'other-ca.key', '-out', 'other-ca.pem', '-subj', '/CN=Some other CA', '-days', '3650'], dir);
  await openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'], dir);
  fs.writeFileSync(path.join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  await openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '3650', '-extfile', 'server.ext'], dir);
}

function configLdif(dir: string): string {
  return `dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: ${dir}/slapd.pid
olcTLSCACertificateFile: ${dir}/ca.pem
olcTLSCertificateFile: ${dir}/server.pem
olcTLSCertificateKeyFile: ${dir}/server.key
olcSizeLimit: 500
olcAllows: bind_anon_dn

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: memberof
olcModuleLoad: ppolicy

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: ${BASE_DN}
olcRootDN: ${ROOT_DN}
olcRootPW: ${ROOT_PASSWORD}
olcDbDirectory: ${dir}/data
olcDbMaxSize: 16777216
olcAccess: {0}to attrs=userPassword by anonymous auth by * none
olcAccess: {1}to * by dn.exact="${SERVICE_DN}" read by self read by * none

dn: olcOverlay={0}memberof,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {0}memberof
olcMemberOfRefInt: TRUE
olcMemberOfGroupOC: groupOfNames
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf

dn: olcOverlay={1}ppolicy,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {1}ppolicy
`;
}

/** Resolves once slapd accepts connections (it says so on stderr), rejects if it exits first. */
function started(child: ChildProcess, log: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onData = (): void => {
      if (/slapd starting/.test(log())) {
        child.stderr?.off('data', onData);
        child.off('exit', onExit);
        resolve();
      }
    };
    const onExit = (code: number | null): void => reject(new Error(`slapd exited (${code}) before it started:\n${log()}`));
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

export async function startSlapd(tag: string, entries: readonly LdapEntry[] = DIRECTORY): Promise<TestSlapd> {
  const dir = tmpDir(`slapd-${tag}`);
  fs.mkdirSync(path.join(dir, 'config'));
  fs.mkdirSync(path.join(dir, 'data'));
  await makeCertificates(dir);
  fs.writeFileSync(path.join(dir, 'config.ldif'), configLdif(dir));
  await run('/usr/sbin/slapadd', ['-n', '0', '-F', path.join(dir, 'config'), '-l', path.join(dir, 'config.ldif')]);
  const bindPasswordFile = path.join(dir, 'bind-password');
  fs.writeFileSync(bindPasswordFile, `${SERVICE_PASSWORD}\n`, { mode: 0o600 });

  const [ldapsPort, ldapPort] = [await freePort(), await freePort()];
  const ldapsUrl = `ldaps://127.0.0.1:${ldapsPort}`;
  const ldapUrl = `ldap://127.0.0.1:${ldapPort}`;
  // -d: stay in the foreground (the test owns the process); "stats" says "slapd starting" once it listens
  const child = spawn('/usr/sbin/slapd', ['-F', path.join(dir, 'config'), '-h', `${ldapsUrl}/ ${ldapUrl}/`, '-d', 'none'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
  await started(child, () => log);

  const admin = new Client({ url: ldapsUrl, tlsOptions: { ca: fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8') }, timeout: 10_000, connectTimeout: 10_000 });
  try {
    await admin.bind(ROOT_DN, ROOT_PASSWORD);
    for (const e of entries) {
      const attrs: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(e.attributes)) attrs[k] = typeof v === 'string' ? v : [...v];
      await admin.add(e.dn, attrs);
    }
    if (entries === DIRECTORY) {
      const { Attribute, Change } = await import('ldapts');
      await admin.modify(groups('loop-a'), new Change({ operation: 'add', modification: new Attribute({ type: 'member', values: [groups('loop-b')] }) }));
    }
  } finally {
    await admin.unbind();
  }

  return {
    ldapsUrl,
    ldapUrl,
    caFile: path.join(dir, 'ca.pem'),
    otherCaFile: path.join(dir, 'other-ca.pem'),
    bindPasswordFile,
    dir,
    env: (overrides = {}) => ({
      OUK_LDAP_URL: ldapsUrl,
      OUK_CA_FILE: path.join(dir, 'ca.pem'),
      OUK_LDAP_BIND_DN: SERVICE_DN,
      OUK_LDAP_BIND_PASSWORD_FILE: bindPasswordFile,
      OUK_LDAP_USER_BASE: `ou=people,${BASE_DN}`,
      OUK_LDAP_GROUP_BASE: `ou=groups,${BASE_DN}`,
      OUK_ROLE_MAP: ROLE_MAP,
      ...overrides,
    }),
    async close() {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
