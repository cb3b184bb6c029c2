'use strict';
// A ws server that echoes every message and prints what it observed as JSON lines.
//
// plan (argv[2]): {protocol?, connections?}: the subprotocol to select when a client offers
// it, and how many connections to serve before exiting (default 1). The first line printed is
// {"event": "listening", "port": N}. A text message that is a JSON object with a "do" key is a
// command instead of something to echo:
//   {"do": "fragments", "parts": ["a", "b"], "binary"?: true}   send one message in frames
//   {"do": "close", "code": 4000, "reason": "bye"}               start the closing handshake
const WebSocket = require('ws');
const { report, message, payload, plan } = require('./observe');

const p = plan();
let remaining = p.connections || 1;
const server = new WebSocket.WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  handleProtocols: (offered) => (p.protocol && offered.has(p.protocol) ? p.protocol : false),
});

function command(data, isBinary) {
  if (isBinary) return null;
  try {
    const value = JSON.parse(data.toString('utf8'));
    return value && typeof value === 'object' && value.do ? value : null;
  } catch (err) {
    return null;
  }
}

server.on('listening', () => report({ event: 'listening', port: server.address().port }));
server.on('connection', (ws, request) => {
  report({ event: 'connection', path: request.url, protocol: ws.protocol });
  ws.on('message', (data, isBinary) => {
    report(message(data, isBinary));
    const cmd = command(data, isBinary);
    if (cmd === null) {
      ws.send(data, { binary: isBinary });
    } else if (cmd.do === 'fragments') {
      const last = cmd.parts.length - 1;
      cmd.parts.forEach((part, i) => ws.send(payload(part), { binary: !!cmd.binary, fin: i === last }));
    } else if (cmd.do === 'close') {
      ws.close(cmd.code, cmd.reason);
    }
  });
  ws.on('close', (code, reason) => {
    report({ event: 'close', code, reason: reason.toString('utf8') });
    remaining -= 1;
    if (remaining === 0) server.close(() => process.exit(0));
  });
});
