// Runs in the nodejs image as `/nodejs/bin/node /probe.js`; prints one JSON object.
const crypto = require('crypto');
const zlib = require('zlib');
const tls = require('tls');

const data = Buffer.from('distroless '.repeat(1000));
console.log(JSON.stringify({
  version: process.version,
  openssl: process.versions.openssl,
  sha256: crypto.createHash('sha256').update('abc').digest('hex'),
  gzip: zlib.gunzipSync(zlib.gzipSync(data)).equals(data),
  rootCertificates: tls.rootCertificates.length,
}));
