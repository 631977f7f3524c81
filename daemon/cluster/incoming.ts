// A request as it arrives from the broker (interactive or batch): the params in a header, the image
// as the payload's bytes or as a name in the object store. Everything a client can get wrong is
// answered with the local daemon's JSON-RPC errors, never with a crash or a silent drop.
import type { MsgHdrs, ObjectStore } from 'nats';
import { ErrorCodes } from '../protocol.js';
import { H, type ImageMethod, MAX_PARAMS_BYTES } from '../client/brokerWire.js';
import { invalidParams, RpcFailure } from '../server/errors.js';
import { sha256 } from '../server/imageSource.js';
import { EngineError } from '../engine/errors.js';

export interface IncomingRequest {
  /** The params as the service takes them: the image inline. */
  params: Record<string, unknown>;
  imageSha256: string;
}

/** Params of a status request: none, or an empty object. */
export function statusParams(headers: MsgHdrs | undefined): unknown {
  const raw = headers?.get(H.params);
  return raw ? parseParams(raw) : undefined;
}

function parseParams(raw: string): Record<string, unknown> {
  if (Buffer.byteLength(raw) > MAX_PARAMS_BYTES) throw invalidParams(`params are ${Buffer.byteLength(raw)} bytes; the limit is ${MAX_PARAMS_BYTES}`);
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch (e) {
    throw new RpcFailure(ErrorCodes.ParseError, `the ${H.params} header is not JSON: ${(e as Error).message}`, 'parse-error');
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw invalidParams(`the ${H.params} header must be a JSON object`);
  if ('image' in v) throw invalidParams(`the image travels as the message payload (or ${H.imageObject}), not inside ${H.params}`);
  return v as Record<string, unknown>;
}

export async function readIncoming(
  method: ImageMethod,
  headers: MsgHdrs | undefined,
  data: Uint8Array,
  maxBytes: number,
  images: () => Promise<ObjectStore>,
): Promise<IncomingRequest> {
  const raw = headers?.get(H.params);
  const params = raw ? parseParams(raw) : {};
  const object = headers?.get(H.imageObject);
  let bytes: Buffer;
  if (object) {
    if (!/^[0-9a-f]{64}$/.test(object)) throw invalidParams(`${H.imageObject} must be the image's sha256 (64 hex digits)`);
    const store = await images();
    const info = await store.info(object);
    if (!info) throw new EngineError('not-found', `the image ${object} is not in the object store (it expires an hour after upload): send it again`);
    if (info.size > maxBytes) throw new EngineError('file-too-large', `image is ${info.size} bytes; the limit is ${maxBytes}`);
    const blob = await store.getBlob(object);
    if (!blob) throw new EngineError('not-found', `the image ${object} is not in the object store: send it again`);
    bytes = Buffer.from(blob);
    if (sha256(bytes) !== object) throw new EngineError('corrupt-image', `the image ${object} in the object store does not match its name`);
  } else {
    if (data.length === 0) throw new EngineError('empty-file', `${method}: no image (the payload is empty)`);
    if (data.length > maxBytes) throw new EngineError('file-too-large', `image is ${data.length} bytes; the limit is ${maxBytes}`);
    bytes = Buffer.from(data.buffer, data.byteOffset, data.length);
  }
  return { params: { ...params, image: { data: bytes.toString('base64') } }, imageSha256: sha256(bytes) };
}
