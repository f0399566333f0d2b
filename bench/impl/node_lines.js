// Node.js: count the lines of stdin (a pipe) with readline.
const readline = require('readline');
const t0 = process.hrtime.bigint();
let lines = 0, bytes = 0;
const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', (line) => { lines++; bytes += Buffer.byteLength(line); });
rl.on('close', () => {
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`RESULT lines_per_s=${(lines / secs).toFixed(0)} mb_per_s=${((bytes + lines) / secs / 1e6).toFixed(1)} lines=${lines} bytes=${bytes} secs=${secs.toFixed(3)}`);
});
