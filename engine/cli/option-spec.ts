import { parseArgs } from 'node:util';
import { closest } from '../policy/closest-word.ts';
import { CliError } from './context.ts';

/**
 * One command-line option, as parsing and help both need it. `pgwarden <command> --help` and the
 * README's CLI reference are generated from these; a test keeps the README in step.
 */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly multiple?: boolean;
  /** The value's placeholder in help: `--out FILE`. */
  readonly value?: string;
  /** The default as help shows it. Parsing leaves an option not given undefined: the command applies it. */
  readonly byDefault?: string;
  /** One line. */
  readonly description: string;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** Options every command takes. */
export const COMMON_OPTIONS = {
  'database-url': { type: 'string', value: 'URL', byDefault: '$DATABASE_URL, else the PG* variables', description: 'the database to work on (a libpq URL)' },
  policies: { type: 'string', value: 'DIR', byDefault: './policies', description: 'the policy directory (read recursively: *.yaml, *.yml)' },
  json: { type: 'boolean', description: 'print the result as JSON on stdout' },
  'no-color': { type: 'boolean', description: 'no colours (also NO_COLOR=1; FORCE_COLOR=1 forces them)' },
  debug: { type: 'boolean', description: 'print stack traces of unexpected errors' },
  help: { type: 'boolean', short: 'h', description: 'print this help' },
} as const satisfies OptionSpecs;

/** Keeps the literal types of a command's options (for typed values) while checking their shape. */
export function defineOptions<const O extends OptionSpecs>(options: O): O {
  return options;
}

type ValueOf<S extends OptionSpec> = S['type'] extends 'boolean' ? (S['multiple'] extends true ? boolean[] : boolean) : S['multiple'] extends true ? string[] : string;

export type OptionValues<O extends OptionSpecs> = { -readonly [K in keyof O]?: ValueOf<O[K]> };

/** Parses a command's arguments against its options and the common ones; a typo gets "did you mean". */
export function parse<const O extends OptionSpecs>(args: readonly string[], options: O, command?: string): { values: OptionValues<typeof COMMON_OPTIONS & O> } {
  const all: OptionSpecs = { ...COMMON_OPTIONS, ...options };
  const config = Object.fromEntries(
    Object.entries(all).map(([name, spec]) => [name, { type: spec.type, ...(spec.short ? { short: spec.short } : {}), ...(spec.multiple ? { multiple: true } : {}) }]),
  );
  try {
    const { values } = parseArgs({ args: [...args], options: config, allowPositionals: false, strict: true });
    return { values: values as OptionValues<typeof COMMON_OPTIONS & O> };
  } catch (error) {
    throw new CliError(argumentError(error, Object.keys(all)), `\`pgwarden ${command ?? '<command>'} --help\` lists the options`);
  }
}

function argumentError(error: unknown, names: readonly string[]): string {
  const message = (error instanceof Error ? error.message : String(error)).replace(/\. To specify.*$/su, '');
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  const unknown = /^Unknown option '-{1,2}([^'=]+)'/u.exec(message);
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && unknown?.[1] !== undefined) {
    const given = unknown[1];
    const suggestion = closest(given, names) ?? names.find((name) => name.startsWith(given) || given.startsWith(name));
    return `unknown option --${given}${suggestion === undefined ? '' : ` (did you mean --${suggestion}?)`}`;
  }
  return message.charAt(0).toLowerCase() + message.slice(1);
}

/** `  --out FILE   save the plan (default: ...)`, one line per option, aligned. */
export function optionLines(options: OptionSpecs): string[] {
  const heads = Object.entries(options).map(([name, spec]) => `${spec.short ? `-${spec.short}, ` : '    '}--${name}${spec.value ? ` ${spec.value}` : ''}`);
  const width = Math.max(0, ...heads.map((h) => h.length));
  return Object.values(options).map((spec, i) => {
    const repeat = spec.multiple ? ' (repeatable)' : '';
    const fallback = spec.byDefault === undefined ? '' : ` (default: ${spec.byDefault})`;
    return `  ${(heads[i] ?? '').padEnd(width)}  ${spec.description}${repeat}${fallback}`;
  });
}
