// Node.js WebSocket echo server on the `ws` package (npm; bench/deps.sh
// installs it into bench/build/npm): node node_ws_echo.js PORT
const WebSocket = require('ws');
const wss = new WebSocket.Server({ host: '127.0.0.1', port: +process.argv[2], backlog: 511 });
wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
