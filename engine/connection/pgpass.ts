import { readFileSync, statSync } from 'node:fs';

/**
 * libpq's password file (`~/.pgpass`, `PGPASSFILE`, or `passfile=`): lines of
 * `hostname:port:database:username:password`, `*` matching anything, `\:` and `\\` escaped. The first
 * matching line wins. Like libpq, a file others can read is ignored (on systems with Unix permissions).
 */
export interface PasswordLookup {
  readonly host: string;
  readonly port: string;
  readonly database: string;
  readonly user: string;
}

export type PasswordFileResult =
  | { readonly kind: 'found'; readonly password: string }
  | { readonly kind: 'none' }
  | { readonly kind: 'ignored'; readonly reason: string };

function fields(line: string): string[] {
  const out: string[] = [];
  let current = '';
  for (let i = 0; i < line.length; i += 1) {
    const c = line[i] ?? '';
    if (c === '\\' && i + 1 < line.length) {
      current += line[i + 1] ?? '';
      i += 1;
    } else if (c === ':' && out.length < 4) {
      out.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  out.push(current);
  return out;
}

export function passwordFromText(text: string, lookup: PasswordLookup): string | null {
  for (const raw of text.split(/\r?\n/u)) {
    if (raw.trim() === '' || raw.startsWith('#')) continue;
    const parts = fields(raw);
    if (parts.length < 5) continue;
    const [host, port, database, user, password] = parts as [string, string, string, string, string];
    const matches = (pattern: string, value: string): boolean => pattern === '*' || pattern === value;
    if (matches(host, lookup.host) && matches(port, lookup.port) && matches(database, lookup.database) && matches(user, lookup.user)) return password;
  }
  return null;
}

export function passwordFromFile(file: string, lookup: PasswordLookup): PasswordFileResult {
  let mode: number;
  try {
    const stat = statSync(file);
    if (!stat.isFile()) return { kind: 'ignored', reason: `password file "${file}" is not a plain file` };
    mode = stat.mode;
  } catch {
    return { kind: 'none' };
  }
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    return { kind: 'ignored', reason: `password file "${file}" has group or world access; permissions should be u=rw (0600) or less` };
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return { kind: 'none' };
  }
  const password = passwordFromText(text, lookup);
  return password === null ? { kind: 'none' } : { kind: 'found', password };
}
