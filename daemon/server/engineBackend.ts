// The real backend: the engine's public API behind the server's small Backend interface.
import sharp from 'sharp';
import { loadImage, type RgbImage } from '../engine/image/index.js';
import { PaliGemma, segmentConstraint, type TokenConstraint } from '../engine/index.js';
import { findMaskDecoder, MaskDecoder, segmentObjects } from '../engine/segment/index.js';
import * as text from '../engine/text/index.js';
import type { DecodingOptions, DetectedObject } from '../protocol.js';
import type { Backend, BatchRow, DecodedImage, GenerateOutput, GenerateRequest, Grammar, LoadedModel, RunStats, Task, TaskPromptParams } from './backend.js';
import { identifyModelFolder } from './modelIdentity.js';

export function engineBackend(): Backend {
  return {
    identify: identifyModelFolder,

    async load(path, { executionProvider, onProgress }) {
      onProgress?.({ kind: 'loadModel', message: `creating ${executionProvider} sessions for ${path}`, fraction: 0.1 });
      const model = await PaliGemma.load(path, { executionProvider });
      try {
        const vae = await findMaskDecoder(path);
        return new EngineModel(model, vae ? await MaskDecoder.load(vae) : null);
      } catch (e) {
        await model.dispose();
        throw e;
      }
    },

    async decodeImage(bytes, limits) {
      return loadImage(bytes, limits);
    },

    async measureImage(bytes) {
      const { width, height } = await sharp(bytes, { limitInputPixels: false }).metadata();
      return width && height ? { width, height } : undefined;
    },

    prompt(task: Task, p: TaskPromptParams): string {
      switch (task) {
        case 'caption':
          return text.buildPrompt({ task, lang: p.language, detail: p.detail });
        case 'ocr':
          return text.buildPrompt({ task });
        case 'answer':
          return text.buildPrompt({ task, question: p.question ?? '', lang: p.language });
        case 'detect':
          return text.buildPrompt({ task, objects: p.objects ?? [] });
        case 'segment':
          return text.buildPrompt({ task, objects: p.object ?? '' });
      }
    },

    parseObjects(task, raw, width, height): DetectedObject[] {
      const found = task === 'detect' ? text.parseDetections(raw, width, height) : text.parseSegments(raw, width, height);
      return found.map((o) => ({ label: o.label, box: o.box }));
    },

    displayText: text.cleanText,
  };
}

class EngineModel implements LoadedModel {
  /** Present only when the model folder has a mask decoder. */
  readonly segment?: (raw: string, width: number, height: number) => Promise<DetectedObject[]>;

  constructor(
    private readonly model: PaliGemma,
    private readonly masks: MaskDecoder | null,
  ) {
    if (masks) this.segment = (raw, width, height) => segmentObjects(masks, text.parseSegments(raw, width, height), width, height);
  }

  get info() {
    const m = this.model.manifest;
    return {
      name: m.name,
      architecture: m.architecture,
      imageSize: m.image.size,
      dtype: m.dtype,
      executionProvider: this.model.executionProvider,
      providerNotes: this.model.providerNotes,
      decodeLoop: this.model.decodeLoop,
      warnings: this.model.warnings,
    };
  }

  async generateBatch(items: BatchRow[], decoding: DecodingOptions, signal?: AbortSignal, grammar?: Grammar): Promise<GenerateOutput[]> {
    const outs = await this.model.generateBatch(
      items.map((it) => ({ image: it.image as RgbImage, prompt: it.prompt, maxNewTokens: it.maxNewTokens })),
      { ...decoding, signal, allowedTokens: this.constraint(grammar) },
    );
    return outs.map((out) => ({ text: out.text, raw: out.raw, inputIds: out.inputIds, generatedIds: out.generatedIds }));
  }

  async generate(req: GenerateRequest): Promise<GenerateOutput> {
    const out = await this.model.generate({
      image: req.image as DecodedImage as RgbImage,
      prompt: req.prompt,
      ...req.decoding,
      allowedTokens: this.constraint(req.grammar),
      signal: req.signal,
      onToken: req.onToken,
    });
    return { text: out.text, raw: out.raw, inputIds: out.inputIds, generatedIds: out.generatedIds };
  }

  private constraint(grammar: Grammar | undefined): TokenConstraint | undefined {
    return grammar === 'segment' ? segmentConstraint(this.model.manifest.tokens) : undefined;
  }

  async runStats(): Promise<RunStats> {
    return { runs: this.model.sessionRuns, ms: this.model.sessionRunMs };
  }

  async dispose(): Promise<void> {
    await Promise.all([this.model.dispose(), this.masks?.dispose()]);
  }
}
