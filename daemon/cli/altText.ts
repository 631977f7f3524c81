// `paligemma alt-text check|fix`: alt text for docs pipelines. `check` lints without a model (exit 0
// clean, 1 problems, 2 usage); `fix` describes each flagged local image once (by content) through
// the shared daemon and writes only the alt values, atomically, reporting every image it could not
// fix with the reason. Results on stdout, progress on stderr.
import { readFile } from 'node:fs/promises';
import { relative, resolve, sep } from 'node:path';
import { createTwoFilesPatch, FILE_HEADERS_ONLY } from 'diff';
import type { TextResult } from '../protocol.js';
import { batchEdits, planBatch, type AcceptedAltText, type BatchDocument, type BatchPlan } from '../alttext/batch.js';
import { captionToAltText } from '../alttext/caption.js';
import { checkDocument } from '../alttext/check.js';
import { applyEdits } from '../alttext/edits.js';
import { nodeFileAccess } from '../alttext/imageFiles.js';
import { placeholderReason } from '../alttext/placeholder.js';
import { parserFor } from '../alttext/references/index.js';
import { writeFileAtomically } from '../alttext/writeFile.js';
import { DaemonStoppedError } from '../client/restarting.js';
import { DAEMON_VERSION } from '../client/version.js';
import { errorMessage } from '../common/errors.js';
import { choiceOption, integerOption, runCommand, UsageError, type ParsedValues } from './args.js';
import { collectDocuments, DEFAULT_EXTENSIONS } from './altTextFiles.js';
import { formatFixText, formatProblemsJson, formatProblemsSarif, formatProblemsText, lineColumn, summarize, type FixResult, type ReportedProblem } from './altTextReport.js';
import type { Command } from './main.js';
import { TaskClient } from './taskClient.js';

const USAGE = `usage: paligemma alt-text check <path|dir|glob...> [--format text|json|sarif] [options]
       paligemma alt-text fix <path|dir|glob...> [--model <dir>] [--dry-run] [--format text|json] [options]

  check              report images with missing, empty or placeholder alt text, and images that
                     need it but cannot be described (not-found, unreadable, unsupported, remote);
                     exit 0 when clean, 1 when there are problems, 2 on usage errors
  fix                write alt text for those images from the model (through the shared daemon);
                     exit 0 when every problem was fixed, 1 when any remain
  --format F         text (default), json, or sarif (check only)
  --ext LIST         extensions to look for in folders (default ${DEFAULT_EXTENSIONS.join(',')})
  --placeholder T    one more alt text that counts as a placeholder (repeatable)
  --root DIR         where site-root paths (/img/x.png) start (default: the current folder)
  --model DIR        the model folder (fix; default: the daemon's model; with --broker a model the workers serve)
  --broker URL       describe through a worker pool behind NATS, as durable jobs (fix; or $PALIGEMMA_BROKER)
  --lang L           caption language (fix; default en)
  --max-tokens N     longest description in tokens (fix)
  --dry-run          print the report and a unified diff; write nothing (fix)
  --quiet            no progress on stderr
`;

const options = {
  format: { type: 'string' },
  ext: { type: 'string' },
  placeholder: { type: 'string', multiple: true },
  root: { type: 'string' },
  model: { type: 'string' },
  broker: { type: 'string' },
  lang: { type: 'string' },
  'max-tokens': { type: 'string' },
  'dry-run': { type: 'boolean' },
  quiet: { type: 'boolean' },
} as const;

type Values = ParsedValues<typeof options>;

export const command: Command = {
  summary: 'check and fix the alt text of images in Markdown, MDX, HTML and JSX docs',
  run: (argv) =>
    runCommand({ name: 'alt-text', usage: USAGE, options, usageOnEveryError: true }, argv, async (values, positionals) => {
      const [sub, ...paths] = positionals;
      if (sub !== 'check' && sub !== 'fix') throw new UsageError(sub ? `unknown subcommand '${sub}' (check or fix)` : 'give check or fix');
      if (!paths.length) throw new UsageError(`give the files, folders or globs to ${sub}`);
      const format = choiceOption(values.format, 'format', sub === 'check' ? ['text', 'json', 'sarif'] : ['text', 'json']) ?? 'text';
      const maxTokens = integerOption(values['max-tokens'], 'max-tokens', 1);
      if (sub === 'check' && (values.model || values.broker || values['dry-run'] || values.lang || maxTokens))
        throw new UsageError('--model, --broker, --lang, --max-tokens and --dry-run are for fix');
      const extensions = values.ext
        ? values.ext
            .split(',')
            .map((e) => e.trim())
            .filter(Boolean)
        : DEFAULT_EXTENSIONS;
      const files = await collectDocuments(paths, extensions);
      if (!files.length) throw new UsageError(`no file with the extensions ${extensions.join(', ')} in ${paths.join(' ')}`);
      const unknown = files.find((f) => !parserFor(undefined, f));
      if (unknown) throw new UsageError(`${shown(unknown)} is not a Markdown, MDX, HTML, JSX or TSX file`);
      return sub === 'check' ? check(files, format, values) : fix(files, format, maxTokens, values);
    }),
};

const shown = (path: string) => relative(process.cwd(), path).split(sep).join('/') || '.';
const say = (values: Values, line: string) => {
  if (!values.quiet) process.stderr.write(`${line}\n`);
};

async function readDocuments(files: string[]): Promise<{ docs: BatchDocument[]; unreadable: { file: string; message: string }[] }> {
  const docs: BatchDocument[] = [];
  const unreadable: { file: string; message: string }[] = [];
  for (const file of files) {
    try {
      // The document's own path (POSIX) is what image paths resolve against.
      docs.push({ uri: file, path: toPosix(file), version: 0, text: await readFile(file, 'utf8') });
    } catch (e) {
      unreadable.push({ file: shown(file), message: `cannot read ${shown(file)}: ${errorMessage(e)}` });
    }
  }
  return { docs, unreadable };
}

function toPosix(path: string): string {
  return sep === '/' ? path : path.split(sep).join('/');
}

function checkOptions(values: Values) {
  return { files: nodeFileAccess, rootPath: toPosix(resolve(values.root ?? '.')), placeholders: values.placeholder ?? [], fileChecks: new Map() };
}

async function check(files: string[], format: string, values: Values): Promise<number> {
  const { docs, unreadable } = await readDocuments(files);
  const problems: ReportedProblem[] = [];
  const errors = [...unreadable];
  const opts = checkOptions(values);
  for (const doc of docs) {
    const result = await checkDocument(doc, opts);
    if (result.error) errors.push({ file: shown(doc.uri), message: `${shown(doc.uri)} does not parse: ${result.error}` });
    const at = lineColumn(doc.text);
    for (const p of result.problems) {
      const start = at(p.span.start);
      const end = at(p.span.end);
      problems.push({ file: shown(doc.uri), ...start, endLine: end.line, endColumn: end.column, src: p.image.src, kind: p.kind, message: p.message });
    }
  }
  for (const e of errors) process.stderr.write(`paligemma alt-text: ${e.message}\n`);
  if (format === 'json') process.stdout.write(formatProblemsJson(problems, errors));
  else if (format === 'sarif') process.stdout.write(formatProblemsSarif(problems, DAEMON_VERSION));
  else process.stdout.write(formatProblemsText(problems));
  if (format === 'text') {
    const n = problems.length;
    say(values, n ? `${n} problem${n > 1 ? 's' : ''} in ${new Set(problems.map((p) => p.file)).size} of ${files.length} file(s)` : `no problems in ${files.length} file(s)`);
  }
  return problems.length || errors.length ? 1 : 0;
}

async function fix(files: string[], format: string, maxTokens: number | undefined, values: Values): Promise<number> {
  const { docs, unreadable } = await readDocuments(files);
  const opts = checkOptions(values);
  const plan = await planBatch(docs, opts);
  const texts = new Map<string, string>();
  const failures = new Map<string, string>();
  if (plan.images.size) {
    const failed = await describe(plan, maxTokens, values, texts, failures);
    if (failed !== undefined) return failed;
  }

  const results: FixResult[] = [];
  const position = new Map(docs.map((d) => [d.uri, lineColumn(d.text)]));
  const accepted: AcceptedAltText[] = [];
  for (const item of plan.items) {
    const where = { file: shown(item.uri), ...position.get(item.uri)!(item.problem.span.start), src: item.problem.image.src };
    const alt = texts.get(item.imageKey);
    if (alt) {
      accepted.push({ item, altText: alt });
      results.push({ ...where, status: 'fixed', alt });
    } else {
      results.push({ ...where, status: 'failed', reason: failures.get(item.imageKey) ?? 'not described' });
    }
  }
  for (const s of plan.skipped) {
    const where = s.problem ? position.get(s.uri)!(s.problem.span.start) : { line: 1, column: 1 };
    results.push({ file: shown(s.uri), ...where, src: s.problem?.image.src ?? '', status: 'skipped', reason: s.reason });
  }
  for (const u of unreadable) results.push({ file: u.file, line: 1, column: 1, src: '', status: 'skipped', reason: u.message });
  results.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.column - b.column));

  const byUri = new Map(docs.map((d) => [d.uri, d]));
  let diff = '';
  for (const [uri, edits] of batchEdits(accepted)) {
    const doc = byUri.get(uri)!;
    const after = applyEdits(doc.text, edits);
    if (values['dry-run']) {
      diff += createTwoFilesPatch(`a/${shown(uri)}`, `b/${shown(uri)}`, doc.text, after, undefined, undefined, { context: 1, headerOptions: FILE_HEADERS_ONLY });
      continue;
    }
    // The model takes a while: a document edited meanwhile is left alone.
    const now = await readFile(uri, 'utf8').catch(() => undefined);
    if (now !== doc.text) {
      for (const r of results)
        if (r.file === shown(uri) && r.status === 'fixed')
          Object.assign(r, { status: 'skipped', alt: undefined, reason: `${shown(uri)} changed while the images were described; run fix again` });
      continue;
    }
    await writeFileAtomically(uri, after);
  }

  const summary = summarize(results);
  if (format === 'json') {
    process.stdout.write(`${JSON.stringify({ results: results.map(dropUndefined), summary, ...(values['dry-run'] ? { diff } : {}) }, null, 2)}\n`);
  } else {
    process.stdout.write(formatFixText(results) + diff);
  }
  return summary.skipped || summary.failed ? 1 : 0;
}

function dropUndefined(r: FixResult): FixResult {
  return Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as unknown as FixResult;
}

/** Captions each distinct image through the daemon; returns an exit code when the daemon cannot be used. */
async function describe(plan: BatchPlan, maxTokens: number | undefined, values: Values, texts: Map<string, string>, failures: Map<string, string>): Promise<number | undefined> {
  const fail = (message: string) => process.stderr.write(`paligemma alt-text: ${message}\n`);
  let tasks: TaskClient;
  try {
    const broker = values.broker ?? process.env.PALIGEMMA_BROKER;
    tasks = await TaskClient.open({ broker, model: values.model && !broker ? resolve(values.model) : values.model, say: (line) => say(values, line), onRestart: fail });
  } catch (e) {
    fail(errorMessage(e));
    return 1;
  }
  const decoding = maxTokens ? { maxNewTokens: maxTokens } : undefined;
  const images = [...plan.images.values()];
  try {
    await tasks.jobs<TextResult>(
      'caption',
      images.map((item) => ({ image: { path: item.file.path }, language: values.lang, decoding })),
      (outcome, i) => {
        const item = images[i];
        say(values, `[${i + 1}/${images.length}] ${shown(item.file.path)}`);
        if (!outcome.ok) {
          // A daemon gone for good (after one restart) describes nothing more: the rest are not tried.
          const gone = outcome.error instanceof DaemonStoppedError;
          failures.set(item.imageKey, errorMessage(outcome.error));
          return !gone;
        }
        const alt = captionToAltText(outcome.value.text);
        // A description that would itself be flagged is no fix: a second run would replace it again.
        const weak = alt ? placeholderReason(alt, item.problem.image.src, { placeholders: values.placeholder }) : 'empty';
        if (weak) failures.set(item.imageKey, `the model's description is not usable (${alt ? weak : 'it is empty'})`);
        else texts.set(item.imageKey, alt);
        return true;
      },
    );
  } catch (e) {
    fail(errorMessage(e));
    return 1;
  } finally {
    await tasks.close();
  }
  return undefined;
}
