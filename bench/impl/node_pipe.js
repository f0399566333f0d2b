// Node.js: BYTES through a child (cat) and back, every byte compared;
// writes wait for 'drain'. node node_pipe.js BYTES CMD [ARG...]
const { spawn } = require('child_process');
const total = Number(process.argv[2]);
const cmd = process.argv.slice(3);
const block = Buffer.alloc(65536);
for (let i = 0; i < 65536; i++) block[i] = (i * 31 + 7) % 251;
const block2 = Buffer.concat([block, block]);
const t0 = process.hrtime.bigint();
const p = spawn(cmd[0], cmd.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
let left = total;
function write() {
  while (left > 0) {
    const n = Math.min(left, block.length);
    left -= n;
    if (!p.stdin.write(n === block.length ? block : block.subarray(0, n))) {
      p.stdin.once('drain', write);
      return;
    }
  }
  p.stdin.end();
}
write();
let got = 0, ok = true;
p.stdout.on('data', (data) => {
  let i = 0;
  while (i < data.length) {   // chunks may exceed 64 KiB
    const o = got % 65536, m = Math.min(data.length - i, 65536);
    if (block2.compare(data, i, i + m, o, o + m) !== 0) ok = false;
    i += m; got += m;
  }
});
p.on('close', () => {
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  ok = ok && got === total;
  console.log(`RESULT mb_per_s=${(got / secs / 1e6).toFixed(1)} bytes=${got} verified=${ok ? 'yes' : 'NO'} secs=${secs.toFixed(3)}`);
  process.exitCode = ok ? 0 : 1;
});
