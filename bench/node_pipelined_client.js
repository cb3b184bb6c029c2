'use strict';
// Pipelined echo load from Node's ws client, for bench_server.py.
//
// Usage: node node_pipelined_client.js PORT SIZE WARMUP DURATION (seconds), with the ws package
// on NODE_PATH. Sends text messages of SIZE bytes as fast as ws's back-pressure lets it: up to
// PER_TURN at a time while less than 64 KiB waits in its buffer, then one turn of the event loop
// so the echoes are read. Counts the echoes that arrive in the DURATION seconds after WARMUP and
// prints {"rate": echoes per second}.
const WebSocket = require('ws');

const [port, size, warmup, duration] = process.argv.slice(2).map(Number);
const message = '0123456789abcdef'.repeat(Math.ceil(size / 16)).slice(0, size);
const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
let start = Infinity;
let end = Infinity;
let counted = 0;
let done = false;
const PER_TURN = 16;

function blast() {
  for (let i = 0; i < PER_TURN && !done && ws.bufferedAmount < 65536; i += 1) ws.send(message);
  if (!done) setImmediate(blast);
}

ws.on('open', () => {
  start = performance.now() + warmup * 1000;
  end = start + duration * 1000;
  blast();
});
ws.on('message', () => {
  const now = performance.now();
  if (now < start || done) return;
  if (now < end) {
    counted += 1;
    return;
  }
  done = true;
  process.stdout.write(JSON.stringify({ rate: counted / duration }) + '\n');
  ws.terminate();
});
ws.on('error', (err) => {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
