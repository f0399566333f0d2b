// Node.js TLS line echo server (tls + readline): node node_tls_echo.js PORT CERT KEY
const tls = require('tls');
const fs = require('fs');
const readline = require('readline');
const server = tls.createServer({ cert: fs.readFileSync(process.argv[3]), key: fs.readFileSync(process.argv[4]) }, (sock) => {
  sock.on('error', () => {});
  const rl = readline.createInterface({ input: sock, crlfDelay: Infinity });
  rl.on('line', (line) => sock.write(line + '\n'));
  rl.on('error', () => {});
  rl.on('close', () => sock.end());
});
server.on('tlsClientError', () => {});
server.listen(+process.argv[2], '127.0.0.1', 511);
