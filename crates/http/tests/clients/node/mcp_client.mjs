// An MCP client built on the official MCP TypeScript SDK, its OAuth unmodified, against an MCP
// server behind Gatehouse's gateway (crates/http/tests/api/mcp.rs runs it).
//
//   node mcp_client.mjs MCP_URL EMAIL PASSWORD
//
// What the SDK does by itself, from nothing but MCP_URL: it POSTs `initialize`, gets 401 from
// the gateway, reads `resource_metadata` from the Bearer challenge, fetches the protected
// resource metadata (RFC 9728) and the authorization server metadata (RFC 8414), registers a
// public client (RFC 7591) and sends the user to the authorization endpoint with PKCE (S256)
// and `resource` (RFC 8707). This file is only the application around the SDK, as its
// documentation asks: an OAuthClientProvider keeping the client information, tokens and code
// verifier in memory; a loopback callback listener (RFC 8252) for the redirect; and, standing in
// for the user, browser.mjs, which signs in and allows on Gatehouse's real pages. Then the SDK
// exchanges the code (finishAuth), connects again with the token and calls the `whoami` tool.
//
// Every HTTP request the SDK makes goes through the transport's documented `fetch` option,
// which records it (method, URL, status, challenge, and the non-secret parameters) for the
// test to check. Prints {requests, authorization_url, client_information, tokens, tools,
// whoami}; any failure exits non-zero with the reason on stderr.

import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Browser } from './browser.mjs';

const [mcpUrl, email, password] = process.argv.slice(2);
const requests = [];

/** The SDK's fetch, recorded. Request bodies are summarised without secrets or codes. */
async function recordingFetch(url, init = {}) {
  const entry = { method: (init.method ?? 'GET').toUpperCase(), url: String(url) };
  const headers = new Headers(init.headers);
  const authorization = headers.get('authorization');
  if (authorization) {
    entry.authorization = authorization.split(' ')[0];
  }
  if (init.body instanceof URLSearchParams) {
    const form = {};
    for (const [key, value] of init.body) {
      form[key] = ['grant_type', 'resource', 'redirect_uri', 'client_id'].includes(key) ? value : '…';
    }
    entry.form = form;
  } else if (typeof init.body === 'string' && String(url).endsWith('/register')) {
    entry.json = JSON.parse(init.body);
  } else if (typeof init.body === 'string') {
    entry.rpc = JSON.parse(init.body).method;
  }
  const response = await fetch(url, init);
  entry.status = response.status;
  const challenge = response.headers.get('www-authenticate');
  if (challenge) {
    entry.www_authenticate = challenge;
  }
  requests.push(entry);
  return response;
}

/** The loopback listener the authorization server redirects the user's browser to. */
function callbackListener() {
  let resolve;
  const received = new Promise((r) => (resolve = r));
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname !== '/callback') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end('Signed in; you may close this window.');
    resolve(url.searchParams);
  });
  return new Promise((ready) =>
    server.listen(0, '127.0.0.1', () =>
      ready({ port: server.address().port, received, close: () => server.close() }),
    ),
  );
}

/** The application's OAuthClientProvider: everything in memory. */
class MemoryProvider {
  constructor(redirectUrl, browser) {
    this._redirectUrl = redirectUrl;
    this._browser = browser;
    this._state = randomBytes(16).toString('base64url');
    this.authorizationUrl = undefined;
  }
  get redirectUrl() {
    return this._redirectUrl;
  }
  get clientMetadata() {
    return {
      client_name: 'Gatehouse test agent',
      redirect_uris: [this._redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() {
    return this._state;
  }
  clientInformation() {
    return this._clientInformation;
  }
  saveClientInformation(information) {
    this._clientInformation = information;
  }
  tokens() {
    return this._tokens;
  }
  saveTokens(tokens) {
    this._tokens = tokens;
  }
  saveCodeVerifier(verifier) {
    this._codeVerifier = verifier;
  }
  codeVerifier() {
    if (!this._codeVerifier) {
      throw new Error('no code verifier saved');
    }
    return this._codeVerifier;
  }
  async redirectToAuthorization(authorizationUrl) {
    this.authorizationUrl = authorizationUrl.href;
    // The user's browser: Gatehouse's login and consent pages, then our callback.
    const callback = await this._browser.authorize(authorizationUrl.href, {
      email,
      password,
      redirectUri: this._redirectUrl,
    });
    const res = await this._browser.request(callback);
    await this._browser.expect(res, 200, `GET ${callback}`);
  }
}

async function main() {
  const listener = await callbackListener();
  const redirectUrl = `http://127.0.0.1:${listener.port}/callback`;
  const provider = new MemoryProvider(redirectUrl, new Browser(new URL(mcpUrl).origin));
  const transportOptions = { authProvider: provider, fetch: recordingFetch };

  // First attempt: unauthorized; the SDK discovers, registers and sends the user to sign in.
  const first = new StreamableHTTPClientTransport(new URL(mcpUrl), transportOptions);
  const unauthorized = new Client({ name: 'gatehouse-test-agent', version: '1.0.0' });
  try {
    await unauthorized.connect(first);
    throw new Error('connected without authorization');
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) {
      throw error;
    }
  }
  const query = await listener.received;
  listener.close();
  if (query.get('error')) {
    throw new Error(`authorization refused: ${query}`);
  }
  if (query.get('state') !== provider.state()) {
    throw new Error(`state ${query.get('state')}, expected ${provider.state()}`);
  }
  await first.finishAuth(query.get('code'));

  // Second attempt, with the token.
  const client = new Client({ name: 'gatehouse-test-agent', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), transportOptions));
  const tools = await client.listTools();
  const result = await client.callTool({ name: 'whoami', arguments: {} });
  await client.close();

  const { client_secret: _secret, ...clientInformation } = provider.clientInformation();
  return {
    requests,
    authorization_url: provider.authorizationUrl,
    callback_iss: query.get('iss'),
    client_information: clientInformation,
    tokens: provider.tokens(),
    tools: tools.tools.map((t) => t.name),
    whoami: result.structuredContent,
  };
}

try {
  console.log(JSON.stringify(await main()));
} catch (error) {
  console.error(error?.stack ?? error);
  console.error('requests so far:', JSON.stringify(requests, null, 1));
  process.exit(1);
}
