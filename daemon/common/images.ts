// The image files every side recognises by extension: the docs scanner's image paths, the files
// the extension and the inspector offer, the MIME type an inline image is sent with. SVG is
// rasterised by the daemon's image loader. (package.json's explorer menu repeats the list in a
// `when` clause, which cannot import.)

export const IMAGE_MIME_TYPES: Readonly<Record<string, string>> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  bmp: 'image/bmp',
  tif: 'image/tiff',
  tiff: 'image/tiff',
  avif: 'image/avif',
  svg: 'image/svg+xml',
};

/** Lower-case extensions without the dot: png, jpg, ... */
export const IMAGE_EXTENSIONS: string[] = Object.keys(IMAGE_MIME_TYPES);

/** The MIME type of an image file by its extension (any case); undefined for other files. */
export function imageMimeType(path: string): string | undefined {
  const ext = /\.([^./\\]+)$/.exec(path)?.[1]?.toLowerCase();
  return ext !== undefined && Object.hasOwn(IMAGE_MIME_TYPES, ext) ? IMAGE_MIME_TYPES[ext] : undefined;
}

export function isImagePath(path: string): boolean {
  return imageMimeType(path) !== undefined;
}

/**
 * The largest image pasted or dropped into the inspector: it travels as base64 in webview messages
 * and in the saved webview state, so it is kept bounded (the host checks it).
 */
export const MAX_PASTED_IMAGE_BYTES = 25_000_000;
