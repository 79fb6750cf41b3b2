import { describe, expect, it } from 'vitest';
import { redactQueryText } from '../../engine/live-health/redact-query.ts';

describe('redacting passwords from query text', () => {
  it('hides a role’s password in every literal form, terminated or cut short', () => {
    expect(redactQueryText("CREATE ROLE app LOGIN PASSWORD 'Top''Secret' VALID UNTIL 'infinity'")).toBe("CREATE ROLE app LOGIN PASSWORD '<redacted>' VALID UNTIL 'infinity'");
    expect(redactQueryText("alter user app with encrypted password E'it\\'s secret'")).toBe("alter user app with encrypted password '<redacted>'");
    expect(redactQueryText('ALTER ROLE app PASSWORD $pw$dollar secret$pw$ LOGIN')).toBe("ALTER ROLE app PASSWORD '<redacted>' LOGIN");
    expect(redactQueryText("CREATE ROLE app PASSWORD 'cut-short-by-pg_stat_act")).toBe("CREATE ROLE app PASSWORD '<redacted>'");
    expect(redactQueryText('ALTER ROLE app PASSWORD NULL')).toBe('ALTER ROLE app PASSWORD NULL');
  });

  it('hides password= in a conninfo and the password of a URL', () => {
    expect(redactQueryText("SELECT dblink_connect('host=db password=hunter2 dbname=app')")).toBe("SELECT dblink_connect('host=db password=<redacted> dbname=app')");
    expect(redactQueryText("SELECT dblink_connect('host=db password=''two words'' dbname=app')")).toBe("SELECT dblink_connect('host=db password=<redacted> dbname=app')");
    expect(redactQueryText("SELECT 'postgres://app:hunter2@db.example:5432/app'")).toBe("SELECT 'postgres://app:<redacted>@db.example:5432/app'");
    expect(redactQueryText(`SELECT '{"db_password": "hunter2"}'::jsonb`)).toBe(`SELECT '{"db_password": "<redacted>"}'::jsonb`);
  });

  it('leaves text without a password as it is', () => {
    const text = "SELECT id FROM users WHERE email = $1 AND url = 'https://example.com/a'";
    expect(redactQueryText(text)).toBe(text);
  });
});
