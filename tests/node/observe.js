'use strict';
// What a peer observed, printed as one JSON object per line on stdout.
const crypto = require('crypto');

function report(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

function message(data, isBinary) {
  const bytes = Buffer.isBuffer(data) ? data : Buffer.concat(data);
  const seen = {
    event: 'message',
    binary: isBinary,
    length: bytes.length,
    sha256: crypto.createHash('sha256').update(bytes).digest('hex'),
  };
  if (bytes.length <= 256) {
    seen[isBinary ? 'hex' : 'text'] = isBinary ? bytes.toString('hex') : bytes.toString('utf8');
  }
  return seen;
}

function payload(spec) {
  if (spec.hex !== undefined) return Buffer.from(spec.hex, 'hex');
  if (spec.repeat !== undefined) return Buffer.from(spec.repeat.repeat(spec.times), 'utf8');
  return Buffer.from(spec.text, 'utf8');
}

// The plan: argv[2], or stdin when there is no argument (plans larger than one argument).
function plan() {
  const fs = require('fs');
  return JSON.parse(process.argv.length > 2 ? process.argv[2] : fs.readFileSync(0, 'utf8'));
}

module.exports = { report, message, payload, plan };
