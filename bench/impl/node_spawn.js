// Node.js: spawn /bin/true N times, INFLIGHT at once (child_process.spawn,
// 'exit' starts the next). node node_spawn.js N INFLIGHT
const { spawn } = require('child_process');
const total = +process.argv[2], inflight = +process.argv[3];
let started = 0, done = 0, fails = 0;
const t0 = process.hrtime.bigint();
function start() {
  started++;
  const p = spawn('/bin/true', [], { stdio: 'ignore' });
  p.on('exit', (code, sig) => {
    if (code !== 0) fails++;
    done++;
    if (started < total) start();
    else if (done === total) {
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      console.log(`RESULT spawns_per_s=${(done / secs).toFixed(0)} spawns=${done} fails=${fails} secs=${secs.toFixed(3)}`);
    }
  });
}
for (let i = 0; i < Math.min(inflight, total); i++) start();
