/**
 * Signing in through the directory (identity/ldap/) against a real OpenLDAP
 * (test/helpers/slapd.ts: Debian's slapd on loopback, over TLS from a test CA,
 * with users, groups, nested groups and a cycle): search then bind, roles from
 * OUK_ROLE_MAP, the same LOGIN_FAILED for every refusal, escaped filters, and
 * DIRECTORY_UNAVAILABLE — never a sign-in — when the directory is down, silent
 * or untrusted. Also `stella auth test-ldap`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, FilterParser } from 'ldapts';
import { LdapAuthenticator, LOGIN_FAILED_MESSAGE, escapeFilterValue } from '../identity/ldap/index.ts';
import { inChainGroupsFilter } from '../identity/ldap/filter.ts';
import { DEFAULT_LDAP_USER_FILTER, ldapSettings, type Env } from '../lib/config.ts';
import { allowedEndpoints } from '../lib/airgap.ts';
import { OukError } from '../lib/errors.ts';
import { BASE_DN, startSlapd, type TestSlapd } from './helpers/slapd.ts';
import { childBaseEnv, freePort, repoRoot, runStella, testConfig, tmpDir } from './helpers/services.ts';

const dn = (uid: string): string => `uid=${uid},ou=people,${BASE_DN}`;
const group = (cn: string): string => `cn=${cn},ou=groups,${BASE_DN}`;

let slapd: TestSlapd;

async function authenticator(overrides: Env = {}): Promise<LdapAuthenticator> {
  const settings = ldapSettings({ ...slapd.env(), ...overrides });
  assert.ok(settings);
  return LdapAuthenticator.create(settings);
}

/** The OukError `p` rejects with. */
async function refusal(p: Promise<unknown>): Promise<OukError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof OukError, `an OukError, not ${String(e)}`);
    return e;
  }
  assert.fail('expected a refusal');
}

before(async () => {
  slapd = await startSlapd('ldap-test');
});
after(async () => {
  await slapd?.close();
});

describe('signing in through OpenLDAP', () => {
  test('alice signs in over ldaps:// and gets the role her group maps to', async () => {
    const person = await (await authenticator()).authenticate('alice', 'alice-pw');
    assert.deepEqual(person, { sub: dn('alice'), username: 'alice', displayName: 'Alice Operator', roles: ['operator'], via: 'ldap' });
  });

  test('a nested group grants its role (groups searched by member), and a cycle of groups ends', async () => {
    const d = await (await authenticator()).diagnose('bob', 'bob-pw');
    assert.equal(d.outcome, 'signed-in');
    assert.equal(d.groupMethod, 'walk');
    assert.deepEqual([...d.roles], ['viewer']);
    assert.deepEqual(new Set(d.groups.map((g) => g.toLowerCase())), new Set(['team-blue', 'loop-a', 'ouk-viewers', 'loop-b'].map(group)));
  });

  test('the same from memberOf (no OUK_LDAP_GROUP_BASE): nested groups through the groups\' own memberOf', async () => {
    const a = await authenticator({ OUK_LDAP_GROUP_BASE: '' });
    assert.deepEqual((await a.authenticate('bob', 'bob-pw')).roles, ['viewer']);
    assert.deepEqual((await a.authenticate('erin', 'erin-pw')).roles, ['admin']);
    // dave is a uniqueMember (groupOfUniqueNames): the memberof overlay does not list it, a member search does
    assert.equal((await a.diagnose('dave', 'dave-pw')).outcome, 'no-role');
    assert.deepEqual((await (await authenticator()).authenticate('dave', 'dave-pw')).roles, ['viewer']);
  });

  test('the walk is bounded: erin\'s admin role is two levels above her group, out of reach at OUK_LDAP_GROUP_DEPTH=1', async () => {
    assert.deepEqual((await (await authenticator()).authenticate('erin', 'erin-pw')).roles, ['admin']);
    const shallow = await authenticator({ OUK_LDAP_GROUP_DEPTH: '1' });
    assert.equal((await shallow.diagnose('erin', 'erin-pw')).outcome, 'no-role');
    const flat = await authenticator({ OUK_LDAP_NESTED_GROUPS: 'off' });
    assert.equal((await flat.diagnose('bob', 'bob-pw')).outcome, 'no-role');
  });

  test('more groups than OUK_LDAP_MAX_GROUPS: nobody is signed in', async () => {
    const e = await refusal((await authenticator({ OUK_LDAP_MAX_GROUPS: '2' })).authenticate('bob', 'bob-pw'));
    assert.equal(e.code, 'DIRECTORY_UNAVAILABLE');
    assert.match(e.message, /OUK_LDAP_MAX_GROUPS/);
  });

  test('a wrong password, an unknown user and a user without a role get the same answer', async () => {
    const a = await authenticator();
    const wrong = await refusal(a.authenticate('alice', 'not-her-password'));
    const unknown = await refusal(a.authenticate('mallory', 'alice-pw'));
    const noRole = await refusal(a.authenticate('carol', 'carol-pw'));
    for (const e of [wrong, unknown, noRole]) {
      assert.equal(e.code, 'LOGIN_FAILED');
      assert.equal(e.message, LOGIN_FAILED_MESSAGE);
    }
    // the operator's diagnosis tells them apart
    assert.equal((await a.diagnose('alice', 'not-her-password')).outcome, 'wrong-password');
    assert.equal((await a.diagnose('mallory', 'alice-pw')).outcome, 'unknown-user');
    const carol = await a.diagnose('carol', 'carol-pw');
    assert.equal(carol.outcome, 'no-role');
    assert.deepEqual(carol.groups.map((g) => g.toLowerCase()), [group('staff')]);
  });

  test("an account the directory has locked (ppolicy, after three wrong passwords) cannot sign in, even with its password", async () => {
    const a = await authenticator();
    assert.deepEqual((await a.authenticate('frank', 'frank-pw')).roles, ['operator']);
    for (let i = 0; i < 3; i++) assert.equal((await refusal(a.authenticate('frank', `guess-${i}`))).code, 'LOGIN_FAILED');
    const e = await refusal(a.authenticate('frank', 'frank-pw'));
    assert.equal(e.code, 'LOGIN_FAILED');
    assert.equal(e.message, LOGIN_FAILED_MESSAGE);
  });

  test('an empty password is refused before the directory, which would take it as an unauthenticated bind', async () => {
    // the fixture's directory does accept it: the refusal is ours
    const raw = new Client({ url: slapd.ldapsUrl, tlsOptions: { ca: fs.readFileSync(slapd.caFile, 'utf8') } });
    try {
      await raw.bind(dn('alice'), '');
    } finally {
      await raw.unbind();
    }
    const a = await authenticator();
    const e = await refusal(a.authenticate('alice', ''));
    assert.equal(e.code, 'LOGIN_FAILED');
    assert.equal(e.message, LOGIN_FAILED_MESSAGE);
    assert.equal((await a.diagnose('alice', '')).outcome, 'refused-input');
  });

  test('filter injection finds nobody: the typed name is escaped (RFC 4515)', async () => {
    assert.equal(escapeFilterValue('*)(uid=*'), '\\2a\\29\\28uid=\\2a');
    assert.equal(escapeFilterValue('a\\b\u0000'), 'a\\5cb\\00');
    const a = await authenticator();
    for (const name of ['*)(uid=*', 'admin)(|(uid=*', '*', 'al*', 'alice)(uid=alice']) {
      const d = await a.diagnose(name, 'alice-pw');
      assert.equal(d.outcome, 'unknown-user', `${name} matched an entry`);
      assert.equal((await refusal(a.authenticate(name, 'alice-pw'))).code, 'LOGIN_FAILED');
    }
    // escaping keeps real names working: a uid with parentheses signs in
    assert.deepEqual((await a.authenticate('pat(ops)', 'pat(ops)-pw')).roles, ['operator']);
  });

  test('a filter matching more than one entry signs nobody in', async () => {
    const a = await authenticator({ OUK_LDAP_USER_FILTER: '(|(uid={user})(objectClass=inetOrgPerson))' });
    assert.equal((await a.diagnose('alice', 'alice-pw')).outcome, 'ambiguous-user');
    assert.equal((await refusal(a.authenticate('alice', 'alice-pw'))).code, 'LOGIN_FAILED');
  });

  test('ldap:// upgraded with StartTLS signs in; plain ldap:// only when explicitly allowed', async () => {
    assert.deepEqual((await (await authenticator({ OUK_LDAP_URL: slapd.ldapUrl })).authenticate('alice', 'alice-pw')).roles, ['operator']);
    const plain = { ...slapd.env(), OUK_LDAP_URL: slapd.ldapUrl, OUK_LDAP_STARTTLS: 'false' };
    const e = (() => {
      try {
        ldapSettings(plain);
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    assert.ok(e instanceof OukError && e.code === 'DIRECTORY_NOT_CONFIGURED', 'plain ldap:// refused');
    assert.match(e.message, /in the clear/);
    assert.deepEqual((await (await authenticator({ ...plain, OUK_LDAP_ALLOW_PLAINTEXT: 'true' })).authenticate('alice', 'alice-pw')).roles, ['operator']);
  });
});

describe('the directory unavailable: never a sign-in', () => {
  test('nothing listening: DIRECTORY_UNAVAILABLE, retryable', async () => {
    const port = await freePort();
    const e = await refusal((await authenticator({ OUK_LDAP_URL: `ldaps://127.0.0.1:${port}` })).authenticate('alice', 'alice-pw'));
    assert.equal(e.code, 'DIRECTORY_UNAVAILABLE');
    assert.equal(e.retryable, true);
  });

  test('a server that accepts and never answers: DIRECTORY_UNAVAILABLE once the connect timeout passes (ldaps:// and StartTLS)', async () => {
    const held: net.Socket[] = [];
    const silent = net.createServer((s) => held.push(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    try {
      for (const url of [`ldaps://127.0.0.1:${port}`, `ldap://127.0.0.1:${port}`]) {
        const a = await authenticator({ OUK_LDAP_URL: url, OUK_LDAP_CONNECT_TIMEOUT_SECONDS: '1', OUK_LDAP_TIMEOUT_SECONDS: '1' });
        const e = await refusal(a.authenticate('alice', 'alice-pw'));
        assert.equal(e.code, 'DIRECTORY_UNAVAILABLE', url);
        assert.equal(e.retryable, true);
      }
    } finally {
      for (const s of held) s.destroy();
      silent.close();
    }
  });

  test('a certificate from another CA: DIRECTORY_UNAVAILABLE naming OUK_CA_FILE (ldaps:// and StartTLS)', async () => {
    for (const url of [slapd.ldapsUrl, slapd.ldapUrl]) {
      const e = await refusal((await authenticator({ OUK_LDAP_URL: url, OUK_CA_FILE: slapd.otherCaFile })).authenticate('alice', 'alice-pw'));
      assert.equal(e.code, 'DIRECTORY_UNAVAILABLE', url);
      assert.match(e.message, /not trusted.*OUK_CA_FILE/);
    }
  });

  test('the service account refused: DIRECTORY_UNAVAILABLE naming OUK_LDAP_BIND_DN, the password never shown', async () => {
    const file = path.join(tmpDir('ldap-bind'), 'pw');
    fs.writeFileSync(file, 'not-the-service-password\n');
    const e = await refusal((await authenticator({ OUK_LDAP_BIND_PASSWORD_FILE: file })).authenticate('alice', 'alice-pw'));
    assert.equal(e.code, 'DIRECTORY_UNAVAILABLE');
    assert.match(e.message, /refused the service account .*invalid credentials.*OUK_LDAP_BIND_DN/);
    assert.equal(e.retryable, false);
    assert.doesNotMatch(e.message, /not-the-service-password|alice-pw/);
  });
});

describe('configuration', () => {
  test('defaults, and what is refused before any connection', async () => {
    const s = ldapSettings(slapd.env());
    assert.ok(s);
    assert.equal(s.userFilter, DEFAULT_LDAP_USER_FILTER);
    assert.equal(s.nestedGroups, 'auto');
    assert.equal(ldapSettings({}), undefined);
    const code = (env: Env): string | undefined => {
      try {
        ldapSettings({ ...slapd.env(), ...env });
      } catch (e) {
        return e instanceof OukError ? e.code : String(e);
      }
      return undefined;
    };
    assert.equal(code({ OUK_LDAP_URL: 'http://127.0.0.1:389' }), 'DIRECTORY_NOT_CONFIGURED');
    assert.equal(code({ OUK_LDAP_BIND_DN: '' }), 'DIRECTORY_NOT_CONFIGURED');
    assert.equal(code({ OUK_LDAP_USER_FILTER: '(uid=alice)' }), 'DIRECTORY_NOT_CONFIGURED');
    assert.equal(code({ OUK_LDAP_NESTED_GROUPS: 'sometimes' }), 'DIRECTORY_NOT_CONFIGURED');
    assert.equal((await refusal(authenticator({ OUK_ROLE_MAP: '' }))).code, 'DIRECTORY_NOT_CONFIGURED');
    assert.equal((await refusal(authenticator({ OUK_LDAP_USER_FILTER: '(uid={user}' }))).code, 'DIRECTORY_NOT_CONFIGURED');
  });

  test('air-gap mode lets the process reach the directory it is configured with, and only that', () => {
    const hosts = (ldapUrl: string | undefined): string[] => allowedEndpoints(testConfig({ ldapUrl, airgapAllow: [] })).filter((e) => /directory/.test(e.service)).map((e) => `${e.host}:${e.port}`);
    assert.deepEqual(hosts('ldaps://dir.example.org'), ['dir.example.org:636']);
    assert.deepEqual(hosts('ldap://dc1.example.org:3268'), ['dc1.example.org:3268']);
    assert.deepEqual(hosts(undefined), []);
  });

  test("Active Directory's in-chain filter is one the client can send", () => {
    const f = inChainGroupsFilter('cn=J. (Smith),ou=people,dc=example,dc=org');
    assert.equal(f, '(member:1.2.840.113556.1.4.1941:=cn=J. \\28Smith\\29,ou=people,dc=example,dc=org)');
    assert.doesNotThrow(() => FilterParser.parseString(f));
  });
});

describe('stella auth test-ldap', () => {
  test('prints the DN, groups and roles; never the password (from a file or stdin); LOGIN_FAILED with the reason when the person cannot sign in', async () => {
    const dir = tmpDir('ldap-cli');
    const pw = path.join(dir, 'pw');
    fs.writeFileSync(pw, 'bob-pw\n');
    const env = childBaseEnv({ ...slapd.env() });
    const ok = await runStella(['auth', 'test-ldap', 'bob', '--password-file', pw], { cwd: dir, env });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`= ${dn('bob')}`));
    assert.match(ok.stdout, /cn=ouk-viewers,ou=groups/);
    assert.match(ok.stdout, /roles\s+viewer/);
    assert.doesNotMatch(ok.stdout + ok.stderr, /bob-pw/);
    // the password on stdin this time, as an operator pipes it
    const child = spawn(process.execPath, [path.join(repoRoot, 'bin/stella.js'), 'auth', 'test-ldap', 'carol'], { cwd: dir, env });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdin.end('carol-pw\n');
    const [exitCode] = (await once(child, 'close')) as [number | null];
    const no = { code: exitCode, stdout: out, stderr: err };
    assert.equal(no.code, 130, no.stderr);
    assert.match(no.stdout, /roles\s+\(none\)/);
    assert.match(no.stderr, /LOGIN_FAILED.*OUK_ROLE_MAP/);
    assert.doesNotMatch(no.stdout + no.stderr, /carol-pw/);
  });
});
