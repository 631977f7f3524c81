// One model run for the user: a caption of one image, reported as `$/progress` work-done progress
// (the caption streams into its message) and cancelled from the request's token or the progress UI.
import { randomUUID } from 'node:crypto';
import { CancellationTokenSource, type CancellationToken } from 'vscode-languageserver/node';
import * as P from '../protocol.js';
import type { ResolvedImage } from './images.js';
import type { Session } from './session.js';

/** The parameters of every caption this server asks for: hovers find the ones Generate computed. */
export function captionParams(session: Session, image: ResolvedImage): P.CaptionParams {
  return { image: { path: image.path }, language: session.settings.captionLanguage, decoding: { maxNewTokens: session.settings.maxNewTokens } };
}

export function ocrParams(session: Session, image: ResolvedImage): P.OcrParams {
  return { image: { path: image.path }, decoding: { maxNewTokens: session.settings.maxNewTokens } };
}

export async function captionWithProgress(session: Session, title: string, image: ResolvedImage, token: CancellationToken): Promise<P.TextResult> {
  const source = new CancellationTokenSource();
  const cancelled = token.onCancellationRequested(() => source.cancel());
  const progress = session.capabilities.window?.workDoneProgress ? await session.connection.window.createWorkDoneProgress().catch(() => undefined) : undefined;
  const progressCancelled = progress?.token.onCancellationRequested(() => source.cancel());
  const streamId = randomUUID();
  progress?.begin(title, undefined, image.name, true);
  const tokens = session.daemon.onTokens((n) => {
    if (n.streamId === streamId) progress?.report(`${image.name}: ${n.text.length > 80 ? '…' + n.text.slice(-80) : n.text}`);
  });
  try {
    return await session.daemon.request(P.Caption.type, { ...captionParams(session, image), streamId }, { start: true, token: source.token });
  } finally {
    tokens.dispose();
    progress?.done();
    progressCancelled?.dispose();
    cancelled.dispose();
    source.dispose();
  }
}
