// Node.js line echo server (net + readline): node node_echo.js PORT
const net = require('net');
const readline = require('readline');
net.createServer((sock) => {
  sock.on('error', () => {});
  const rl = readline.createInterface({ input: sock, crlfDelay: Infinity });
  rl.on('line', (line) => sock.write(line + '\n'));
  rl.on('close', () => sock.end());
}).listen(+process.argv[2], '127.0.0.1', 511);
