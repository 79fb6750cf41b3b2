import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import path from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
  '.map': 'application/json; charset=utf-8',
};

/**
 * Resolves a URL path inside `root`, or null when it would leave it (`..`, encoded or not) or names
 * nothing. Directories serve their index.html, as a static host does.
 */
export async function resolveStatic(root: string, urlPath: string): Promise<string | null> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0')) return null;
  const full = path.resolve(root, `.${path.posix.normalize(`/${decoded}`)}`);
  if (full !== root && !full.startsWith(root + path.sep)) return null;
  const s = await stat(full).catch(() => null);
  if (!s) return null;
  if (s.isDirectory()) {
    const index = path.join(full, 'index.html');
    return (await stat(index).catch(() => null))?.isFile() ? index : null;
  }
  return s.isFile() ? full : null;
}

export function sendFile(res: ServerResponse, file: string, head: boolean): void {
  const type = TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
  // Astro fingerprints everything under _astro/: those never change; pages may change on every rebuild.
  const immutable = file.includes(`${path.sep}_astro${path.sep}`);
  res.writeHead(200, { 'content-type': type, 'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache' });
  if (head) {
    res.end();
    return;
  }
  createReadStream(file)
    .on('error', () => res.destroy())
    .pipe(res);
}
