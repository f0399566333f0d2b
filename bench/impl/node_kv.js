// Node.js key-value server (net + readline): node node_kv.js PORT
// "SET key value" -> "OK", "GET key" -> the value (or "NIL"); one write per reply.
const net = require('net');
const readline = require('readline');
const store = new Map();
const re = /^([A-Z]+) (\S+) ?(.*)$/;
net.createServer((sock) => {
  sock.on('error', () => {});
  const rl = readline.createInterface({ input: sock, crlfDelay: Infinity });
  rl.on('line', (line) => {
    const m = re.exec(line);
    if (m && m[1] === 'GET') {
      const v = store.get(m[2]);
      sock.write(v !== undefined ? v + '\n' : 'NIL\n');
    } else if (m && m[1] === 'SET') {
      store.set(m[2], m[3]);
      sock.write('OK\n');
    } else {
      sock.write('ERR\n');
    }
  });
  rl.on('close', () => sock.end());
}).listen(+process.argv[2], '127.0.0.1', 511);
