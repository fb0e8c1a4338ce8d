// node https-server.mjs KEY CERT: an HTTPS server on 127.0.0.1 (a free port); prints "ready PORT".
import https from 'node:https';
import { readFileSync } from 'node:fs';

const [key, cert] = process.argv.slice(2);
const server = https.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (request, response) => response.end('ok\n'));
server.listen(0, '127.0.0.1', () => console.log(`ready ${server.address().port}`));
