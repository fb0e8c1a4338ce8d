/** The PEM files of a `tls` config, read when the exporter starts. */
import { readFileSync } from 'node:fs';
import type { TlsConfig } from './config.js';

export interface TlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

export function readTlsFiles(tls: TlsConfig): TlsMaterial {
  const read = (key: 'ca_file' | 'cert_file' | 'key_file'): Buffer | undefined => {
    const path = tls[key];
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (error) {
      throw new Error(`tls::${key}: cannot read "${path}": ${(error as Error).message}`, { cause: error });
    }
  };
  return { ca: read('ca_file'), cert: read('cert_file'), key: read('key_file') };
}
