// The daemon side's dependency-free helpers that its clients use as well. The extension reaches
// daemon code only through daemon/client/, daemon/alttext/ and the protocol, so it takes them from here.
export { errorMessage } from '../common/errors.js';
export { formatBytes } from '../common/format.js';
export { IMAGE_EXTENSIONS, imageMimeType, isImagePath, MAX_PASTED_IMAGE_BYTES } from '../common/images.js';
