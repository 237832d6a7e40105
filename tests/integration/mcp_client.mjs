#!/usr/bin/env node
// The independent side of test_mcp.cpp: the Model Context Protocol's own
// TypeScript SDK (npm @modelcontextprotocol/sdk, installed by tools/setup
// into tests/npm) as the client of kairos-mcp.
//
//   mcp_client.mjs MCP_BIN [ARGS...]
//
// Prints one JSON object: what the session saw (tools listed, each call's
// isError and text, resources), then exits 0; exits 1 with a message when
// the SDK cannot talk to the server at all.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const sdk = path.join(here, '..', 'npm', 'node_modules', '@modelcontextprotocol', 'sdk', 'dist', 'esm');
let Client, StdioClientTransport;
try {
  ({ Client } = await import(pathToFileURL(path.join(sdk, 'client', 'index.js')).href));
  ({ StdioClientTransport } = await import(pathToFileURL(path.join(sdk, 'client', 'stdio.js')).href));
} catch (e) {
  process.stderr.write(`mcp_client: the MCP SDK is not installed in tests/npm (run tools/setup): ${e.message}\n`);
  process.exit(2);
}

const [bin, ...args] = process.argv.slice(2);
const out = { tools: [], calls: {}, resources: [], malformed: [] };

async function session(extra, calls) {
  const client = new Client({ name: 'kairos-test', version: '1.0.0' });
  await client.connect(new StdioClientTransport({ command: bin, args: [...extra, ...args], stderr: 'ignore' }));
  for (const [key, name, a] of calls) {
    try {
      const r = await client.callTool({ name, arguments: a });
      out.calls[key] = { isError: !!r.isError, text: (r.content || []).map((c) => c.text).join('\n'),
                         structured: r.structuredContent !== undefined };
    } catch (e) {
      out.calls[key] = { rpcError: e.code ?? null, text: e.message };
    }
  }
  return client;
}

try {
  const ro = await session([], [
    ['status', 'status', {}],
    ['nodes', 'nodes', {}],
    ['node', 'node', { id: 'n1' }],
    ['conflicts', 'conflicts', { limit: 5 }],
    ['jobs', 'jobs', {}],
    ['ball_show', 'ball_show', { session: 'nosuchplay' }],
    ['ball_verify', 'ball_verify', { session: 'nosuchplay' }],
    ['freeze_read_only', 'freeze', {}],
    ['ask_slow', 'ask_mesh', { question: 'who is slow?' }],
    ['ask_freeze_read_only', 'ask_mesh', { question: 'freeze cluster c1', confirm: true }],
    ['bad_argument', 'nodes', { state: 'sideways' }],
    ['unknown_argument', 'status', { verbose: true }],
  ]);
  out.tools = (await ro.listTools()).tools.map((t) => ({ name: t.name, schema: t.inputSchema.type,
                                                         readOnly: t.annotations?.readOnlyHint }));
  out.resources = (await ro.listResources()).resources.map((r) => r.uri);
  const status = await ro.readResource({ uri: 'kairos://mesh/status' });
  out.status_resource = JSON.parse(status.contents[0].text);
  await ro.close();

  const rw = await session(['--allow-write'], [
    ['freeze', 'freeze', { window_ms: 1500 }],
    ['thaw', 'thaw', { window_ms: 1500 }],
    ['ask_route_unconfirmed', 'ask_mesh', { question: 'route around n2' }],
    ['ask_route', 'ask_mesh', { question: 'route around n2', confirm: true }],
    ['ask_back', 'ask_mesh', { question: 'stop routing around n2', confirm: true }],
  ]);
  await rw.close();
} catch (e) {
  process.stderr.write(`mcp_client: ${e.stack}\n`);
  process.exit(1);
}

// Malformed JSON-RPC straight on the server's stdin: each gets an error object, and it still answers after.
const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'ignore'] });
let buffer = '';
const lines = [];
child.stdout.on('data', (d) => {
  buffer += d;
  let nl;
  while ((nl = buffer.indexOf('\n')) >= 0) {
    lines.push(buffer.slice(0, nl));
    buffer = buffer.slice(nl + 1);
  }
});
for (const l of ['{not json', '[1,2]', '{"jsonrpc":"1.0","id":7,"method":"ping"}', '{"jsonrpc":"2.0","id":8,"method":"no/such"}',
                 '{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"node","arguments":{"id":"--help"}}}',
                 '{"jsonrpc":"2.0","id":10,"method":"ping"}']) child.stdin.write(l + '\n');
const deadline = Date.now() + 10000;
while (lines.length < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
child.stdin.end();
out.malformed = lines.map((l) => JSON.parse(l));
process.stdout.write(JSON.stringify(out) + '\n');
