// Node.js http (or https) server: node node_http.js PORT FILE [CERT KEY]
//   /      hello world (text/plain)
//   /json  a 4 KiB JSON-ish body (made once; the bench measures HTTP, not JSON)
//   /file  FILE (1 MiB) streamed from disk with fs.createReadStream on every request
const fs = require('fs');
const [port, file, cert, key] = process.argv.slice(2);
const items = [];
for (let i = 1; i <= 40; i++) {
  items.push(`{"id":${i},"name":"item ${String(i).padStart(3, '0')}","tags":["neap","http","bench"],"price":${i * 3}.99,"stock":${i * 7}}`);
}
let JSON_BODY = '{"items":[' + items.join(',') + ']}';
JSON_BODY = JSON_BODY + ' '.repeat(4096 - JSON_BODY.length);
const size = fs.statSync(file).size;
function handler(req, res) {
  const path = req.url.split('?')[0];
  if (path === '/') {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 13 });
    res.end('Hello, World!');
  } else if (path === '/json') {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': 4096 });
    res.end(JSON_BODY);
  } else if (path === '/file') {
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': size });
    fs.createReadStream(file, { highWaterMark: 262144 }).pipe(res);
  } else {
    res.writeHead(404);
    res.end('not found\n');
  }
}
const server = cert
  ? require('https').createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, handler)
  : require('http').createServer(handler);
server.keepAliveTimeout = 60000;
server.listen(+port, '127.0.0.1', 511);
