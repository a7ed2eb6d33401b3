// An OpenID Connect relying party built on openid-client v6, used unmodified against a running
// Gatehouse (crates/http/tests/api/oidc.rs runs it).
//
//   node openid_client_oidc.mjs sign-in BASE CLIENT_ID CLIENT_SECRET REDIRECT_URI EMAIL PASSWORD NOW
//     Discovery, the authorization code flow with PKCE (S256), state and a nonce through
//     Gatehouse's real login and consent pages (browser.mjs plays the user), the code exchanged
//     with client_secret_basic, the id_token validated by the library (signature against the
//     JWKS it fetches, with enableNonRepudiationChecks; iss, aud, exp, iat, nonce; the
//     authorization response's iss, RFC 9207), then userinfo with the access token. Prints
//     {claims, kid, userinfo, nonce, id_token, refresh_token}.
//
//   node openid_client_oidc.mjs after-rotation BASE CLIENT_ID CLIENT_SECRET ID_TOKEN REFRESH_TOKEN NOW
//     After `gatehouse signing-key rotate`: verifies the earlier ID_TOKEN again against the JWKS
//     fetched now (jose, openid-client's JOSE library), and refreshes with openid-client, whose
//     new id_token the library validates against the JWKS. Prints {old: {claims, kid},
//     refreshed: {claims, kid}}.
//
// NOW is the server's clock in Unix seconds (the tests run Gatehouse on a manual clock); the
// client's clock is set to it with openid-client's documented clockSkew. Plain http is allowed
// with the documented allowInsecureRequests: the server listens on 127.0.0.1 only. Any failure
// exits non-zero with the reason on stderr.

import * as client from 'openid-client';
import * as jose from 'jose';
import { Browser } from './browser.mjs';

function kidOf(jwt) {
  return jose.decodeProtectedHeader(jwt).kid;
}

async function configuration(base, clientId, clientSecret, now) {
  const skew = now - Math.floor(Date.now() / 1000);
  const config = await client.discovery(
    new URL(base),
    clientId,
    { client_secret: clientSecret, [client.clockSkew]: skew },
    client.ClientSecretBasic(clientSecret),
    { execute: [client.allowInsecureRequests] },
  );
  // Validate id_token signatures against the JWKS too (by default openid-client trusts the
  // TLS channel to the token endpoint for them, as OIDC Core §3.1.3.7 allows).
  client.enableNonRepudiationChecks(config);
  return config;
}

async function signIn([base, clientId, clientSecret, redirectUri, email, password, now]) {
  const config = await configuration(base, clientId, clientSecret, Number(now));
  const server = config.serverMetadata();
  if (server.issuer !== base) {
    throw new Error(`issuer ${server.issuer}, expected ${base}`);
  }
  if (!server.supportsPKCE()) {
    throw new Error('the discovery document does not advertise S256 PKCE');
  }
  const verifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid email read',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    nonce,
    state,
  });

  const callback = await new Browser(base).authorize(url.href, { email, password, redirectUri });

  const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
    pkceCodeVerifier: verifier,
    expectedNonce: nonce,
    expectedState: state,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  return {
    claims,
    kid: kidOf(tokens.id_token),
    userinfo,
    nonce,
    id_token: tokens.id_token,
    refresh_token: tokens.refresh_token,
  };
}

async function afterRotation([base, clientId, clientSecret, idToken, refreshToken, now]) {
  const config = await configuration(base, clientId, clientSecret, Number(now));
  const server = config.serverMetadata();
  // The id_token signed before the rotation, against the JWKS as it is now.
  const jwks = jose.createRemoteJWKSet(new URL(server.jwks_uri));
  const old = await jose.jwtVerify(idToken, jwks, {
    issuer: server.issuer,
    audience: clientId,
    algorithms: ['RS256'],
    currentDate: new Date(Number(now) * 1000),
  });
  // A fresh id_token from the refresh grant, validated by openid-client.
  const tokens = await client.refreshTokenGrant(config, refreshToken);
  if (!tokens.id_token) {
    throw new Error(`the refresh returned no id_token: ${JSON.stringify(tokens)}`);
  }
  return {
    old: { claims: old.payload, kid: old.protectedHeader.kid },
    refreshed: { claims: tokens.claims(), kid: kidOf(tokens.id_token) },
  };
}

const [mode, ...args] = process.argv.slice(2);
const run = { 'sign-in': signIn, 'after-rotation': afterRotation }[mode];
if (!run) {
  console.error(`unknown mode ${mode}: sign-in or after-rotation`);
  process.exit(2);
}
try {
  console.log(JSON.stringify(await run(args)));
} catch (error) {
  console.error(error?.stack ?? error);
  if (error?.cause) {
    console.error('cause:', error.cause);
  }
  process.exit(1);
}
