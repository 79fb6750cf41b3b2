import { readFile, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { brotliCompress, constants as zlib, gzip } from 'node:zlib';

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
const COMPRESSIBLE = new Set(['.html', '.js', '.mjs', '.css', '.json', '.svg', '.txt', '.map']);

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

export type ContentEncoding = 'br' | 'gzip' | 'identity';

/** The encoding to answer with: brotli when the client takes it, else gzip, else none (q=0 honoured). */
export function chooseEncoding(acceptEncoding: string | undefined): ContentEncoding {
  const accepted = new Map<string, number>();
  for (const part of (acceptEncoding ?? '').split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    if (!name) continue;
    const q = params.map((p) => /^\s*q=([\d.]+)\s*$/.exec(p)).find((m) => m !== null);
    accepted.set(name, q ? Number(q[1]) : 1);
  }
  const wants = (name: string): boolean => (accepted.get(name) ?? accepted.get('*') ?? 0) > 0;
  if (wants('br')) return 'br';
  if (wants('gzip')) return 'gzip';
  return 'identity';
}

const brotli = promisify(brotliCompress);
const gzipAsync = promisify(gzip);

/** Assets are compressed once and kept: worth brotli's slower levels. Pages are compressed per request. */
async function encode(body: Buffer, encoding: ContentEncoding, once: boolean): Promise<Buffer> {
  if (encoding === 'br') return brotli(body, { params: { [zlib.BROTLI_PARAM_QUALITY]: once ? 9 : 5, [zlib.BROTLI_PARAM_SIZE_HINT]: body.length } });
  if (encoding === 'gzip') return gzipAsync(body, { level: once ? 9 : 6 });
  return body;
}

/**
 * Fingerprinted assets (Astro's `_astro/`) never change under their name: their compressed bytes are
 * kept, so each is compressed once per encoding (a few hundred kB in all).
 */
const assetCache = new Map<string, Buffer>();

export interface SendFileOptions {
  readonly head: boolean;
  /** Rewrites an HTML page before it is sent (the "being rebuilt" banner). */
  readonly transformHtml?: (html: string) => string;
  readonly headers?: Record<string, string>;
}

export async function sendFile(req: IncomingMessage, res: ServerResponse, file: string, options: SendFileOptions): Promise<void> {
  const ext = path.extname(file).toLowerCase();
  const type = TYPES[ext] ?? 'application/octet-stream';
  // Astro fingerprints everything under _astro/: those never change; pages may change on every rebuild.
  const immutable = file.includes(`${path.sep}_astro${path.sep}`);
  const encoding = COMPRESSIBLE.has(ext) ? chooseEncoding(req.headers['accept-encoding']) : 'identity';
  const key = `${encoding}:${file}`;
  let body = immutable ? assetCache.get(key) : undefined;
  if (!body) {
    let raw = await readFile(file);
    if (ext === '.html' && options.transformHtml) raw = Buffer.from(options.transformHtml(raw.toString('utf8')));
    body = await encode(raw, encoding, immutable);
    if (immutable) assetCache.set(key, body);
  }
  res.writeHead(200, {
    'content-type': type,
    'content-length': String(body.length),
    'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    ...(COMPRESSIBLE.has(ext) ? { vary: 'accept-encoding' } : {}),
    ...(encoding === 'identity' ? {} : { 'content-encoding': encoding }),
    ...options.headers,
  });
  res.end(options.head ? undefined : body);
}

/**
 * Marks a page built from an older history: a banner at the top, and a reload every few seconds until
 * the new build is in (the page's own URL, so the reader stays where they are).
 */
export function markStale(html: string, message: string): string {
  const escaped = message.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const banner = `<div class="site-rebuilding" role="status" style="position:sticky;top:0;z-index:10;padding:.5rem 1rem;background:#fff4d6;color:#5a4300;border-bottom:1px solid #e0c060;font:14px/1.4 system-ui,sans-serif">${escaped}</div>`;
  const withRefresh = html.replace(/<head>/i, '<head><meta http-equiv="refresh" content="5">');
  return /<body[^>]*>/i.test(withRefresh) ? withRefresh.replace(/<body[^>]*>/i, (m) => `${m}${banner}`) : `${banner}${withRefresh}`;
}
