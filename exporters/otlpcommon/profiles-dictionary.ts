/**
 * The ProfilesDictionary of one ExportProfilesServiceRequest: every table
 * starts with its zero value at index 0 (index 0 means "not set", as the spec
 * demands) and holds each distinct entry once.
 */
import type { Frame, Mapping } from '../../collector/data/profiles.js';
import { int64, type Int64 } from './schema.js';

/** Semantic-convention attribute keys, as opentelemetry-ebpf-profiler writes them. */
const BUILD_ID_GNU = 'process.executable.build_id.gnu';
const FRAME_TYPE = 'profile.frame.type';

export interface MappingMessage {
  memory_start?: Int64;
  memory_limit?: Int64;
  file_offset?: Int64;
  filename_strindex?: number;
  attribute_indices?: number[];
}

export interface FunctionMessage {
  name_strindex?: number;
  filename_strindex?: number;
}

export interface LineMessage {
  function_index: number;
  line?: number;
}

export interface LocationMessage {
  mapping_index?: number;
  address?: Int64;
  lines?: LineMessage[];
  attribute_indices?: number[];
}

export interface KeyValueAndUnitMessage {
  key_strindex?: number;
  value?: { string_value: string };
}

export interface StackMessage {
  location_indices?: number[];
}

export interface LinkMessage {
  trace_id: Uint8Array;
  span_id: Uint8Array;
}

export interface ProfilesDictionaryMessage {
  mapping_table: MappingMessage[];
  location_table: LocationMessage[];
  function_table: FunctionMessage[];
  link_table: LinkMessage[];
  string_table: string[];
  attribute_table: KeyValueAndUnitMessage[];
  stack_table: StackMessage[];
}

/** Entries by identity; index 0 is the zero value, given at construction. */
class Table<T> {
  readonly entries: T[];
  private readonly indexByKey = new Map<string, number>();

  constructor(zero: T) {
    this.entries = [zero];
  }

  intern(key: string, make: () => T): number {
    let index = this.indexByKey.get(key);
    if (index === undefined) {
      index = this.entries.length;
      this.entries.push(make());
      this.indexByKey.set(key, index);
    }
    return index;
  }
}

export class ProfilesDictionaryBuilder {
  private readonly strings = new Table<string>('');
  private readonly attributes = new Table<KeyValueAndUnitMessage>({});
  private readonly mappings = new Table<MappingMessage>({});
  private readonly functions = new Table<FunctionMessage>({});
  private readonly locations = new Table<LocationMessage>({});
  private readonly stacks = new Table<StackMessage>({});

  string(value: string): number {
    return value === '' ? 0 : this.strings.intern(value, () => value);
  }

  private attribute(key: string, value: string): number {
    return this.attributes.intern(JSON.stringify([key, value]), () => ({ key_strindex: this.string(key), value: { string_value: value } }));
  }

  private mapping(mapping: Mapping): number {
    const key = JSON.stringify([mapping.path, String(mapping.start), String(mapping.end), String(mapping.fileOffset), mapping.buildId ?? '']);
    return this.mappings.intern(key, () => ({
      memory_start: int64(mapping.start),
      memory_limit: int64(mapping.end),
      file_offset: int64(mapping.fileOffset),
      filename_strindex: this.string(mapping.path),
      attribute_indices: mapping.buildId ? [this.attribute(BUILD_ID_GNU, mapping.buildId)] : [],
    }));
  }

  private function(name: string, fileName: string): number {
    return this.functions.intern(JSON.stringify([name, fileName]), () => ({ name_strindex: this.string(name), filename_strindex: this.string(fileName) }));
  }

  /**
   * A frame as a Location: its address and mapping always, so that a backend
   * can symbolize what we could not; a line with the function where we know it.
   */
  location(frame: Frame): number {
    const mappingIndex = frame.mapping ? this.mapping(frame.mapping) : 0;
    const named = frame.functionName !== undefined || frame.fileName !== undefined;
    const key = JSON.stringify([frame.kind, String(frame.address), mappingIndex, frame.functionName ?? '', frame.fileName ?? '', frame.line ?? 0]);
    return this.locations.intern(key, () => ({
      mapping_index: mappingIndex,
      address: int64(frame.address),
      lines: named ? [{ function_index: this.function(frame.functionName ?? '', frame.fileName ?? ''), line: frame.line ?? 0 }] : [],
      attribute_indices: [this.attribute(FRAME_TYPE, frame.kind === 'kernel' ? 'kernel' : 'native')],
    }));
  }

  /** A stack of location indices, leaf first. */
  stack(locationIndices: number[]): number {
    return this.stacks.intern(locationIndices.join(','), () => ({ location_indices: locationIndices }));
  }

  build(): ProfilesDictionaryMessage {
    return {
      mapping_table: this.mappings.entries,
      location_table: this.locations.entries,
      function_table: this.functions.entries,
      // The spec asks for a 16- and 8-byte zero link rather than empty bytes, for codecs that check lengths.
      link_table: [{ trace_id: new Uint8Array(16), span_id: new Uint8Array(8) }],
      string_table: this.strings.entries,
      attribute_table: this.attributes.entries,
      stack_table: this.stacks.entries,
    };
  }
}
