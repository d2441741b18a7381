/**
 * JWT tokens: issued with the operator's private key, verified offline with
 * the public key; every refusal case gives TOKEN_INVALID with its own message.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import * as jose from 'jose';
import { isOukError } from '../lib/errors.ts';
import { decodeToken, hasRole, issueToken, loadPublicTokenKey, verifyToken } from '../lib/tokens.ts';
import { tmpDir } from './helpers/services.ts';

const dir = tmpDir('tokens');
function keyPair(name: string, type: 'ec' | 'ed25519' | 'rsa'): { priv: string; pub: string; pubPem: string } {
  const { privateKey, publicKey } =
    type === 'ec'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : type === 'rsa'
        ? generateKeyPairSync('rsa', { modulusLength: 2048 })
        : generateKeyPairSync('ed25519');
  const priv = path.join(dir, `${name}.key`);
  const pub = path.join(dir, `${name}.pub`);
  const pubPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  fs.writeFileSync(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  fs.writeFileSync(pub, pubPem);
  return { priv, pub, pubPem };
}

const ec = keyPair('ec', 'ec');
const other = keyPair('other', 'ec');
const ed = keyPair('ed', 'ed25519');
const rsa = keyPair('rsa', 'rsa');
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const nowSec = () => Math.floor(Date.now() / 1000);

async function refusal(token: string, pubSource = ec.pub, issuer?: string): Promise<string> {
  try {
    await verifyToken(token, loadPublicTokenKey(pubSource), issuer ? { issuer } : {});
  } catch (e) {
    assert.ok(isOukError(e), `not an OukError: ${e}`);
    assert.equal(e.code, 'TOKEN_INVALID');
    return e.message;
  }
  assert.fail('the token was accepted');
}

describe('tokens', () => {
  it('issues and verifies an ES256 token (key from a path or from PEM text)', async () => {
    const { token, claims, alg } = await issueToken({ privateKey: ec.priv, sub: 'ci-runner', tier: 1000, ttl: '30d' });
    assert.equal(alg, 'ES256');
    for (const src of [ec.pub, ec.pubPem]) {
      const v = await verifyToken(token, loadPublicTokenKey(src));
      assert.equal(v.claims.sub, 'ci-runner');
      assert.equal(v.claims.tier, 1000);
      assert.equal(v.id, claims.jti);
      assert.equal(v.claims.exp - v.claims.iat!, 30 * 86400);
    }
    assert.equal(decodeToken(token).header.alg, 'ES256');
  });

  it('an operator token carries its role claim, signed', async () => {
    const { token } = await issueToken({ privateKey: ec.priv, sub: 'alice', role: 'operator', ttl: '60s' });
    assert.equal((await verifyToken(token, loadPublicTokenKey(ec.pub))).claims.role, 'operator');
    const plain = (await issueToken({ privateKey: ec.priv, sub: 'bob', ttl: '60s' })).token;
    assert.equal((await verifyToken(plain, loadPublicTokenKey(ec.pub))).claims.role, undefined);
    // the role is part of what is signed: a token altered to claim it does not verify
    const [h, , sig] = plain.split('.');
    const claimed = { ...decodeToken(plain).claims, role: 'operator' };
    assert.match(await refusal(`${h}.${b64(claimed)}.${sig}`), /signature does not verify/);
  });

  it('EdDSA and RS256 keys pin their own algorithm', async () => {
    for (const k of [ed, rsa]) {
      const { token, alg } = await issueToken({ privateKey: k.priv, sub: 's', ttl: '60s' });
      assert.equal((await verifyToken(token, loadPublicTokenKey(k.pub))).alg, alg);
    }
    assert.equal(loadPublicTokenKey(ed.pub).alg, 'EdDSA');
    assert.equal(loadPublicTokenKey(rsa.pub).alg, 'RS256');
  });

  it('refuses each bad token with its own message', async () => {
    const messages: Record<string, string> = {};
    // alg none
    messages.none = await refusal(`${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'x', iss: 'stella-ouk', exp: nowSec() + 60 })}.`);
    assert.match(messages.none, /unsigned \(alg "none"\)/);
    // key confusion: HS256 with the public key PEM as the HMAC secret
    const confused = await new jose.SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('x')
      .setIssuer('stella-ouk')
      .setExpirationTime(nowSec() + 60)
      .sign(new TextEncoder().encode(ec.pubPem));
    messages.hmac = await refusal(confused);
    assert.match(messages.hmac, /HMAC-signed \(HS256\).*key confusion/);
    // wrong issuer
    const wrongIss = (await issueToken({ privateKey: ec.priv, sub: 'x', ttl: '60s', issuer: 'someone-else' })).token;
    messages.issuer = await refusal(wrongIss);
    assert.match(messages.issuer, /issuer "someone-else" is not the issuer this host trusts \("stella-ouk"/);
    // expired
    const expired = (await issueToken({ privateKey: ec.priv, sub: 'x', ttl: '60s', now: new Date(Date.now() - 3600_000) })).token;
    messages.expired = await refusal(expired);
    assert.match(messages.expired, /expired at \d{4}-\d\d-\d\dT/);
    // signed by another key
    const forged = (await issueToken({ privateKey: other.priv, sub: 'x', ttl: '60s' })).token;
    messages.signature = await refusal(forged);
    assert.match(messages.signature, /signature does not verify/);
    // altered payload, original signature
    const good = (await issueToken({ privateKey: ec.priv, sub: 'x', ttl: '60s' })).token;
    const [h, , sig] = good.split('.');
    messages.altered = await refusal(`${h}.${b64({ sub: 'admin', iss: 'stella-ouk', exp: nowSec() + 9999, tier: 1000000 })}.${sig}`);
    assert.match(messages.altered, /signature does not verify/);
    delete messages.altered; // same cause as a forged signature, same message
    // another asymmetric algorithm than the key's
    const rsaToken = (await issueToken({ privateKey: rsa.priv, sub: 'x', ttl: '60s' })).token;
    messages.alg = await refusal(rsaToken);
    assert.match(messages.alg, /signed with RS256, but STELLA_JWT_PUBLIC_KEY is a ES256 key/);
    // no expiry
    const noExp = await new jose.SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setSubject('x').setIssuer('stella-ouk').sign(await jose.importPKCS8(fs.readFileSync(ec.priv, 'utf8'), 'ES256'));
    messages.noExp = await refusal(noExp);
    assert.match(messages.noExp, /no expiry/);
    // garbage
    messages.garbage = await refusal('not-a-token');
    assert.match(messages.garbage, /not a compact JWT/);
    const distinct = new Set(Object.values(messages));
    assert.equal(distinct.size, Object.keys(messages).length, `messages repeat: ${JSON.stringify(messages, null, 2)}`);
  });

  it('a custom issuer (STELLA_JWT_ISSUER) is checked', async () => {
    const t = (await issueToken({ privateKey: ec.priv, sub: 'x', ttl: '60s', issuer: 'site-a' })).token;
    assert.equal((await verifyToken(t, loadPublicTokenKey(ec.pub), { issuer: 'site-a' })).claims.iss, 'site-a');
    assert.match(await refusal(t, ec.pub, 'site-b'), /"site-a" is not the issuer this host trusts \("site-b"/);
  });

  it('refuses a token whose tier is not a sane number', async () => {
    const key = await jose.importPKCS8(fs.readFileSync(ec.priv, 'utf8'), 'ES256');
    const t = await new jose.SignJWT({ tier: -5 }).setProtectedHeader({ alg: 'ES256' }).setSubject('x').setIssuer('stella-ouk').setExpirationTime(nowSec() + 60).sign(key);
    assert.match(await refusal(t), /tier claim -5/);
  });

  it('refuses a signed token whose claims are of the wrong type (a `sub` that is an object or empty)', async () => {
    const key = await jose.importPKCS8(fs.readFileSync(ec.priv, 'utf8'), 'ES256');
    const signed = (claims: Record<string, unknown>) =>
      new jose.SignJWT({ iss: 'stella-ouk', exp: nowSec() + 60, ...claims }).setProtectedHeader({ alg: 'ES256' }).sign(key);
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ sub: { name: 'admin' } }, /subject \(sub claim: who the token is for\) is an object, not a string/],
      [{ sub: '' }, /subject .* is empty/],
      [{ sub: '   ' }, /subject .* is empty/],
      [{ sub: ['a'] }, /subject .* is a list, not a string/],
      [{ sub: 'x'.repeat(257) }, /257 characters long, over 256/],
      [{ sub: 'ci\u001b]0;owned\u0007' }, /subject .* holds a control character/],
      [{ sub: 'x', jti: 42 }, /token id \(jti claim\) is a number, not a string/],
      [{ sub: 'x', jti: '' }, /token id \(jti claim\) is empty/],
      [{ sub: 'x', role: ['operator'] }, /role claim \["operator"\] is not a string/],
      [{ sub: 'x', role: { operator: true } }, /role claim .* is not a string/],
      [{ sub: 'x', roles: 'operator' }, /roles claim "operator" is not a list/],
      [{ sub: 'x', roles: [1] }, /roles claim \[1\] is not a list/],
      [{ sub: 'x', scope: ['operator'] }, /scope claim .* is not a string/],
      [{ sub: 'x', tier: '1000' }, /tier claim "1000" is not a whole number/],
    ];
    for (const [claims, message] of cases) assert.match(await refusal(await signed(claims)), message, JSON.stringify(claims));
    // well-typed claims are taken as they are
    const ok = await verifyToken(await signed({ sub: 'ci-runner', jti: 'j-1', role: 'viewer', roles: ['other'], scope: 'read operator' }), loadPublicTokenKey(ec.pub));
    assert.deepEqual([ok.claims.sub, ok.id, ok.roles], ['ci-runner', 'j-1', ['viewer', 'operator']]);
  });

  it('roles rank viewer < operator < admin; a scan token has none; unknown role words grant nothing', async () => {
    const pub = loadPublicTokenKey(ec.pub);
    const roles = async (role?: string) => verifyToken((await issueToken({ privateKey: ec.priv, sub: 's', ttl: '60s', ...(role ? { role } : {}) })).token, pub);
    const scan = await roles();
    const viewer = await roles('viewer');
    const operator = await roles('operator');
    const admin = await roles('admin');
    assert.deepEqual(
      [scan, viewer, operator, admin].map((t) => [hasRole(t, 'viewer'), hasRole(t, 'operator'), hasRole(t, 'admin')]),
      [
        [false, false, false],
        [true, false, false],
        [true, true, false],
        [true, true, true],
      ],
    );
    const key = await jose.importPKCS8(fs.readFileSync(ec.priv, 'utf8'), 'ES256');
    const odd = await new jose.SignJWT({ role: 'superuser' }).setProtectedHeader({ alg: 'ES256' }).setSubject('x').setIssuer('stella-ouk').setExpirationTime(nowSec() + 60).sign(key);
    assert.deepEqual((await verifyToken(odd, pub)).roles, []);
    // `stella token issue --role` takes only the known roles
    await assert.rejects(issueToken({ privateKey: ec.priv, sub: 's', ttl: '60s', role: 'superuser' }), (e) => isOukError(e) && e.code === 'USAGE' && /viewer, operator, admin/.test(e.message));
  });

  it('refuses weak or unusable keys', () => {
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    assert.throws(() => loadPublicTokenKey(weak), (e) => isOukError(e) && e.code === 'KEY_INVALID' && /2048/.test(e.message));
    assert.throws(() => loadPublicTokenKey(path.join(dir, 'missing.pub')), (e) => isOukError(e) && e.code === 'KEY_INVALID');
  });

  it('a lifetime is a jose duration (or plain seconds) counted from the issuer\'s clock; a bad one is USAGE', async () => {
    const now = new Date('2028-02-29T23:59:50Z');
    const iat = now.getTime() / 1000;
    for (const [ttl, secs] of [['30d', 2592000], ['12h', 43200], ['90m', 5400], ['3600s', 3600], ['2 weeks', 1209600], ['90', 90]] as const) {
      const { token, claims } = await issueToken({ privateKey: ec.priv, sub: 's', ttl, now });
      assert.deepEqual([claims.iat, claims.exp], [iat, iat + secs], ttl);
      const v = await verifyToken(token, loadPublicTokenKey(ec.pub), { now: new Date((iat + secs - 1) * 1000) });
      assert.deepEqual([v.claims.iat, v.claims.exp], [iat, iat + secs], `${ttl}, verified`);
    }
    for (const ttl of ['soon', '30x', '', '0s', '-1h', '1h ago']) {
      await assert.rejects(issueToken({ privateKey: ec.priv, sub: 's', ttl, now }), (e) => isOukError(e) && e.code === 'USAGE' && e.message.startsWith(`--ttl ${ttl}: `), ttl);
    }
  });
});
