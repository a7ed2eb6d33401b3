// A small MCP server behind Gatehouse's gateway, built on the official MCP TypeScript SDK's
// server side: stateless Streamable HTTP at /mcp, one tool, `whoami`, which answers with the
// identity headers the gateway added (Gatehouse-Subject, -Client, -Scopes, -Account) and
// whether any Authorization header reached it (the gateway must remove it).
//
//   node mcp_upstream.mjs
//
// Listens on 127.0.0.1 on a port the OS picks and prints {"port": N} as its first line; runs
// until it is killed. It does no authorization of its own: that is the gateway's job.

import http from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

const MAX_BODY = 1 << 20;

function mcpServer() {
  const server = new McpServer({ name: 'gatehouse-test-upstream', version: '1.0.0' });
  server.registerTool(
    'whoami',
    { description: 'Who the gateway says is calling.' },
    async (extra) => {
      const headers = extra.requestInfo?.headers ?? {};
      const seen = {
        subject: headers['gatehouse-subject'] ?? null,
        client: headers['gatehouse-client'] ?? null,
        scopes: headers['gatehouse-scopes'] ?? null,
        account: headers['gatehouse-account'] ?? null,
        authorization: headers.authorization ?? null,
      };
      return {
        content: [{ type: 'text', text: JSON.stringify(seen) }],
        structuredContent: seen,
      };
    },
  );
  return server;
}

function refuse(res, status, message) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
}

async function body(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) {
      throw new Error('body too large');
    }
    chunks.push(chunk);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

const listener = http.createServer(async (req, res) => {
  const path = new URL(req.url, 'http://upstream').pathname;
  if (path !== '/mcp') {
    return refuse(res, 404, 'Not found');
  }
  // Stateless: no server-initiated stream (GET) and no session to end (DELETE).
  if (req.method !== 'POST') {
    res.setHeader('allow', 'POST');
    return refuse(res, 405, 'Method not allowed');
  }
  let parsed;
  try {
    parsed = await body(req);
  } catch (error) {
    return refuse(res, 400, `Bad request: ${error.message}`);
  }
  // A fresh server and transport per request, as the SDK documents for stateless servers.
  const server = mcpServer();
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: undefined,
    enableJsonResponse: true,
  });
  res.on('close', () => {
    transport.close();
    server.close();
  });
  try {
    await server.connect(transport);
    await transport.handleRequest(req, res, parsed);
  } catch (error) {
    console.error(error);
    if (!res.headersSent) {
      refuse(res, 500, 'Internal server error');
    }
  }
});

listener.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ port: listener.address().port }));
});
