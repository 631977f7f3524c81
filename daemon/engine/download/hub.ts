// The Hugging Face Hub through its client library (@huggingface/hub): revision -> commit,
// the file list with sizes and hashes, where a file is served; then byte ranges over plain HTTP.
import { fileDownloadInfo, HubApiError, listFiles, modelInfo } from '@huggingface/hub';
import { DownloadError } from './errors.js';
import type { RepoFile } from './layout.js';
import type { OpenRange } from './transfer.js';
import { errorMessage } from '../../common/errors.js';

export const DEFAULT_HUB_URL = 'https://huggingface.co';

export interface HubAccess {
  repo: string;
  hubUrl: string;
  accessToken?: string;
  fetch: typeof fetch;
}

const REPO_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function checkRepoId(repo: string): void {
  if (!REPO_ID.test(repo) || repo.includes('..')) {
    throw new DownloadError('bad-repo', `'${repo}' is not a Hugging Face model id (expected owner/name, e.g. google/paligemma-3b-mix-224)`);
  }
}

export function checkToken(token: string | undefined): void {
  // The client library refuses anything else with a TypeError; say it in our words first.
  if (token !== undefined && !token.startsWith('hf_')) {
    throw new DownloadError('bad-repo', 'the Hugging Face token must start with hf_ (create one at https://huggingface.co/settings/tokens)');
  }
}

/** Turns a Hub API failure into a DownloadError that says what to do about it. */
export function hubError(h: HubAccess, what: string, e: unknown): DownloadError {
  if (e instanceof DownloadError) return e;
  const page = `${h.hubUrl}/${h.repo}`;
  if (e instanceof HubApiError) {
    switch (e.statusCode) {
      case 401:
        return new DownloadError(
          'unauthorized',
          h.accessToken
            ? `${what}: the Hub rejected the token (401). Check that it is valid at ${h.hubUrl}/settings/tokens.`
            : `${what}: ${h.repo} needs a Hugging Face token (401). It is probably gated: accept its license at ${page} ` +
                `while logged in, create a read token at ${h.hubUrl}/settings/tokens, then set HF_TOKEN (or pass --token, ` +
                `or the extension's Hugging Face token setting).`,
          { cause: e },
        );
      case 403:
        return new DownloadError(
          'gated',
          `${what}: access to ${h.repo} is restricted (403). Open ${page}, log in with the account that owns your token ` +
            `and accept the license; access is usually granted at once. Then run the download again.`,
          { cause: e },
        );
      case 404:
        return new DownloadError('not-found', `${what}: not found on the Hub (404)${h.accessToken ? '' : '; if the repo is private, set HF_TOKEN'}`, { cause: e });
      default:
        if (e.statusCode >= 500 || e.statusCode === 429) {
          return new DownloadError('network', `${what}: the Hub answered ${e.statusCode}; try again later`, { cause: e });
        }
        return new DownloadError('network', `${what}: ${e.message}`, { cause: e });
    }
  }
  const cause = (e as { cause?: { code?: string } })?.cause;
  const detail = [errorMessage(e), cause?.code].filter(Boolean).join(': ');
  return new DownloadError('network', `${what}: cannot reach ${h.hubUrl} (${detail})`, { cause: e });
}

function params(h: HubAccess) {
  return { hubUrl: h.hubUrl, accessToken: h.accessToken, fetch: h.fetch };
}

/** The commit a branch, tag or commit id points at, so that every file comes from one snapshot. */
export async function resolveCommit(h: HubAccess, revision: string): Promise<string> {
  try {
    const info = await modelInfo({ name: h.repo, revision, additionalFields: ['sha'], ...params(h) });
    if (typeof info.sha !== 'string' || !/^[0-9a-f]{40}$/.test(info.sha)) {
      throw new DownloadError('network', `${h.repo}@${revision}: the Hub did not say which commit this is`);
    }
    return info.sha;
  } catch (e) {
    throw hubError(h, `${h.repo}@${revision}`, e);
  }
}

export async function listRepoFiles(h: HubAccess, commit: string): Promise<RepoFile[]> {
  const out: RepoFile[] = [];
  try {
    for await (const entry of listFiles({ repo: h.repo, revision: commit, recursive: true, ...params(h) })) {
      if (entry.type !== 'file') continue;
      out.push({ path: entry.path, size: entry.lfs?.size ?? entry.size, oid: entry.lfs ? undefined : entry.oid, sha256: entry.lfs?.oid });
    }
  } catch (e) {
    throw hubError(h, `listing ${h.repo}`, e);
  }
  return out;
}

/** Ranged reads of one file at a commit, following the Hub's redirect to its storage. */
export async function fileOpener(h: HubAccess, commit: string, file: RepoFile): Promise<OpenRange> {
  const what = `${h.repo}/${file.path}`;
  let info;
  try {
    info = await fileDownloadInfo({ repo: h.repo, path: file.path, revision: commit, ...params(h) });
  } catch (e) {
    throw hubError(h, what, e);
  }
  if (!info) throw new DownloadError('not-found', `${what}: listed by the Hub but not downloadable (404)`);
  if (info.size !== file.size) {
    throw new DownloadError('integrity', `${what}: the Hub lists ${file.size} bytes but serves ${info.size}`);
  }
  // Xet-backed files are fetched over plain HTTP too: the resolve route redirects a request
  // that does not ask for Xet metadata to a bridge serving the bytes, with range support.
  const url = info.url;
  return async (offset, signal) => {
    const headers: Record<string, string> = {};
    if (offset > 0) headers.Range = `bytes=${offset}-`;
    // fetch drops Authorization itself when a redirect leaves the Hub's origin.
    if (h.accessToken) headers.Authorization = `Bearer ${h.accessToken}`;
    let res: Response;
    try {
      res = await h.fetch(url, { headers, signal, redirect: 'follow' });
    } catch (e) {
      throw hubError(h, what, e);
    }
    if (res.status === 416) {
      await res.body?.cancel();
      throw new DownloadError('integrity', `${what}: the server has fewer bytes than the ${offset} already downloaded`);
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw hubError(h, what, new HubApiError(res.url, res.status));
    }
    if (!res.body) throw new DownloadError('network', `${what}: empty response`);
    if (res.status === 206) {
      const m = /^bytes (\d+)-\d+\/\d+$/.exec(res.headers.get('content-range') ?? '');
      if (!m) {
        await res.body.cancel();
        throw new DownloadError('network', `${what}: partial response without a usable Content-Range`);
      }
      return { start: Number(m[1]), body: res.body };
    }
    return { start: 0, body: res.body };
  };
}
