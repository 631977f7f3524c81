#!/usr/bin/env python3
"""Hugging Face transformers baseline for `paligemma bench`, run on the GPU machine.

Builds a full-size PaliGemma of a real configuration with random weights (speed does not depend on
the values), bf16 on CUDA, and times greedy generation with a forced number of new tokens
(min_new_tokens = max_new_tokens, so eos never stops it early) for eager and sdpa attention.
Prints one JSON object per configuration, one per line; the last line is a JSON list of all.

usage: python3 bench/hf_baseline.py --preset paligemma-3b-224 [--new-tokens 32] [--batch 1 8]
                                    [--attn eager sdpa] [--repeats 5] [--text-tokens 5]
"""
import argparse
import json
import statistics
import time

import torch
from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration

VISION = dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
              patch_size=14, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6,
              model_type="siglip_vision_model")
GEMMA_2B = dict(model_type="gemma", hidden_size=2048, intermediate_size=16384, num_hidden_layers=18,
                num_attention_heads=8, num_key_value_heads=1, head_dim=256, vocab_size=257216,
                hidden_activation="gelu_pytorch_tanh")
GEMMA2_2B = dict(model_type="gemma2", hidden_size=2304, intermediate_size=9216, num_hidden_layers=26,
                 num_attention_heads=8, num_key_value_heads=4, head_dim=256, vocab_size=257216,
                 query_pre_attn_scalar=256, sliding_window=4096, attn_logit_softcapping=50.0,
                 final_logit_softcapping=30.0, hidden_activation="gelu_pytorch_tanh")
GEMMA2_9B = dict(GEMMA2_2B, hidden_size=3584, intermediate_size=14336, num_hidden_layers=42,
                 num_attention_heads=16, num_key_value_heads=8)

PRESETS = {
    "paligemma-3b-224": (GEMMA_2B, 224, 2048),
    "paligemma-3b-448": (GEMMA_2B, 448, 2048),
    "paligemma-3b-896": (GEMMA_2B, 896, 2048),
    "paligemma2-3b-224": (GEMMA2_2B, 224, 2304),
    "paligemma2-3b-448": (GEMMA2_2B, 448, 2304),
    "paligemma2-3b-896": (GEMMA2_2B, 896, 2304),
    "paligemma2-10b-224": (GEMMA2_9B, 224, 3584),
}


def build(preset: str, attn: str, layers: int | None):
    text, size, proj = PRESETS[preset]
    text = dict(text)
    if layers:
        text["num_hidden_layers"] = layers
    num_image_tokens = (size // 14) ** 2
    config = PaliGemmaConfig(
        vision_config=dict(VISION, image_size=size, projection_dim=proj),
        text_config=dict(text, num_image_tokens=num_image_tokens),
        projection_dim=proj, hidden_size=proj, image_token_index=257152, vocab_size=257216,
    )
    config._attn_implementation = attn
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = PaliGemmaForConditionalGeneration(config).to(torch.bfloat16).eval()
    model.config._attn_implementation = attn
    return model, size, num_image_tokens


def run(preset, attn, batch, new_tokens, text_tokens, repeats, layers):
    model, size, n_img = build(preset, attn, layers)
    ids = [257152] * n_img + [2] + [1000 + i for i in range(text_tokens - 2)] + [108]
    input_ids = torch.tensor([ids] * batch, device="cuda")
    attention_mask = torch.ones_like(input_ids)
    token_type_ids = torch.zeros_like(input_ids)
    pixel_values = torch.randn(batch, 3, size, size, device="cuda", dtype=torch.bfloat16)
    kwargs = dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                  pixel_values=pixel_values, do_sample=False)

    def timed(n):
        torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**kwargs, max_new_tokens=n, min_new_tokens=n)
        torch.cuda.synchronize()
        assert out.shape[1] == input_ids.shape[1] + n, out.shape
        return (time.perf_counter() - t) * 1000

    timed(new_tokens)  # warm-up
    first = statistics.median(timed(1) for _ in range(repeats))
    e2e = statistics.median(timed(new_tokens) for _ in range(repeats))
    result = dict(runtime="transformers", version=__import__("transformers").__version__, preset=preset,
                  attention=attn, dtype="bf16", batch=batch, new_tokens=new_tokens,
                  prompt_tokens=len(ids), layers=layers, repeats=repeats,
                  prefill_plus_1_ms=round(first, 2), end_to_end_ms=round(e2e, 2),
                  decode_ms_per_token=round((e2e - first) / max(new_tokens - 1, 1), 3),
                  images_per_s=round(batch * 1000 / e2e, 2),
                  peak_gpu_bytes=torch.cuda.max_memory_allocated(), device=torch.cuda.get_device_name())
    del model
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="paligemma-3b-224", choices=sorted(PRESETS))
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--attn", nargs="+", default=["eager", "sdpa"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--text-tokens", type=int, default=5, help="<bos> + prompt + newline")
    ap.add_argument("--layers", type=int, default=None)
    a = ap.parse_args()
    results = []
    for attn in a.attn:
        for b in a.batch:
            r = run(a.preset, attn, b, a.new_tokens, a.text_tokens, a.repeats, a.layers)
            print(json.dumps(r), flush=True)
            results.append(r)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
