/** What a benchmark suite provides to the CLI in bench/run.ts. */
import type { ParseArgsConfig } from 'node:util';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;
export type OptionValues = Record<string, string | boolean | undefined>;

/** Method syntax keeps `Suite<P>` assignable to `Suite<unknown>` for the registry. */
export interface Suite<P = unknown> {
  name: string;
  /** One line for `--help`. */
  summary: string;
  /** Suite options (parseArgs syntax); `--json` and `--help` are added by the CLI. */
  options: OptionSpec;
  /** Extra lines for `--help` describing the options and their defaults. */
  usage: string[];
  /** Re-exec in a loopback-only network namespace when possible. */
  needsLoopbackNetns?: boolean;
  /**
   * Which private network the re-exec makes (default 'loopback': only `lo`); 'firefox': the veth pair
   * Firefox needs to gather ICE candidates (test/helpers/firefoxNetwork.ts), still machine-local.
   */
  network?(parsed: P): 'loopback' | 'firefox';
  /** Validate options before anything expensive starts (throw {@link UsageError}); returns the parsed form. */
  parse(values: OptionValues): P;
  /** Runs the suite with what `parse` returned; returns the JSON result and a human-readable summary. */
  run(parsed: P, log: (line: string) => void): Promise<{ result: Record<string, unknown>; summary: string[] }>;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

/** Positive integer option with bounds; `def` when absent. */
export function intOption(values: OptionValues, key: string, def: number, min: number, max: number): number {
  const raw = values[key];
  if (raw === undefined) return def;
  const v = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isInteger(v) || v < min || v > max) {
    throw new UsageError(`--${key}=${String(raw)} must be an integer in [${min}, ${max}]`);
  }
  return v;
}


/** Number option (decimals allowed) with bounds; `def` when absent. */
export function numberOption(values: OptionValues, key: string, def: number, min: number, max: number): number {
  const raw = values[key];
  if (raw === undefined) return def;
  const v = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(v) || v < min || v > max) {
    throw new UsageError(`--${key}=${String(raw)} must be a number in [${Number(min.toFixed(2))}, ${max}]${min > 1 ? ' (at least one round)' : ''}`);
  }
  return v;
}
