// node https-client.mjs PORT SERVERNAME CA_FILE|- COUNT [MAX_VERSION]: COUNT sequential HTTPS GETs to
// 127.0.0.1:PORT with SNI SERVERNAME, each on a new connection; prints {"ok":n,"errors":[codes]}.
import https from 'node:https';
import { readFileSync } from 'node:fs';

const [port, servername, caFile, count, maxVersion] = process.argv.slice(2);
const ca = caFile === '-' ? undefined : readFileSync(caFile);
let ok = 0;
const errors = [];
for (let i = 0; i < Number(count); i++) {
  await new Promise((resolve) => {
    const request = https.get({ host: '127.0.0.1', port: Number(port), servername, ca, maxVersion, agent: false, path: '/' }, (response) => {
      response.resume();
      response.on('end', () => resolve(ok++));
    });
    request.on('error', (error) => resolve(errors.push(error.code ?? error.message)));
  });
}
console.log(JSON.stringify({ ok, errors }));
