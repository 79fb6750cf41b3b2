/**
 * The one place identifiers are quoted. Every schema, table, column and index name that reaches
 * SQL text goes through here; values go through bind parameters instead.
 *
 * @example ident('Weird "name"') // => "Weird ""name"""
 */
export function ident(name: string): string {
  if (name.includes('\u0000')) throw new Error('identifier contains a NUL byte');
  return `"${name.replaceAll('"', '""')}"`;
}

/** `schema.name`, both parts quoted. */
export function qualified(schema: string, name: string): string {
  return `${ident(schema)}.${ident(name)}`;
}

/** A SQL string literal, for the few places PostgreSQL does not take a bind parameter (DDL options, COMMENT). */
export function literal(value: string): string {
  if (value.includes('\u0000')) throw new Error('string contains a NUL byte');
  return `'${value.replaceAll("'", "''")}'`;
}
