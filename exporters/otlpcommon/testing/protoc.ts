/**
 * Decoding with protoc (Debian's protobuf-compiler), independently of the
 * protobufjs that encoded: `protoc --decode` prints the text format, parsed
 * here into a tree of fields. For tests.
 */
import { spawnSync } from 'node:child_process';

/** A decoded message: each field name maps to its values in order (one for a singular field). */
export interface TextMessage {
  [field: string]: TextValue[];
}
export type TextValue = string | TextMessage;

/** Runs `protoc -I protoDir --decode=messageType protoFile` on `body` and parses what it prints. */
export function protocDecode(body: Uint8Array, messageType: string, protoDir: string, protoFile: string): TextMessage {
  return parseTextFormat(protocDecodeText(body, messageType, protoDir, protoFile));
}

/** protoc's text output as printed. */
export function protocDecodeText(body: Uint8Array, messageType: string, protoDir: string, protoFile: string): string {
  const result = spawnSync('protoc', [`-I${protoDir}`, `--decode=${messageType}`, protoFile], { input: body, maxBuffer: 256 * 1024 * 1024 });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`protoc --decode=${messageType} failed: ${result.stderr.toString()}`);
  return result.stdout.toString('utf8');
}

export function parseTextFormat(text: string): TextMessage {
  const root: TextMessage = {};
  const open: TextMessage[] = [root];
  const add = (message: TextMessage, field: string, value: TextValue) => (message[field] ??= []).push(value);
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const top = open[open.length - 1];
    if (line === '}') {
      if (open.length === 1) throw new Error('unbalanced "}" in protoc output');
      open.pop();
      continue;
    }
    const nested = /^([\w.]+) \{$/.exec(line);
    if (nested) {
      const child: TextMessage = {};
      add(top, nested[1], child);
      open.push(child);
      continue;
    }
    const scalar = /^([\w.]+): (.*)$/.exec(line);
    if (!scalar) throw new Error(`cannot parse protoc output line: ${raw}`);
    add(top, scalar[1], scalar[2].startsWith('"') ? unquote(scalar[2]) : scalar[2]);
  }
  return root;
}

/**
 * A text-format string literal: C escapes, octal for bytes that are not
 * printable ASCII. Text fields come back as UTF-8; bytes fields that are not
 * valid UTF-8 as one character per byte (latin1), so that their length holds.
 */
function unquote(literal: string): string {
  const bytes: number[] = [];
  const body = literal.slice(1, -1);
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c !== '\\') {
      bytes.push(...Buffer.from(c, 'utf8'));
      continue;
    }
    const next = body[++i];
    const octal = /^[0-7]{1,3}/.exec(body.slice(i));
    if (octal) {
      bytes.push(parseInt(octal[0], 8));
      i += octal[0].length - 1;
    } else if (next === 'x') {
      const hex = /^[0-9a-fA-F]{1,2}/.exec(body.slice(i + 1))![0];
      bytes.push(parseInt(hex, 16));
      i += hex.length;
    } else {
      const simple: Record<string, string> = { n: '\n', r: '\r', t: '\t', '"': '"', "'": "'", '\\': '\\' };
      bytes.push(...Buffer.from(simple[next] ?? next, 'utf8'));
    }
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
  } catch {
    return Buffer.from(bytes).toString('latin1');
  }
}

/** The fields of a message value (an empty message for a missing one). */
export function messages(message: TextMessage, field: string): TextMessage[] {
  return (message[field] ?? []).map((value) => {
    if (typeof value === 'string') throw new Error(`field ${field} is a scalar, not a message`);
    return value;
  });
}

export function message(parent: TextMessage, field: string): TextMessage {
  return messages(parent, field)[0] ?? {};
}

export function scalars(parent: TextMessage, field: string): string[] {
  return (parent[field] ?? []).map((value) => {
    if (typeof value !== 'string') throw new Error(`field ${field} is a message, not a scalar`);
    return value;
  });
}

/** A singular scalar; proto3 leaves default values out, so a missing number is "0" and a missing string "". */
export function scalar(parent: TextMessage, field: string, missing = '0'): string {
  return scalars(parent, field)[0] ?? missing;
}
