// Node.js: N setTimeout of random length in [MIN_MS, MAX_MS] ms.
// node node_timers.js N MIN_MS MAX_MS
const n = +process.argv[2], minMs = +process.argv[3], maxMs = +process.argv[4];
const now = () => Number(process.hrtime.bigint()) / 1e6;
const late = [];
let last = 0;
const t0 = now();
for (let i = 0; i < n; i++) {
  const ms = minMs + Math.random() * (maxMs - minMs);
  const due = now() + ms;
  setTimeout(() => {
    const t = now();
    late.push(t - due);
    last = t;
    if (late.length === n) {
      late.sort((a, b) => a - b);
      console.log(`RESULT total_s=${((last - t0) / 1e3).toFixed(3)} setup_s=${(setup / 1e3).toFixed(3)} late_p50_ms=${late[n >> 1].toFixed(2)} late_p99_ms=${late[Math.floor(n * 0.99)].toFixed(2)} late_min_ms=${late[0].toFixed(2)} late_max_ms=${late[n - 1].toFixed(2)} fired=${n}`);
    }
  }, ms);
}
const setup = now() - t0;
