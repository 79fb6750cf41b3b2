/**
 * Query text as it may leave the process (the API, the event stream, the report site, history
 * records): the same text with every password in it replaced by `<redacted>`. pg_stat_activity shows a
 * statement as it was sent, and pg_stat_statements keeps comments and the literals of statements it does
 * not normalise, so a role's password or a connection string can sit in either.
 *
 * Covered, case-insensitively, quoted or not, and cut short (pg_stat_activity's text is truncated, and
 * the poll keeps 200 characters, so a literal may have no closing quote):
 *
 *   CREATE ROLE app PASSWORD 'TopSecret'            →  CREATE ROLE app PASSWORD '<redacted>'
 *   ALTER ROLE app ENCRYPTED PASSWORD E'it\'s'      →  ALTER ROLE app ENCRYPTED PASSWORD '<redacted>'
 *   dblink_connect('host=db password=hunter2')      →  dblink_connect('host=db password=<redacted>')
 *   'postgres://app:hunter2@db/prod'                →  'postgres://app:<redacted>@db/prod'
 *   {"password": "hunter2"}                         →  {"password": "<redacted>"}
 *
 * It errs on the side of hiding: `password = 'x'` in a WHERE clause is redacted too.
 */
export const REDACTED = '<redacted>';

// A string literal after PASSWORD: E'' (backslash escapes), U&'', standard '' (doubled quotes), or
// dollar-quoted; unterminated literals run to the end of the text.
const PASSWORD_LITERAL = /\b(PASSWORD\s+)(?:E'(?:[^'\\]|''|\\[\s\S])*(?:'|$)|(?:U&)?'(?:[^']|'')*(?:'|$)|(\$[A-Z_]*\$)[\s\S]*?(?:\2|$))/gi;

// password=value in a libpq conninfo (also PGPASSWORD=, db_password=): the value quoted libpq's way,
// quoted inside an SQL literal (doubled quotes), or up to the next space or SQL quote.
const CONNINFO_PASSWORD = /(password\s*=\s*)(?:''(?:[^']|'''')*(?:''|$)|'(?:[^'\\]|\\[\s\S])*(?:'|$)|[^\s'"]+)/gi;

// scheme://user:password@host
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:@/'"]*):([^\s@/'"]*)@/gi;

// "password": "value" (JSON handed to a function, a jsonb literal).
const JSON_PASSWORD = /("[^"]*password[^"]*"\s*:\s*)"(?:[^"\\]|\\[\s\S])*(?:"|$)/gi;

export function redactQueryText(text: string): string {
  return text
    .replace(PASSWORD_LITERAL, `$1'${REDACTED}'`)
    .replace(CONNINFO_PASSWORD, `$1${REDACTED}`)
    .replace(URL_PASSWORD, `$1:${REDACTED}@`)
    .replace(JSON_PASSWORD, `$1"${REDACTED}"`);
}
