// Runs in the nodejs image as `node -e <this> PORT`: TLS to 127.0.0.1:PORT with Node's
// default trust (Debian's Node reads OpenSSL's default store: $SSL_CERT_FILE); prints one
// JSON line.
const tls = require('tls');
const s = tls.connect({ host: '127.0.0.1', port: Number(process.argv[1]) }, () => {
  console.log(JSON.stringify({ authorized: s.authorized }));
  s.end();
});
s.on('error', (e) => {
  console.log(JSON.stringify({ error: e.code || String(e) }));
  process.exitCode = 2;
});
