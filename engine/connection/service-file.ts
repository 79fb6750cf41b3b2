import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConnectionError } from './connection-error.ts';
import type { ConnectionOptions } from './connection-string.ts';

/**
 * libpq's connection service file (`pg_service.conf`): INI sections named after services, each a list of
 * `keyword=value` connection options. libpq reads the user's file first (`PGSERVICEFILE`, else
 * `~/.pg_service.conf`) and only when the service is not there the system-wide one
 * (`$PGSYSCONFDIR/pg_service.conf`; Debian's libpq is built with `/etc/postgresql-common`).
 */
export interface ServiceFileLocations {
  readonly userFile: string;
  readonly systemFile: string;
}

export const DEFAULT_SYSCONFDIR = '/etc/postgresql-common';

export function serviceFileLocations(env: Readonly<Record<string, string | undefined>>, home: string): ServiceFileLocations {
  return {
    userFile: nonEmpty(env['PGSERVICEFILE']) ?? path.join(home, '.pg_service.conf'),
    systemFile: path.join(nonEmpty(env['PGSYSCONFDIR']) ?? DEFAULT_SYSCONFDIR, 'pg_service.conf'),
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function readIfExists(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ConnectionError(`cannot read the service file ${file}: ${(error as Error).message}`);
  }
}

/** The options of one service in one file's text; null when the file has no such section. */
export function serviceSection(text: string, file: string, service: string): ConnectionOptions | null {
  let inService = false;
  let found = false;
  const options: Record<string, string> = {};
  const lines = text.split(/\r?\n/u);
  for (const [index, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('[')) {
      if (!line.endsWith(']')) throw new ConnectionError(`syntax error in service file ${file}, line ${index + 1}`);
      // A later section with the same name does not reopen it: libpq stops at the first one's end.
      if (found && inService) break;
      inService = line.slice(1, -1) === service;
      if (inService) found = true;
      continue;
    }
    if (!inService) continue;
    const eq = line.indexOf('=');
    if (eq === -1) throw new ConnectionError(`syntax error in service file ${file}, line ${index + 1}: expected keyword=value`);
    const key = line.slice(0, eq).trim();
    if (key === 'service') throw new ConnectionError(`nested service specifications are not supported in service file ${file}, line ${index + 1}`);
    options[key] = line.slice(eq + 1).trim();
  }
  return found ? options : null;
}

/** The service's options, from the user's file or else the system's; a name in neither is an error. */
export function readService(service: string, locations: ServiceFileLocations): ConnectionOptions {
  for (const file of [locations.userFile, locations.systemFile]) {
    const text = readIfExists(file);
    if (text === null) continue;
    const section = serviceSection(text, file, service);
    if (section !== null) return section;
  }
  throw new ConnectionError(
    `definition of service "${service}" not found`,
    `add a [${service}] section to ${locations.userFile} (or PGSERVICEFILE) or ${locations.systemFile} (PGSYSCONFDIR)`,
  );
}
