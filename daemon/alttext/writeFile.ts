// Writing a fixed document from the CLI: the new text goes to a temp file in the same folder, which
// then replaces the document by rename, so a reader (or a crash) sees the old file or the new one,
// never half of one; the file's mode (and owner, where allowed) is kept.
import writeFileAtomic from 'write-file-atomic';

export async function writeFileAtomically(path: string, text: string): Promise<void> {
  await writeFileAtomic(path, text, { encoding: 'utf8' });
}
