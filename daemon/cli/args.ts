// Command-line arguments for every `paligemma` command, on node:util parseArgs: one behaviour for
// --help, for what a usage error prints and exits with (2; a failure of the work itself is 1), and
// for the checks of numbers and choices. Options follow one naming: `--max-tokens` for the
// longest answer, `--ep` for the execution provider, `--json` for machine-readable output.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { errorMessage } from '../common/errors.js';

/** Bad arguments: `runCommand` prints the message (and where it helps, the usage) and exits 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    /** Print the usage after the message (a missing argument, not a bad value). */
    readonly showUsage = false,
  ) {
    super(message);
  }
}

export type Options = NonNullable<ParseArgsConfig['options']>;

type Parsed<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>>;

/** The parsed values of `options`, as `runCommand` hands them over. */
export type ParsedValues<O extends Options> = Parsed<O>['values'];

export interface CommandSpec<O extends Options> {
  /** The command's name after `paligemma`. */
  name: string;
  usage: string;
  /** Its options; `--help` / `-h` is added. */
  options: O;
  /** Print the usage after every usage error, a bad value too (commands whose usage is one line). */
  usageOnEveryError?: boolean;
}

/**
 * Parses `argv` by `spec` and runs `run` on the values and positionals. `--help` prints the usage
 * to stdout and gives 0; an unknown option, a missing value or a UsageError thrown by `run` prints
 * `paligemma <name>: <why>` to stderr and gives 2. Any other error propagates.
 */
export async function runCommand<O extends Options>(
  spec: CommandSpec<O>,
  argv: string[],
  run: (values: Parsed<O>['values'], positionals: string[]) => Promise<number>,
): Promise<number> {
  const fail = (message: string, showUsage: boolean): number => {
    process.stderr.write(`paligemma ${spec.name}: ${message}\n${showUsage ? spec.usage : ''}`);
    return 2;
  };
  let parsed: Parsed<O>;
  try {
    parsed = parseArgs({ args: argv, options: { ...spec.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true }) as Parsed<O>;
  } catch (e) {
    return fail(errorMessage(e), true);
  }
  if ((parsed.values as { help?: boolean }).help) {
    process.stdout.write(spec.usage);
    return 0;
  }
  try {
    return await run(parsed.values, parsed.positionals);
  } catch (e) {
    if (e instanceof UsageError) return fail(e.message, e.showUsage || spec.usageOnEveryError === true);
    throw e;
  }
}

/** `--<name> N`: an integer of at least `min`, or `fallback` when not given. */
export function integerOption(value: string | undefined, name: string, min: number): number | undefined;
export function integerOption(value: string | undefined, name: string, min: number, fallback: number): number;
export function integerOption(value: string | undefined, name: string, min: number, fallback?: number): number | undefined {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min) {
    throw new UsageError(`--${name} must be ${min === 0 ? 'a non-negative integer' : min === 1 ? 'a positive integer' : `an integer >= ${min}`}, got '${value}'`);
  }
  return n;
}

/** `--<name> X`: one of `allowed`, or undefined when not given. */
export function choiceOption<T extends string | number>(value: string | undefined, name: string, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  const found = allowed.find((a) => String(a) === value);
  if (found === undefined) throw new UsageError(`--${name} must be ${listOr(allowed.map(String))}, got '${value}'`);
  return found;
}

/** `a`, `a or b`, `a, b or c`. */
function listOr(items: string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`;
}
