/**
 * A token's lifetime is capped (STELLA_JWT_MAX_DAYS, default 366 days from
 * now): a validly signed token with `exp` 1e15 is refused, as one for a few
 * weeks is accepted. The clock is injected: no dependence on today.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import * as jose from 'jose';
import { loadConfig } from '../lib/config.ts';
import { isOukError } from '../lib/errors.ts';
import { DEFAULT_MAX_TOKEN_DAYS, loadPublicTokenKey, verifyToken } from '../lib/tokens.ts';

describe('token lifetime', () => {
  const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pub = loadPublicTokenKey(keys.publicKey.export({ type: 'spki', format: 'pem' }).toString());
  const now = new Date('2027-03-01T12:00:00Z');
  const iat = Math.floor(now.getTime() / 1000);
  const sign = (exp: number) => new jose.SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setSubject('ci').setIssuer('stella-ouk').setIssuedAt(iat).setExpirationTime(exp).sign(keys.privateKey);

  it('a token for 30 days is accepted; one until the year 31,000,000 is refused, saying why', async () => {
    assert.equal((await verifyToken(await sign(iat + 30 * 86400), pub, { now })).claims.sub, 'ci');
    await assert.rejects(verifyToken(await sign(1e15), pub, { now }), (e) => isOukError(e) && e.code === 'TOKEN_INVALID' && /more than 366 days from now \(STELLA_JWT_MAX_DAYS\)/.test(e.message));
  });

  it('the cap is STELLA_JWT_MAX_DAYS, counted from the verifier\'s clock', async () => {
    assert.equal(DEFAULT_MAX_TOKEN_DAYS, 366);
    assert.equal(loadConfig({}).jwtMaxDays, 366);
    assert.equal(loadConfig({ STELLA_JWT_MAX_DAYS: '7' }).jwtMaxDays, 7);
    const tenDays = await sign(iat + 10 * 86400);
    await assert.rejects(verifyToken(tenDays, pub, { now, maxDays: 7 }), /more than 7 days/);
    const later = new Date(now.getTime() + 5 * 86400_000);
    assert.equal((await verifyToken(tenDays, pub, { now: later, maxDays: 7 })).claims.sub, 'ci', 'five days on, it has five left');
  });
});
