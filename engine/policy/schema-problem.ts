import type { DefinedError, ErrorObject } from 'ajv';
import { closest } from './closest-word.ts';
import type { DataPath, PathPart } from './document-source.ts';

/** A schema violation in plain English, still to be placed in a file (see `positionOf`). */
export interface SchemaProblem {
  readonly path: DataPath;
  readonly part: PathPart;
  readonly message: string;
  readonly hint?: string;
}

/** One ajv error, translated, with what is needed to collapse alternatives. */
interface Finding {
  readonly keyword: string;
  readonly instancePath: string;
  readonly schemaPath: string;
  readonly problem: SchemaProblem;
  /** For `required`: the mapping's noun and the missing key, to merge several into one sentence. */
  readonly missing?: { readonly noun: string; readonly key: string };
}

/**
 * Turns ajv's errors (compiled with `allErrors` and `verbose`) into one plain-English problem per
 * mistake: each `anyOf`/`oneOf` is reduced to the branch the user evidently meant, missing keys of
 * one mapping are reported together, and repeats are dropped.
 */
export function schemaProblems(errors: readonly ErrorObject[]): SchemaProblem[] {
  // ajv's own errors are exactly DefinedError; the wider ErrorObject type exists for custom keywords.
  const findings = collapseAlternatives((errors as readonly DefinedError[]).map(translate));
  return unique(mergeMissingKeys(findings).map((finding) => finding.problem));
}

function translate(error: DefinedError): Finding {
  const path = dataPath(error.instancePath);
  const target = describeTarget(path);
  const at = (message: string, hint?: string, part: PathPart = 'value', where: DataPath = path): Finding => ({
    keyword: error.keyword,
    instancePath: error.instancePath,
    schemaPath: error.schemaPath,
    problem: { path: where, part, message, ...(hint === undefined ? {} : { hint }) },
  });

  switch (error.keyword) {
    case 'additionalProperties': {
      const key = error.params.additionalProperty;
      const allowed = propertyNames(error.parentSchema);
      const suggestion = closest(key, allowed);
      return at(
        `unknown key ${JSON.stringify(key)} in ${titleOf(error.parentSchema)} (expected one of: ${allowed.join(', ')})`,
        suggestion === undefined ? undefined : `did you mean ${JSON.stringify(suggestion)}?`,
        'key',
        [...path, key],
      );
    }
    case 'required': {
      const missing = { noun: titleOf(error.parentSchema), key: error.params.missingProperty };
      return { ...at(`${missing.noun} is missing ${JSON.stringify(missing.key)}`), missing };
    }
    case 'type':
      return at(`${target} must be ${typeWords(error.params.type)}, got ${describeValue(error.data)}`, yesNoHint(error));
    case 'enum': {
      const allowed = error.params.allowedValues.map(String);
      const suggestion = typeof error.data === 'string' ? closest(error.data, allowed) : undefined;
      return at(
        `${target} must be one of ${allowed.join(', ')}, got ${describeValue(error.data)}`,
        suggestion === undefined ? undefined : `did you mean ${JSON.stringify(suggestion)}?`,
      );
    }
    case 'minLength':
      return at(
        error.params.limit === 1 ? `${target} must not be empty` : `${target} must be at least ${error.params.limit} characters`,
      );
    case 'minItems':
      return at(
        error.params.limit === 1 ? `${target} must list at least one item` : `${target} must list at least ${error.params.limit} items`,
      );
    case 'oneOf': {
      const keys = exclusiveKeys(error.schema);
      if (keys !== undefined) {
        const noun = titleOf(error.parentSchema);
        const quoted = keys.map((key) => JSON.stringify(key)).join(' or ');
        const none = error.params.passingSchemas === null;
        return at(none ? `${noun} needs ${quoted}` : `${noun} takes ${quoted}, not both`);
      }
      return at(`${target} must be ${alternativeTypes(error.schema)}, got ${describeValue(error.data)}`);
    }
    case 'anyOf':
      return at(`${target} must be ${alternativeTypes(error.schema)}, got ${describeValue(error.data)}`);
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return at(`${target} must be ${boundWords(error.keyword, error.params.limit)}, got ${describeValue(error.data)}`, rangeHint(error.parentSchema));
    default:
      return at(`${target} ${error.message ?? 'is not valid'}`);
  }
}

/**
 * With `allErrors`, a failed `anyOf` reports every branch's errors plus its own. Keep the errors of
 * the branch whose type matches the value (the one the user meant); when no branch's type matches,
 * keep the alternative's own "must be a string or a mapping" error. Innermost alternatives first, so
 * an outer one sees its branches already reduced.
 */
function collapseAlternatives(findings: readonly Finding[]): Finding[] {
  const alternatives = findings
    .filter((finding) => finding.keyword === 'anyOf' || finding.keyword === 'oneOf')
    .sort((a, b) => b.schemaPath.length - a.schemaPath.length);
  let remaining = [...findings];
  for (const alternative of alternatives) {
    if (!remaining.includes(alternative)) continue;
    const inside = remaining.filter((finding) => isBranchOf(finding, alternative));
    const outside = remaining.filter((finding) => finding !== alternative && !isBranchOf(finding, alternative));
    remaining = [...outside, ...chooseBranch(alternative, inside)];
  }
  return remaining;
}

/** Sibling list items share schema paths, so a branch's error is also recognised by where its data is. */
function isBranchOf(finding: Finding, alternative: Finding): boolean {
  const { instancePath } = alternative;
  return (
    finding.schemaPath.startsWith(`${alternative.schemaPath}/`) &&
    (finding.instancePath === instancePath || finding.instancePath.startsWith(`${instancePath}/`))
  );
}

function chooseBranch(alternative: Finding, inside: readonly Finding[]): Finding[] {
  // "column or expression" alternatives are reported as one sentence on the mapping.
  if (alternative.keyword === 'oneOf' && inside.every((finding) => finding.keyword === 'required')) {
    return [alternative];
  }

  const branches = new Map<string, Finding[]>();
  for (const finding of inside) {
    const branch = finding.schemaPath.slice(alternative.schemaPath.length + 1).split('/')[0] ?? '';
    branches.set(branch, [...(branches.get(branch) ?? []), finding]);
  }
  const typeMatches = [...branches.entries()].filter(
    ([branch, errors]) =>
      !errors.some(
        (finding) =>
          finding.keyword === 'type' &&
          finding.instancePath === alternative.instancePath &&
          finding.schemaPath === `${alternative.schemaPath}/${branch}/type`,
      ),
  );
  const best = typeMatches.sort(([, a], [, b]) => a.length - b.length)[0];
  return best === undefined ? [alternative] : best[1];
}

/** `index is missing "name"` and `index is missing "columns"` become one sentence. */
function mergeMissingKeys(findings: readonly Finding[]): Finding[] {
  const missingKeys = new Map<string, string[]>();
  for (const { instancePath, missing } of findings) {
    if (missing !== undefined) missingKeys.set(instancePath, [...(missingKeys.get(instancePath) ?? []), missing.key]);
  }
  return findings.flatMap((finding): Finding[] => {
    if (finding.missing === undefined) return [finding];
    const keys = missingKeys.get(finding.instancePath);
    if (keys === undefined) return [];
    missingKeys.delete(finding.instancePath);
    const message = `${finding.missing.noun} is missing ${listOf(keys.map((key) => `${JSON.stringify(key)}`))}`;
    return [{ ...finding, problem: { ...finding.problem, message } }];
  });
}

function unique(problems: readonly SchemaProblem[]): SchemaProblem[] {
  const seen = new Set<string>();
  return problems.filter((problem) => {
    const key = JSON.stringify([problem.path, problem.part, problem.message]);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function dataPath(instancePath: string): string[] {
  if (instancePath === '') return [];
  return instancePath
    .slice(1)
    .split('/')
    .map((segment) => segment.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/** `"unique"`, `item 2 of "columns"`, or the document itself. */
function describeTarget(path: readonly string[]): string {
  const last = path.at(-1);
  if (last === undefined) return 'the document';
  if (/^\d+$/u.test(last)) {
    const parent = path.at(-2);
    return parent === undefined ? `item ${Number(last) + 1}` : `item ${Number(last) + 1} of ${JSON.stringify(parent)}`;
  }
  return `${JSON.stringify(last)}`;
}

function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  return String(value);
}

const typeWordOf: Readonly<Record<string, string>> = {
  boolean: 'true or false',
  string: 'a string',
  array: 'a list',
  object: 'a mapping',
  number: 'a number',
  integer: 'a whole number',
  null: 'empty',
};

function typeWords(type: string): string {
  return listOf(type.split(',').map((name) => typeWordOf[name] ?? name), 'or');
}

function alternativeTypes(branches: unknown): string {
  if (!Array.isArray(branches)) return 'something else';
  const types = branches.map((branch) => stringField(branch, 'type') ?? 'something else');
  return typeWords(types.join(','));
}

/** YAML 1.1 read `yes`/`no` as booleans; YAML 1.2, which `yaml` implements, reads them as text. */
function yesNoHint(error: DefinedError): string | undefined {
  if (error.keyword !== 'type' || error.params.type !== 'boolean' || typeof error.data !== 'string') return undefined;
  if (!/^(yes|no|on|off|y|n)$/iu.test(error.data)) return undefined;
  return 'YAML 1.2 reads yes/no/on/off as text; write true or false';
}

/** The keys of a `oneOf` whose every branch only requires one key: "exactly one of these keys". */
function exclusiveKeys(branches: unknown): string[] | undefined {
  if (!Array.isArray(branches)) return undefined;
  const keys = branches.map((branch) => {
    const required = field(branch, 'required');
    const [key] = Array.isArray(required) && required.length === 1 ? required : [];
    return typeof key === 'string' ? key : undefined;
  });
  return keys.every((key): key is string => key !== undefined) ? keys : undefined;
}

function boundWords(keyword: string, limit: number): string {
  const words: Readonly<Record<string, string>> = {
    minimum: 'at least',
    maximum: 'at most',
    exclusiveMinimum: 'greater than',
    exclusiveMaximum: 'less than',
  };
  return `${words[keyword] ?? 'within'} ${limit}`;
}

/** "autovacuum_vacuum_scale_factor accepts 0 to 100": a numeric schema's `title` names what has the range. */
function rangeHint(schema: unknown): string | undefined {
  const min = field(schema, 'minimum');
  const max = field(schema, 'maximum');
  if (typeof min !== 'number' || typeof max !== 'number') return undefined;
  const title = stringField(schema, 'title');
  return title === undefined ? undefined : `${title} accepts ${min} to ${max}`;
}

function titleOf(schema: unknown): string {
  return stringField(schema, 'title') ?? 'mapping';
}

function propertyNames(schema: unknown): string[] {
  const properties = field(schema, 'properties');
  return typeof properties === 'object' && properties !== null ? Object.keys(properties) : [];
}

function field(value: unknown, name: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[name] : undefined;
}

function stringField(value: unknown, name: string): string | undefined {
  const found = field(value, name);
  return typeof found === 'string' ? found : undefined;
}

function listOf(items: readonly string[], conjunction = 'and'): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} ${conjunction} ${items.at(-1) ?? ''}`;
}
