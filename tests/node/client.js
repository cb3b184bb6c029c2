'use strict';
// A ws client that follows a JSON plan (argv[2] or stdin) and prints what it observed as JSON lines.
//
// plan: {url, protocols?, headers?, ca?, cert?, key?, steps: [step...]} where a step is
//   {send: {text|hex|repeat+times}, binary?}   one message
//   {fragments: [{text|hex}...], binary?}      one message sent as several frames
//   {wait: n}                                  until n messages have arrived in all
//   {close: {code?, reason?}}                  start the closing handshake
// After the steps the client waits for the connection to close, then exits.
const fs = require('fs');
const WebSocket = require('ws');
const { report, message, payload, plan } = require('./observe');

const p = plan();
const options = { headers: p.headers || {} };
if (p.ca) options.ca = fs.readFileSync(p.ca);
if (p.cert) options.cert = fs.readFileSync(p.cert);
if (p.key) options.key = fs.readFileSync(p.key);

const ws = new WebSocket(p.url, p.protocols || [], options);
let received = 0;
let waiting = null;

function send(data, opts) {
  return new Promise((resolve, reject) => ws.send(data, opts, (err) => (err ? reject(err) : resolve())));
}

function arrived(n) {
  return new Promise((resolve) => {
    if (received >= n) return resolve();
    waiting = { n, resolve };
  });
}

async function follow(steps) {
  for (const step of steps) {
    if (step.send) await send(payload(step.send), { binary: !!step.binary });
    if (step.fragments) {
      const last = step.fragments.length - 1;
      for (const [i, part] of step.fragments.entries()) {
        await send(payload(part), { binary: !!step.binary, fin: i === last });
      }
    }
    if (step.wait !== undefined) await arrived(step.wait);
    if (step.close) ws.close(step.close.code, step.close.reason);
  }
}

ws.on('open', () => {
  report({ event: 'open', protocol: ws.protocol });
  follow(p.steps || []).catch((err) => report({ event: 'error', message: String(err) }));
});
ws.on('message', (data, isBinary) => {
  received += 1;
  report(message(data, isBinary));
  if (waiting && received >= waiting.n) {
    waiting.resolve();
    waiting = null;
  }
});
ws.on('unexpected-response', (req, res) => {
  const chunks = [];
  res.on('data', (chunk) => chunks.push(chunk));
  res.on('end', () => {
    report({ event: 'refused', status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') });
    process.exit(0);
  });
});
ws.on('error', (err) => report({ event: 'error', message: err.message }));
ws.on('close', (code, reason) => {
  report({ event: 'close', code, reason: reason.toString('utf8') });
  process.exit(0);
});
