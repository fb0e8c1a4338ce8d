/**
 * Where OpenSSL keeps the handshake state in its SSL struct, read from the
 * probed binary's own accessor functions, never guessed: SSL_get_state
 * (`return s->statem.hand_state`), SSL_in_init (`s->statem.in_init`),
 * SSL_is_server (`s->server`), SSL_get_verify_result (`s->verify_result`)
 * and SSL_in_before (`hand_state == TLS_ST_BEFORE && statem.state ==
 * MSG_FLOW_UNINITED`) compile to loads at fixed offsets from their first
 * argument (%rdi on x86-64). The version comes from
 * OpenSSL_version_num (`return OPENSSL_VERSION_NUMBER`). Only OpenSSL 3.0.x
 * is accepted: its state machine is the one bpf/tls.bpf.c reads. Anything
 * else is refused with what did not match.
 */
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ElfFile, type ElfFunction } from './elf.js';

/** Byte offsets in struct ssl_st (struct tls_config in bpf/tls.h). */
export interface OpensslLayout {
  handState: number;
  inInit: number;
  flowState: number;
  server: number;
  verifyResult: number;
}

/** Calls that drive a handshake, followed at entry and return; reads also tell when the peer's data came. */
export const HANDSHAKE_CALLS = ['SSL_do_handshake', 'SSL_connect', 'SSL_accept', 'SSL_write', 'SSL_write_ex'] as const;
export const READ_CALLS = ['SSL_read', 'SSL_read_ex'] as const;
/** Wrappers that libssl builds as a jump to SSL_do_handshake: probing them too would only cost more traps. */
const HANDSHAKE_WRAPPERS = ['SSL_connect', 'SSL_accept'] as const;
/** Raise an error with its library and reason code. */
const ERROR_CALLS = ['ERR_set_error', 'ERR_vset_error'] as const;
const LAYOUT_ACCESSORS = ['SSL_get_state', 'SSL_in_init', 'SSL_is_server', 'SSL_in_before', 'SSL_get_verify_result'] as const;
const OTHER_SSL_CALLS = ['SSL_free', 'SSL_ctrl', 'SSL_get_servername'] as const;
const VERSION_FUNCTION = 'OpenSSL_version_num';
/** A binary exporting these is a libssl (or embeds one), and must export the rest to be probed. */
const SSL_IDENTITY = ['SSL_read', 'SSL_write'] as const;
const SSL_REQUIRED = ['SSL_free', ...LAYOUT_ACCESSORS] as const;

const INSPECTED_FUNCTIONS: readonly string[] = [...HANDSHAKE_CALLS, ...READ_CALLS, ...ERROR_CALLS, ...LAYOUT_ACCESSORS, ...OTHER_SSL_CALLS, VERSION_FUNCTION];

/** What a binary offers: a libssl part (with its layout) to probe, or only a libcrypto (its version). */
export interface OpensslBinary {
  version: string;
  layout?: OpensslLayout;
  /** Exported functions to probe by name, with their file offsets. */
  functions: Map<string, ElfFunction>;
  /** Where to catch the SSL library's errors in this file (see errorProbes). */
  errorProbes: ElfFunction[];
}

/**
 * Where the errors OpenSSL's SSL library raises can be caught without
 * trapping on every error libcrypto raises (a handshake's certificate and key
 * decoding raises and discards about 25 of them, each a uprobe trap):
 * libssl.so.3 raises through its own PLT stubs for ERR_set_error and
 * ERR_vset_error, which only its calls pass; node's SSL code raises a failed
 * handshake's error (SSLfatal) with ERR_vset_error, which its ERR_set_error
 * does not call. libcrypto.so.3's ERR_set_error calls ERR_vset_error, so it
 * is not probed at all.
 */
function errorProbes(elf: ElfFile, functions: Map<string, ElfFunction>, isSsl: boolean): ElfFunction[] {
  if (!isSsl) return [];
  const stubs = elf.pltStubs(ERROR_CALLS);
  if (stubs.size) return [...stubs.values()];
  const raise = functions.get('ERR_vset_error');
  return raise && !reaches(elf, functions, 'ERR_set_error', 'ERR_vset_error') ? [raise] : [];
}

/** Why a binary that looks like OpenSSL is not probed. */
export class RefusedBinary extends Error {}

/**
 * The OpenSSL parts of the ELF file at `path`, undefined when it exports
 * neither libssl's nor libcrypto's error functions; throws RefusedBinary
 * when it does but its version or code is not what this receiver knows.
 */
export function inspectOpenssl(path: string): OpensslBinary | undefined {
  const elf = ElfFile.open(path);
  try {
    const functions = elf.functions(INSPECTED_FUNCTIONS);
    const isSsl = SSL_IDENTITY.every((name) => functions.has(name));
    const missing = SSL_REQUIRED.filter((name) => !functions.has(name));
    if (isSsl && missing.length) throw new RefusedBinary(`exports SSL_read and SSL_write but not ${missing.join(', ')}`);
    const isCrypto = functions.has(VERSION_FUNCTION) && ERROR_CALLS.some((name) => functions.has(name));
    if (!isSsl && !isCrypto) return undefined;
    const version = isCrypto ? versionOf(elf, functions.get(VERSION_FUNCTION)!) : siblingCryptoVersion(path);
    const layout = isSsl ? layoutOf(elf, functions) : undefined;
    // libssl's SSL_connect is `jmp SSL_do_handshake@plt`: SSL_do_handshake's probes see its handshakes. Node inlines it.
    for (const name of HANDSHAKE_WRAPPERS) if (reaches(elf, functions, name, 'SSL_do_handshake')) functions.delete(name);
    return { version, layout, functions, errorProbes: errorProbes(elf, functions, isSsl) };
  } finally {
    elf.close();
  }
}

/** OpenSSL_version_num's constant, accepted for 3.0.x only. */
function versionOf(elf: ElfFile, fn: ElfFunction): string {
  const code = elf.code(fn);
  const instructions = decode(code, VERSION_FUNCTION);
  const [first, ...rest] = instructions;
  if (first?.kind !== 'mov_imm' || !rest.every((i) => i.kind === 'xor' || i.kind === 'ret'))
    throw new RefusedBinary(`${VERSION_FUNCTION} is not \`mov $imm32, %eax; ret\`: cannot tell the OpenSSL version`);
  const number = first.value >>> 0;
  const version = `${number >>> 28}.${(number >>> 20) & 0xff}.${(number >>> 4) & 0xff}`;
  if (number >>> 20 !== 0x300) throw new RefusedBinary(`OpenSSL ${version} (0x${number.toString(16)}): only 3.0.x is known`);
  return version;
}

/**
 * libssl.so.3 has no version function of its own: it runs with the
 * libcrypto.so.3 beside it (the same package), whose version is read.
 */
function siblingCryptoVersion(path: string): string {
  const crypto = join(dirname(realpathSync(path)), 'libcrypto.so.3');
  if (!existsSync(crypto)) throw new RefusedBinary(`no ${VERSION_FUNCTION} here and no libcrypto.so.3 beside it: cannot tell the OpenSSL version`);
  const elf = ElfFile.open(crypto);
  try {
    const fn = elf.functions([VERSION_FUNCTION]).get(VERSION_FUNCTION);
    if (!fn) throw new RefusedBinary(`${crypto} does not export ${VERSION_FUNCTION}: cannot tell the OpenSSL version`);
    return versionOf(elf, fn);
  } finally {
    elf.close();
  }
}

function layoutOf(elf: ElfFile, functions: Map<string, ElfFunction>): OpensslLayout {
  const handState = loadOffset(elf, functions, 'SSL_get_state');
  const inInit = loadOffset(elf, functions, 'SSL_in_init');
  const server = loadOffset(elf, functions, 'SSL_is_server');
  const verifyResult = loadOffset(elf, functions, 'SSL_get_verify_result', true);
  const inBefore = decode(elf.code(functions.get('SSL_in_before')!), 'SSL_in_before');
  const fields = inBefore.flatMap((i) => (i.field === undefined ? [] : [i.field]));
  if (fields.length !== 2 || !fields.includes(handState) || fields[0] === fields[1])
    throw new RefusedBinary(`SSL_in_before reads fields at [${fields.join(', ')}], expected hand_state (${handState}) and the flow state`);
  const flowState = fields.find((offset) => offset !== handState)!;
  // OpenSSL 3.0's struct ossl_statem_st: state, 4 ints, hand_state, request_state, in_init.
  if (inInit !== handState + 8 || flowState !== handState - 20)
    throw new RefusedBinary(`statem fields at hand_state ${handState}, in_init ${inInit}, state ${flowState} are not laid out as in OpenSSL 3.0`);
  return { handState, inInit, flowState, server, verifyResult };
}

/** The offset an accessor `return s->field` (an int, or a long when `wide`) loads from. */
function loadOffset(elf: ElfFile, functions: Map<string, ElfFunction>, name: string, wide = false): number {
  const instructions = decode(elf.code(functions.get(name)!), name);
  const [first, ...rest] = instructions;
  if (first?.kind !== 'load' || first.wide !== wide || first.field === undefined || !rest.every((i) => i.kind === 'xor' || i.kind === 'ret'))
    throw new RefusedBinary(`${name} is not a single ${wide ? 64 : 32}-bit load from its argument (\`mov disp(%rdi), %${wide ? 'rax' : 'eax'}; ret\`)`);
  return first.field;
}

/** Whether the function `name` calls or jumps to `target`, directly or through its PLT stub. */
function reaches(elf: ElfFile, functions: Map<string, ElfFunction>, name: string, target: string): boolean {
  const caller = functions.get(name);
  const callee = functions.get(target);
  if (!caller || !callee) return false;
  const code = elf.code(caller, 512);
  for (let at = 0; at + 5 <= code.length; at++) {
    if (code[at] !== 0xe8 && code[at] !== 0xe9) continue; // call rel32, jmp rel32
    const destination = caller.address + at + 5 + code.readInt32LE(at + 1);
    if (destination === callee.address || elf.pltTarget(destination) === target) return true;
  }
  return false;
}

interface Instruction {
  kind: 'load' | 'xor' | 'test' | 'cmp' | 'jcc' | 'setcc' | 'movzx' | 'mov_imm' | 'ret';
  /** Offset from %rdi the instruction reads. */
  field?: number;
  /** 64-bit operand. */
  wide?: boolean;
  value: number;
}

/**
 * Decodes the few x86-64 instructions small accessors compile to, from the
 * start to the last byte: a load or compare from %rdi+disp, register xor,
 * test, conditional jumps and sets, mov $imm32, ret. Anything else throws:
 * unknown code is refused, not guessed at.
 */
function decode(code: Buffer, name: string): Instruction[] {
  const instructions: Instruction[] = [];
  let at = 0;
  if (code.readUInt32BE(0) === 0xf30f1efa) at = 4; // endbr64
  const fail = (what: string): never => {
    throw new RefusedBinary(`${name}: unexpected ${what} at +${at} (${code.subarray(0, 24).toString('hex')})`);
  };
  /** ModRM at `at`: a register operand, or a memory operand based on %rdi with its displacement. */
  const operand = (rex: number): { field?: number } => {
    const modrm = code[at++];
    const mod = modrm >> 6;
    const rm = (modrm & 7) | ((rex & 1) << 3);
    if (mod === 3) return {};
    if (rm !== 7 || (mod === 0 && (modrm & 7) === 5)) fail('memory operand not based on %rdi');
    if (mod === 0) return { field: 0 };
    if (mod === 1) return { field: code.readInt8(at++) };
    const field = code.readInt32LE(at);
    at += 4;
    return { field };
  };
  while (at < code.length) {
    let rex = 0;
    if ((code[at] & 0xf0) === 0x40) rex = code[at++];
    const wide = (rex & 8) !== 0;
    const opcode = code[at++];
    if (opcode === 0xc3) {
      instructions.push({ kind: 'ret', value: 0 });
      // Anything after the last ret is padding or another function: stop where this one ends.
      if (!code.subarray(at).some((byte) => byte !== 0xcc && byte !== 0x90)) break;
      continue;
    }
    if (opcode === 0x8b) instructions.push({ kind: 'load', wide, value: (code[at] >> 3) & 7, ...operand(rex) });
    else if (opcode === 0x31 || opcode === 0x33) {
      const modrm = code[at];
      if (modrm >> 6 !== 3 || ((modrm >> 3) & 7) !== (modrm & 7) || ((rex >> 2) & 1) !== (rex & 1)) fail('xor other than zeroing a register');
      at++;
      instructions.push({ kind: 'xor', value: 0 });
    } else if (opcode === 0x85) instructions.push({ kind: 'test', value: 0, ...operand(rex) });
    else if (opcode === 0x83 && ((code[at] >> 3) & 7) === 7) {
      const { field } = operand(rex);
      instructions.push({ kind: 'cmp', field, value: code.readInt8(at++) });
    } else if (opcode === 0x74 || opcode === 0x75) instructions.push({ kind: 'jcc', value: code.readInt8(at++) });
    else if (opcode === 0x0f && (code[at] === 0x94 || code[at] === 0x95)) {
      at++;
      if (operand(rex).field !== undefined) fail('setcc to memory');
      instructions.push({ kind: 'setcc', value: 0 });
    } else if (opcode === 0x0f && code[at] === 0xb6) {
      at++;
      if (operand(rex).field !== undefined) fail('movzx from memory');
      instructions.push({ kind: 'movzx', value: 0 });
    } else if (opcode === 0xb8 && !rex) {
      instructions.push({ kind: 'mov_imm', value: code.readUInt32LE(at) });
      at += 4;
    } else fail(`opcode 0x${opcode.toString(16)}`);
  }
  if (instructions.at(-1)?.kind !== 'ret') fail('end without ret');
  return instructions;
}
