/**
 * Never print a password: in a URL (`postgres://user:secret@`, `postgres://:secret@`), as a keyword
 * (`password=secret`, `password='s e c'`, `sslpassword=...`) or a variable (`PGPASSWORD=secret`), and any
 * literal secret the caller knows (the resolved password, which a driver message might quote).
 *
 * @example redact('cannot reach postgres://app:hunter2@db/app') // => 'cannot reach postgres://app:***@db/app'
 */
export function redact(text: string, secrets: readonly (string | undefined)[] = []): string {
  let out = text
    .replace(/(postgres(?:ql)?:\/\/[^:@/\s,]*):[^\s]*@/giu, '$1:***@')
    .replace(/\b((?:PG|ssl)?password)(\s*[=:]\s*)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s&'",;]+)/giu, '$1$2***');
  for (const secret of secrets) {
    if (secret !== undefined && secret.length >= 3) out = out.split(secret).join('***');
  }
  return out;
}
