/**
 * The text of a new policy file, written directly rather than through the `yaml` document API: import
 * writes thousands of them on a large catalog, and for this one fixed shape (mappings of scalars, flow
 * lists of keys, flow mappings of parameters) building and printing document trees cost more than
 * reading the catalog did. The result reads back (test/import) as exactly the data it was made from.
 */

// What the YAML 1.2 core schema would read as something other than a string.
const nonString = /^(?:null|Null|NULL|~|true|True|TRUE|false|False|FALSE|[-+]?(?:\.inf|\.Inf|\.INF)|\.nan|\.NaN|\.NAN)$/u;
// Plain (unquoted) text: safe in block and flow context alike.
const plain = /^[\p{L}_][\p{L}\p{M}\p{N}_ $.-]*$/u;

/** A scalar as YAML: plain when it reads back as the same string, else double-quoted (JSON's escapes are YAML's). */
export function scalar(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  const text = String(value);
  return plain.test(text) && !text.endsWith(' ') && !nonString.test(text) ? text : JSON.stringify(text);
}

function flowMap(record: Readonly<Record<string, unknown>>): string {
  return `{${Object.entries(record).map(([k, v]) => `${scalar(k)}: ${flow(v)}`).join(', ')}}`;
}

function flow(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(flow).join(', ')}]`;
  if (typeof value === 'object' && value !== null) return flowMap(value as Record<string, unknown>);
  return scalar(value);
}

/** Keys whose values are written in flow style, as policies are written by hand. */
const flowKeys = new Set(['columns', 'include', 'with', 'autovacuum', 'toast', 'retention']);

function block(record: Readonly<Record<string, unknown>>, indent: string): string[] {
  const lines: string[] = [];
  for (const [key, value] of Object.entries(record)) {
    const head = `${indent}${scalar(key)}:`;
    if (flowKeys.has(key) || (typeof value !== 'object' || value === null)) {
      lines.push(`${head} ${flow(value)}`);
    } else if (Array.isArray(value)) {
      if (value.length === 0) lines.push(`${head} []`);
      else {
        lines.push(head);
        for (const item of value) {
          const [first, ...rest] = block(item as Record<string, unknown>, `${indent}    `);
          lines.push(`${indent}  - ${(first ?? '').trimStart()}`, ...rest);
        }
      }
    } else {
      lines.push(head, ...block(value as Record<string, unknown>, `${indent}  `));
    }
  }
  return lines;
}

/** A document with its comment lines above it. */
export function policyText(comments: readonly string[], document: Readonly<Record<string, unknown>>): string {
  const head = comments.map((line) => (line === '' ? '#' : `# ${line}`));
  return `${[...head, '', ...block(document, '')].join('\n')}\n`;
}
