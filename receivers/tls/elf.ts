/**
 * Just enough of a 64-bit little-endian ELF file to find exported functions
 * (.dynsym) and read their code: which binaries embed OpenSSL, where to put
 * a uprobe (a file offset), and the accessors that tell OpenSSL's layout.
 * Reads only the headers, .dynsym/.dynstr and the bytes asked for.
 */
import { closeSync, openSync, readSync } from 'node:fs';

const ELF_MAGIC = 0x464c457f; // "\x7fELF" as a little-endian u32
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const SHT_RELA = 4;
const SHT_DYNSYM = 11;
const R_X86_64_JUMP_SLOT = 7;
const RELA_SIZE = 24;
const PLT_STUB_SIZE = 16;
const PT_LOAD = 1;
const STT_FUNC = 2;
const SHN_UNDEF = 0;
const SYMBOL_SIZE = 24;

export interface ElfFunction {
  /** Virtual address in the file's own address space. */
  address: number;
  size: number;
  /** Where the function's code is in the file: the offset a uprobe takes. */
  fileOffset: number;
}

interface Segment {
  address: number;
  fileOffset: number;
  fileSize: number;
}

export class ElfFile {
  private constructor(
    private readonly fd: number,
    private readonly segments: Segment[],
    private readonly dynsym: Buffer,
    private readonly dynstr: Buffer,
    /** PLT relocations (.rela.plt): GOT slot address, symbol index. */
    private readonly jumpSlots: Buffer,
    /** The PLT stubs' section (.plt.sec with IBT, else .plt): address and bytes. */
    private readonly plt: { address: number; code: Buffer },
  ) {}

  /** Opens `path`; throws with the reason when it is not a 64-bit little-endian ELF file. */
  static open(path: string): ElfFile {
    const fd = openSync(path, 'r');
    try {
      const header = read(fd, 0, 64);
      if (header.length < 64 || header.readUInt32LE(0) !== ELF_MAGIC) throw new Error('not an ELF file');
      if (header[4] !== ELFCLASS64 || header[5] !== ELFDATA2LSB) throw new Error('not a 64-bit little-endian ELF file');
      const programHeaders = Number(header.readBigUInt64LE(32));
      const sectionHeaders = Number(header.readBigUInt64LE(40));
      const programHeaderSize = header.readUInt16LE(54);
      const programHeaderCount = header.readUInt16LE(56);
      const sectionHeaderSize = header.readUInt16LE(58);
      const sectionHeaderCount = header.readUInt16LE(60);

      const segments: Segment[] = [];
      const phdrs = read(fd, programHeaders, programHeaderSize * programHeaderCount);
      for (let i = 0; i < programHeaderCount; i++) {
        const base = i * programHeaderSize;
        if (phdrs.readUInt32LE(base) !== PT_LOAD) continue;
        segments.push({
          fileOffset: Number(phdrs.readBigUInt64LE(base + 8)),
          address: Number(phdrs.readBigUInt64LE(base + 16)),
          fileSize: Number(phdrs.readBigUInt64LE(base + 32)),
        });
      }

      let dynsym: Buffer = Buffer.alloc(0);
      let dynstr: Buffer = Buffer.alloc(0);
      const relocations: Buffer[] = [];
      const plts = new Map<string, { address: number; code: Buffer }>();
      const shdrs = read(fd, sectionHeaders, sectionHeaderSize * sectionHeaderCount);
      const names = shdrs.length ? contentsAt(fd, shdrs, header.readUInt16LE(62) * sectionHeaderSize) : Buffer.alloc(0);
      const contents = (base: number) => contentsAt(fd, shdrs, base);
      for (let i = 0; i < sectionHeaderCount; i++) {
        const base = i * sectionHeaderSize;
        const type = shdrs.readUInt32LE(base + 4);
        const link = shdrs.readUInt32LE(base + 40); // sh_link: the section of its names, or of its symbols
        if (type === SHT_DYNSYM) {
          dynsym = contents(base);
          dynstr = contents(link * sectionHeaderSize);
        } else if (type === SHT_RELA && link !== 0 && shdrs.readUInt32LE(link * sectionHeaderSize + 4) === SHT_DYNSYM) {
          relocations.push(contents(base));
        } else {
          const nameOffset = shdrs.readUInt32LE(base);
          const name = names.toString('latin1', nameOffset, names.indexOf(0, nameOffset));
          if (name === '.plt' || name === '.plt.sec') plts.set(name, { address: Number(shdrs.readBigUInt64LE(base + 16)), code: contents(base) });
        }
      }
      const plt = plts.get('.plt.sec') ?? plts.get('.plt') ?? { address: 0, code: Buffer.alloc(0) };
      return new ElfFile(fd, segments, dynsym, dynstr, Buffer.concat(relocations), plt);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  /** The exported (defined) functions among `names`. */
  functions(names: readonly string[]): Map<string, ElfFunction> {
    const wanted = new Set(names);
    const firstBytes = new Set(names.map((name) => name.charCodeAt(0)));
    const found = new Map<string, ElfFunction>();
    for (let offset = 0; offset + SYMBOL_SIZE <= this.dynsym.length && found.size < wanted.size; offset += SYMBOL_SIZE) {
      const nameOffset = this.dynsym.readUInt32LE(offset);
      if (!firstBytes.has(this.dynstr[nameOffset])) continue; // most names are not wanted: skip them without decoding
      if ((this.dynsym[offset + 4] & 0xf) !== STT_FUNC || this.dynsym.readUInt16LE(offset + 6) === SHN_UNDEF) continue;
      const end = this.dynstr.indexOf(0, nameOffset);
      const name = this.dynstr.toString('latin1', nameOffset, end < 0 ? this.dynstr.length : end);
      if (!wanted.has(name) || found.has(name)) continue;
      const address = Number(this.dynsym.readBigUInt64LE(offset + 8));
      const fileOffset = this.fileOffset(address);
      if (fileOffset === undefined) continue;
      found.set(name, { address, size: Number(this.dynsym.readBigUInt64LE(offset + 16)), fileOffset });
    }
    return found;
  }

  /** The code of a function (at most `limit` bytes). */
  code(fn: ElfFunction, limit = 64): Buffer {
    return read(this.fd, fn.fileOffset, Math.min(fn.size || limit, limit));
  }

  /** `length` bytes at a virtual address, empty outside the file's segments. */
  bytesAt(address: number, length: number): Buffer {
    const offset = this.fileOffset(address);
    return offset === undefined ? Buffer.alloc(0) : read(this.fd, offset, length);
  }

  /** The function whose address the dynamic linker writes into the GOT slot at `address` (a PLT stub's target). */
  private jumpSlotSymbol(address: number): string | undefined {
    for (let offset = 0; offset + RELA_SIZE <= this.jumpSlots.length; offset += RELA_SIZE) {
      if (Number(this.jumpSlots.readBigUInt64LE(offset)) !== address || this.jumpSlots.readUInt32LE(offset + 8) !== R_X86_64_JUMP_SLOT) continue;
      const nameOffset = this.dynsym.readUInt32LE(this.jumpSlots.readUInt32LE(offset + 12) * SYMBOL_SIZE);
      const end = this.dynstr.indexOf(0, nameOffset);
      return this.dynstr.toString('latin1', nameOffset, end);
    }
    return undefined;
  }

  /**
   * The PLT stubs through which this file calls `names` (functions of
   * another file, or its own exported ones), by name: a probe there sees
   * only this file's calls.
   */
  pltStubs(names: readonly string[]): Map<string, ElfFunction> {
    const stubs = new Map<string, ElfFunction>();
    for (let at = 0; at + PLT_STUB_SIZE <= this.plt.code.length; at += PLT_STUB_SIZE) {
      const address = this.plt.address + at;
      const name = this.pltTarget(address);
      const fileOffset = this.fileOffset(address);
      if (name && names.includes(name) && fileOffset !== undefined) stubs.set(name, { address, size: PLT_STUB_SIZE, fileOffset });
    }
    return stubs;
  }

  /** The function a PLT stub at `address` jumps to: `[endbr64;] [bnd] jmp *slot(%rip)`. */
  pltTarget(address: number): string | undefined {
    const stub = this.bytesAt(address, PLT_STUB_SIZE);
    let at = stub.length >= 4 && stub.readUInt32BE(0) === 0xf30f1efa ? 4 : 0;
    if (stub[at] === 0xf2) at++; // bnd
    if (stub.length < at + 6 || stub[at] !== 0xff || stub[at + 1] !== 0x25) return undefined;
    return this.jumpSlotSymbol(address + at + 6 + stub.readInt32LE(at + 2));
  }

  close(): void {
    closeSync(this.fd);
  }

  private fileOffset(address: number): number | undefined {
    const segment = this.segments.find((s) => address >= s.address && address < s.address + s.fileSize);
    return segment && address - segment.address + segment.fileOffset;
  }
}

function contentsAt(fd: number, sectionHeaders: Buffer, base: number): Buffer {
  return read(fd, Number(sectionHeaders.readBigUInt64LE(base + 24)), Number(sectionHeaders.readBigUInt64LE(base + 32)));
}

function read(fd: number, position: number, length: number): Buffer {
  const buffer = Buffer.alloc(length);
  const n = readSync(fd, buffer, 0, length, position);
  return buffer.subarray(0, n);
}
