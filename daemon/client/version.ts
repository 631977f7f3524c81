// The daemon's version: part of the shared socket's name, so a client never talks to a daemon
// from another release. Kept equal to package.json's version (test/server/version.test.ts checks).
export const DAEMON_VERSION = '0.1.0';
