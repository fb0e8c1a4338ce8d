import { z } from 'zod';
import { describeValue } from './types.js';

export interface ConfigProblem {
  /** Path in the config, joined with "::" as the Collector does. */
  path: string;
  message: string;
}

/** Every problem found in a config, reported together. */
export class ConfigError extends Error {
  constructor(readonly problems: ConfigProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'ConfigError';
  }
}

export function formatProblem({ path, message }: ConfigProblem): string {
  return path ? `${path}: ${message}` : message;
}

export function joinPath(...parts: (string | number)[]): string {
  return parts.filter((p) => p !== '').join('::');
}

function valueAt(root: unknown, path: (string | number)[]): unknown {
  let value = root;
  for (const key of path) value = value && typeof value === 'object' ? (value as Record<string | number, unknown>)[key] : undefined;
  return value;
}

/** The keys a strict object schema allows at `path`, to list them beside an unknown key. */
function allowedKeys(schema: z.ZodTypeAny, path: (string | number)[]): string[] {
  let current: z.ZodTypeAny | undefined = schema;
  const unwrap = (s: z.ZodTypeAny): z.ZodTypeAny => {
    for (;;) {
      if (s instanceof z.ZodDefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s._def.innerType;
      else if (s instanceof z.ZodEffects) s = s._def.schema;
      else return s;
    }
  };
  for (const key of path) {
    current = unwrap(current);
    if (current instanceof z.ZodObject) current = current.shape[key as string];
    else if (current instanceof z.ZodArray) current = current.element;
    else if (current instanceof z.ZodRecord) current = current.valueSchema;
    else return [];
    if (!current) return [];
  }
  current = unwrap(current);
  return current instanceof z.ZodObject ? Object.keys(current.shape) : [];
}

/** Turns zod's issues into problems with full config paths and plain words. */
export function problemsFromZod(error: z.ZodError, schema: z.ZodTypeAny, input: unknown, basePath: string): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of error.issues) {
    const path = joinPath(basePath, ...issue.path);
    switch (issue.code) {
      case 'unrecognized_keys': {
        const allowed = allowedKeys(schema, issue.path);
        for (const key of issue.keys)
          problems.push({ path: joinPath(path, key), message: `unknown key${allowed.length ? ` (valid keys: ${allowed.join(', ')})` : ''}` });
        break;
      }
      case 'invalid_type': {
        const value = valueAt(input, issue.path);
        problems.push({
          path,
          message: value === undefined ? 'is required' : `expected ${issue.expected}, got ${describeValue(value)}`,
        });
        break;
      }
      case 'too_small':
      case 'too_big': {
        const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
        const word = issue.code === 'too_small' ? (issue.inclusive ? 'at least' : 'above') : issue.inclusive ? 'at most' : 'below';
        const value = valueAt(input, issue.path);
        problems.push({
          path,
          message:
            issue.type === 'array'
              ? `must have ${word} ${bound} item(s)`
              : issue.type === 'string'
                ? `must be ${word} ${bound} character(s) long`
                : `must be ${word} ${bound}, got ${describeValue(value)}`,
        });
        break;
      }
      case 'invalid_enum_value':
        problems.push({ path, message: `must be one of ${issue.options.join(', ')}, got ${describeValue(issue.received)}` });
        break;
      case 'not_multiple_of':
        problems.push({ path, message: `must be a whole number, got ${describeValue(valueAt(input, issue.path))}` });
        break;
      default:
        problems.push({ path, message: issue.message });
    }
  }
  return problems;
}
