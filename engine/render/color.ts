/**
 * The one colour helper of the terminal renderers. Whether to colour is decided once per run
 * (`useColor`); the renderers only receive the yes/no.
 */
const CODES = { green: 32, yellow: 33, red: 31, cyan: 36, dim: 2, bold: 1 } as const;

export type Color = keyof typeof CODES;

export function paint(on: boolean, color: Color, text: string): string {
  return on ? `\u001b[${CODES[color]}m${text}\u001b[0m` : text;
}

/**
 * https://no-color.org and https://force-color.org: `--no-color` and a non-empty `NO_COLOR` win,
 * then `FORCE_COLOR` (any value but "0" and "false"), then whether stdout is a terminal.
 */
export function useColor(options: { readonly flag: boolean; readonly env: NodeJS.ProcessEnv; readonly isTTY: boolean }): boolean {
  if (options.flag) return false;
  if ((options.env['NO_COLOR'] ?? '') !== '') return false;
  const force = options.env['FORCE_COLOR'];
  if (force !== undefined) return !['0', 'false'].includes(force.toLowerCase());
  return options.isTTY;
}
