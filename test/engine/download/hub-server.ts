// A local stand-in for the Hugging Face Hub (127.0.0.1, random port) serving fixture repos the
// way the Hub does for the routes @huggingface/hub calls:
//   GET /api/models/:owner/:name/revision/:rev   model info (sha = the commit)
//   GET /api/models/:owner/:name/tree/:rev?recursive=true   file list (LFS files with sha256)
//   GET /:owner/:name/resolve/:rev/:path   git files served directly (ETag = blob sha1,
//       X-Repo-Commit); LFS files redirected (302) to /cdn/<sha256> with X-Linked-Size /
//       X-Linked-Etag; ranges honoured (206 + Content-Range, 416 past the end)
// plus fault injection: gated repos (401 without token, 403 with one not on the list), a cut
// connection after N bytes, corrupted content, requests recorded for assertions.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FixtureFile {
  content: Buffer;
  lfs?: boolean;
}

export interface FixtureRepo {
  commit: string;
  files: Record<string, FixtureFile>;
  /** Tokens allowed to read a gated repo; a gated repo refuses everyone else. */
  gatedAllow?: string[];
}

export interface RecordedRequest {
  method: string;
  path: string;
  range?: string;
  authorization?: string;
}

export interface HubServer {
  url: string;
  requests: RecordedRequest[];
  /** The next GET of this file's bytes sends this many bytes and then drops the connection. */
  cutOnce: Map<string, number>;
  /** Files whose served bytes have one byte flipped (size unchanged). */
  corrupt: Set<string>;
  /** Files served with a 200 (whole file) when a range other than the 0-0 probe is asked for. */
  ignoreRange: Set<string>;
  close(): Promise<void>;
}

export function gitBlobSha1(content: Buffer): string {
  return createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
}
export function sha256(content: Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

export interface HubServerOptions {
  /** Where LFS redirects point (another origin, like the Hub's CDN); default this server. */
  cdnBase?: string;
}

export async function startHubServer(repos: Record<string, FixtureRepo>, options: HubServerOptions = {}): Promise<HubServer> {
  const state = {
    requests: [] as RecordedRequest[],
    cutOnce: new Map<string, number>(),
    corrupt: new Set<string>(),
    ignoreRange: new Set<string>(),
  };
  const byCdn = new Map<string, { repo: string; path: string; file: FixtureFile }>();
  for (const [repo, r] of Object.entries(repos)) {
    for (const [path, file] of Object.entries(r.files)) if (file.lfs) byCdn.set(sha256(file.content), { repo, path, file });
  }

  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
    res.end(text);
  };

  // 401/403 the way the Hub answers for gated repos; null when access is fine.
  const denied = (req: IncomingMessage, res: ServerResponse, name: string, r: FixtureRepo): boolean => {
    if (!r.gatedAllow) return false;
    const auth = req.headers.authorization;
    if (!auth) {
      json(
        res,
        401,
        { error: `Access to model ${name} is restricted. You must have access to it and be authenticated to access it. Please log in.` },
        { 'X-Error-Code': 'GatedRepo' },
      );
      return true;
    }
    if (!r.gatedAllow.includes(auth.replace(/^Bearer /, ''))) {
      json(
        res,
        403,
        { error: `Access to model ${name} is restricted and you are not in the authorized list. Visit https://huggingface.co/${name} to ask for access.` },
        { 'X-Error-Code': 'GatedRepo' },
      );
      return true;
    }
    return false;
  };

  const sendBytes = (req: IncomingMessage, res: ServerResponse, key: string, file: FixtureFile, headers: Record<string, string>) => {
    let content = file.content;
    if (state.corrupt.has(key) && content.length > 0) {
      content = Buffer.from(content);
      content[content.length >> 1] ^= 0xff;
    }
    const total = content.length;
    let start = 0;
    let end = total - 1;
    let status = 200;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    // ignoreRange: a store that cannot resume; it still answers the size probe (bytes=0-0).
    if (range && !(state.ignoreRange.has(key) && req.headers.range !== 'bytes=0-0')) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), total - 1) : total - 1;
      if (start >= total) {
        res.writeHead(416, { 'Content-Range': `bytes */${total}` });
        res.end();
        return;
      }
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${end}/${total}`;
    }
    const body = content.subarray(start, end + 1);
    res.writeHead(status, { ...headers, 'Accept-Ranges': 'bytes', 'Content-Length': body.length, 'Content-Type': 'application/octet-stream' });
    const cut = state.cutOnce.get(key);
    // Range 0-0 probes (fileDownloadInfo) are not the transfer a cut is meant for.
    if (cut !== undefined && body.length > 1) {
      state.cutOnce.delete(key);
      res.write(body.subarray(0, cut), () => {
        // Let the bytes leave before the connection drops mid-body.
        setTimeout(() => req.socket.destroy(), 20);
      });
      return;
    }
    res.end(body);
  };

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    state.requests.push({ method: req.method ?? '', path: decodeURIComponent(url.pathname), range: req.headers.range, authorization: req.headers.authorization });
    const parts = url.pathname.split('/').slice(1).map(decodeURIComponent);

    if (parts[0] === 'api' && parts[1] === 'models') {
      const name = `${parts[2]}/${parts[3]}`;
      const r = repos[name];
      if (!r) return json(res, 404, { error: 'Repository not found' }, { 'X-Error-Code': 'RepoNotFound' });
      const rev = parts[5];
      if (rev !== 'main' && rev !== 'HEAD' && rev !== r.commit) {
        return json(res, 404, { error: `Invalid rev id: ${rev}` }, { 'X-Error-Code': 'RevisionNotFound' });
      }
      if (parts[4] === 'revision') {
        return json(res, 200, {
          _id: 'x',
          id: name,
          sha: r.commit,
          private: false,
          gated: r.gatedAllow ? 'manual' : false,
          downloads: 0,
          likes: 0,
          lastModified: '2024-01-01T00:00:00.000Z',
          pipeline_tag: 'image-text-to-text',
        });
      }
      if (parts[4] === 'tree') {
        const dirs = new Set<string>();
        const entries: unknown[] = [];
        for (const [path, f] of Object.entries(r.files)) {
          const segs = path.split('/');
          for (let i = 1; i < segs.length; i++) dirs.add(segs.slice(0, i).join('/'));
          entries.push({
            type: 'file',
            path,
            size: f.lfs ? 134 : f.content.length,
            oid: f.lfs ? 'ptr' + gitBlobSha1(f.content).slice(3) : gitBlobSha1(f.content),
            ...(f.lfs ? { lfs: { oid: sha256(f.content), size: f.content.length, pointerSize: 134 } } : {}),
          });
        }
        for (const d of dirs) entries.push({ type: 'directory', path: d, size: 0, oid: '0'.repeat(40) });
        return json(res, 200, entries);
      }
    }

    if (parts[0] === 'cdn') {
      const hit = byCdn.get(parts[1]);
      if (!hit) return json(res, 404, { error: 'no such object' });
      return sendBytes(req, res, `${hit.repo}/${hit.path}`, hit.file, { ETag: `"${parts[1]}"` });
    }

    if (parts[2] === 'resolve') {
      const name = `${parts[0]}/${parts[1]}`;
      const r = repos[name];
      if (!r) return json(res, 404, { error: 'Repository not found' }, { 'X-Error-Code': 'RepoNotFound' });
      if (denied(req, res, name, r)) return;
      const path = parts.slice(4).join('/');
      const file = r.files[path];
      if (parts[3] !== r.commit && parts[3] !== 'main') return json(res, 404, { error: 'Invalid rev' }, { 'X-Error-Code': 'RevisionNotFound' });
      if (!file) return json(res, 404, { error: 'Entry not found' }, { 'X-Error-Code': 'EntryNotFound' });
      const headers: Record<string, string> = { 'X-Repo-Commit': r.commit };
      if (file.lfs) {
        const sum = sha256(file.content);
        res.writeHead(302, {
          ...headers,
          Location: `${options.cdnBase ?? ''}/cdn/${sum}`,
          ETag: `"${gitBlobSha1(file.content)}"`,
          'X-Linked-Etag': `"${sum}"`,
          'X-Linked-Size': String(file.content.length),
          'Content-Length': 0,
        });
        res.end();
        return;
      }
      return sendBytes(req, res, `${name}/${path}`, file, { ...headers, ETag: `"${gitBlobSha1(file.content)}"` });
    }
    json(res, 404, { error: 'no route' });
  });
  // Bounded: no request may hang a test.
  server.requestTimeout = 5000;
  server.headersTimeout = 5000;
  server.keepAliveTimeout = 100;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    ...state,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
