import { ConnectionError } from './connection-error.ts';

/**
 * What a connection string says, keyword by keyword, before any default is applied: libpq's two forms,
 * `postgresql://user:pass@h1:5432,h2:5433/db?sslmode=require` and `host=h1,h2 port=5432 dbname=db`.
 * Multi-host URLs are why this is not `new URL()` (which rejects `h1:5432,h2:5433`) nor
 * pg-connection-string.
 *
 * @example parseConnectionString('postgres://u@[::1]:5433/app?sslmode=verify-full')
 * // => { user: 'u', host: '::1', port: '5433', dbname: 'app', sslmode: 'verify-full' }
 */
export type ConnectionOptions = Readonly<Record<string, string>>;

const URI_PREFIX = /^postgres(?:ql)?:\/\//iu;

export function isConnectionUri(text: string): boolean {
  return URI_PREFIX.test(text);
}

export function parseConnectionString(text: string): ConnectionOptions {
  return isConnectionUri(text) ? parseUri(text) : parseKeywordValue(text);
}

/** `key = value key2='quoted \' value'`, as libpq's conninfo_parse reads it. */
export function parseKeywordValue(text: string): ConnectionOptions {
  const options: Record<string, string> = {};
  let i = 0;
  const skipSpace = (): void => {
    while (i < text.length && /\s/u.test(text[i] ?? '')) i += 1;
  };
  while (true) {
    skipSpace();
    if (i >= text.length) break;
    const keyStart = i;
    while (i < text.length && text[i] !== '=' && !/\s/u.test(text[i] ?? '')) i += 1;
    const key = text.slice(keyStart, i);
    skipSpace();
    if (text[i] !== '=') throw new ConnectionError(`missing "=" after "${key}" in the connection string`, 'write keyword=value pairs, or a postgres:// URL');
    i += 1;
    skipSpace();
    let value = '';
    if (text[i] === "'") {
      i += 1;
      let closed = false;
      while (i < text.length) {
        const c = text[i] ?? '';
        if (c === '\\') {
          value += text[i + 1] ?? '';
          i += 2;
        } else if (c === "'") {
          i += 1;
          closed = true;
          break;
        } else {
          value += c;
          i += 1;
        }
      }
      if (!closed) throw new ConnectionError(`unterminated quoted value for "${key}" in the connection string`);
    } else {
      while (i < text.length && !/\s/u.test(text[i] ?? '')) {
        const c = text[i] ?? '';
        if (c === '\\') {
          value += text[i + 1] ?? '';
          i += 2;
        } else {
          value += c;
          i += 1;
        }
      }
    }
    options[key] = value;
  }
  return options;
}

function decode(part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new ConnectionError(`invalid percent-encoding in the connection URL's ${what}`);
  }
}

/** `postgresql://[user[:password]@][host[:port][,...]][/dbname][?param=value&...]`, as libpq's conninfo_uri_parse reads it. */
export function parseUri(text: string): ConnectionOptions {
  const options: Record<string, string> = {};
  let rest = text.replace(URI_PREFIX, '');
  const queryAt = rest.indexOf('?');
  const query = queryAt === -1 ? '' : rest.slice(queryAt + 1);
  if (queryAt !== -1) rest = rest.slice(0, queryAt);
  const slash = rest.indexOf('/');
  const authority = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? undefined : rest.slice(slash + 1);
  // The last '@' ends the user part: libpq does the same, so a password may hold an unencoded '@'.
  const at = authority.lastIndexOf('@');
  const hostPart = at === -1 ? authority : authority.slice(at + 1);
  if (at !== -1) {
    const userInfo = authority.slice(0, at);
    const colon = userInfo.indexOf(':');
    const user = decode(colon === -1 ? userInfo : userInfo.slice(0, colon), 'user name');
    if (user !== '') options['user'] = user;
    if (colon !== -1) options['password'] = decode(userInfo.slice(colon + 1), 'password');
  }
  const hosts: string[] = [];
  const ports: string[] = [];
  if (hostPart !== '') {
    for (const spec of hostPart.split(',')) {
      let host: string;
      let port = '';
      if (spec.startsWith('[')) {
        const close = spec.indexOf(']');
        if (close === -1) throw new ConnectionError(`unterminated IPv6 host address "${spec}" in the connection URL`);
        host = spec.slice(1, close);
        const after = spec.slice(close + 1);
        if (after !== '' && !after.startsWith(':')) throw new ConnectionError(`unexpected "${after}" after the IPv6 host address in the connection URL`);
        port = after.slice(1);
      } else {
        const colon = spec.lastIndexOf(':');
        host = colon === -1 ? spec : spec.slice(0, colon);
        port = colon === -1 ? '' : spec.slice(colon + 1);
      }
      hosts.push(decode(host, 'host'));
      ports.push(decode(port, 'port'));
    }
    if (hosts.some((h) => h !== '')) options['host'] = hosts.join(',');
    if (ports.some((p) => p !== '')) options['port'] = ports.join(',');
  }
  if (path !== undefined && path !== '') options['dbname'] = decode(path, 'database name');
  if (query !== '') {
    for (const pair of query.split('&')) {
      if (pair === '') continue;
      const eq = pair.indexOf('=');
      if (eq === -1) throw new ConnectionError(`missing "=" in the connection URL's parameter "${decode(pair, 'parameters')}"`);
      // Only %XX is decoded, not '+': libpq's conninfo_uri_decode does the same.
      let key = decode(pair.slice(0, eq), 'parameters');
      let value = decode(pair.slice(eq + 1), 'parameters');
      // libpq accepts JDBC's ssl=true as sslmode=require.
      if (key === 'ssl' && value === 'true') {
        key = 'sslmode';
        value = 'require';
      }
      options[key] = value;
    }
  }
  return options;
}
