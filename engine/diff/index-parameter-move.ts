import type { IndexMethod } from '../policy/desired.ts';
import { indexParameterSpec, parameterValue, readReloptions, type IndexParameterSpec } from '../policy/index-storage-parameters.ts';

/**
 * The value in force: what is set, else the method's default; undefined when unset and the parameter
 * has no default of its own. Unknown parameters (a newer server's) compare as text.
 */
function effective(method: IndexMethod, name: string, text: string | undefined): string | undefined {
  const spec = indexParameterSpec(name);
  if (spec === undefined) return text;
  if (text === undefined) {
    const fallback = spec.methods[method];
    return fallback === undefined || fallback === null ? undefined : JSON.stringify(fallback);
  }
  const value = parameterValue(spec, text);
  return value === undefined ? text : JSON.stringify(value);
}

/** How the live parameters of an index must move to the declared ones. */
export interface IndexParameterMove {
  /** Declared values that differ, as declared (the text `WITH`/`SET` writes). */
  readonly set: Readonly<Record<string, string>>;
  /** Set on the index and not declared (and not at their default). */
  readonly reset: readonly string[];
  /** Some change only takes effect on a rebuild. */
  readonly rebuild: boolean;
  /** The strongest lock the ALTER takes. */
  readonly lock: IndexParameterSpec['lock'];
}

/** undefined when the live parameters already mean what the policy declares. */
export function parameterMove(
  method: IndexMethod,
  declared: Readonly<Record<string, string>>,
  live: readonly string[],
): IndexParameterMove | undefined {
  const actual = readReloptions(live);
  const set: Record<string, string> = {};
  const reset: string[] = [];
  for (const [name, text] of Object.entries(declared)) {
    if (effective(method, name, text) !== effective(method, name, actual.get(name))) set[name] = text;
  }
  for (const [name, text] of actual) {
    if (name in declared) continue;
    if (effective(method, name, text) !== effective(method, name, undefined)) reset.push(name);
  }
  const moved = [...Object.keys(set), ...reset];
  if (moved.length === 0) return undefined;
  const specs = moved.map((name) => indexParameterSpec(name));
  return {
    set,
    reset,
    rebuild: specs.some((s) => s === undefined || s.rebuild),
    lock: specs.some((s) => s === undefined || s.lock === 'ACCESS EXCLUSIVE') ? 'ACCESS EXCLUSIVE' : 'SHARE UPDATE EXCLUSIVE',
  };
}
