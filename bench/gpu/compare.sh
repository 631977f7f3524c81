#!/usr/bin/env bash
# Both sides of the performance comparison on the GPU machine in one go: bench/hf_baseline.py (HF
# transformers, bf16, eager and sdpa) and `paligemma bench` (CUDA EP, int4 and fp16, host and graph
# decode loop) on the same presets, prompt length and token counts, rows appended as JSONL to $OUT
# (./bench-out without $OUT), then the dated markdown table bench/compare-table.mjs makes of them.
# A failing configuration becomes a row with an "error" field and the run goes on.
#
# Run from the repository root on the GPU machine, after staging the CUDA provider into /tmp/stage
# (../shared/device/stage-gpu.sh) and with .device/base and .device/app (bench/gpu/make-carry.sh)
# carried: it unpacks .device/app (bench/gpu/unpack-app.sh) and sources gpu-env.sh itself when needed.
# See bench/README.md.
#
# usage: bash bench/gpu/compare.sh [--presets paligemma-3b-224[,paligemma2-3b-224,...]]
#          [--dtypes int4h,int4[,fp16]] [--loops graph,search,host,graph-concat] [--ops fused[,standard]] [--eps cuda] [--batch 8] [--runs 3]
#          [--new-tokens 32] [--hf-repeats 3] [--no-hf] [--no-ours] [--deadline 540]
#          [--machine "one NVIDIA H100 ..."] [--name h100] [--app /tmp/app/paligemma.mjs]
#          [--bench-args "<more paligemma bench options>"] [--dry-run]
# --dtypes: int4 (fp32 activations and vision tower, the converter's default), int4h (int4 weights,
# fp16 activations, KV cache and vision tower: `--dtype int4 --activations fp16 --vision-dtype fp16`,
# onnxruntime's CUDA recipe), fp16, fp32.
# --loops: graph (decoder-loop.onnx: the prefill's cache read in place, generated keys and values in
# preallocated buffers), search (decoder-search.onnx, onnxruntime's GreedySearch op), host (one run
# per token), graph-concat (decoder-loop-concat.onnx: the loop that grows the whole cache by Concat
# every step, the A/B for graph).
# Presets both sides know: paligemma-3b-{224,448,896}, paligemma2-3b-{224,448,896}, paligemma2-10b-224.
# --batch 1 skips the batch measurements; --deadline (seconds since start) caps the step timeouts so
# that the table is always written before the device tool's 10-minute limit: steps that no longer fit
# are recorded as skipped.
#
# Expected wall time on one H100 for the default run (paligemma-3b-224, estimates: the steps were not
# timed together yet; compare.log in the output records each step's real duration):
#   unpack-app + gpu-env (Node, Vulkan loader, CUDA provider from /tmp/stage)   ~ 20 s
#   hf_baseline.py, eager + sdpa x batch 1 + 8, 3 repeats (model built 4 times) ~ 60-90 s
#   paligemma bench int4h graph (includes converting the random model: ~60-90 s) ~ 90-120 s
#   paligemma bench int4h search                                                 ~ 20-30 s
#   paligemma bench int4h host                                                   ~ 20-30 s
#   paligemma bench int4h graph-concat                                           ~ 20-30 s
#   paligemma bench int4 graph (converting again: fp32 activations)              ~ 90-120 s
#   paligemma bench int4 search                                                  ~ 20-30 s
#   paligemma bench int4 host                                                    ~ 20-30 s
#   paligemma bench int4 graph-concat                                            ~ 20-30 s
#   table                                                                        ~ 1 s
#   total                                                                        ~ 6.5-8.5 min
# (--dtypes fp16 adds ~1.5-2 min; the 2026-11-22 fp16 rows are in bench/results/2026-11-22-h100.md.)
# The most promising configuration runs first, so a deadline cuts the least useful.
# Conversions are cached in $PALIGEMMA_BENCH_CACHE (/tmp/bench-cache): a second run while the
# machine is still warm skips them. Larger presets take longer (896 px: about 4x the prefill; PaliGemma 2
# has 26 decoder layers): give them a run of their own.
set -uo pipefail
start=$(date +%s)
repo=$(pwd)
presets=paligemma-3b-224 dtypes=int4h,int4 loops=graph,search,host,graph-concat ops=fused eps=cuda batch=8 runs=3 new_tokens=32
hf_repeats=3 do_hf=1 do_ours=1 deadline=540 machine='' name='' app=/tmp/app/paligemma.mjs bench_args='' dry=0
hf_timeout=180 convert_timeout=300 bench_timeout=150
while [ $# -gt 0 ]; do
  case "$1" in
    --presets) presets=$2; shift ;;
    --dtypes) dtypes=$2; shift ;;
    --loops) loops=$2; shift ;;
    --ops) ops=$2; shift ;;
    --eps) eps=$2; shift ;;
    --batch) batch=$2; shift ;;
    --runs) runs=$2; shift ;;
    --new-tokens) new_tokens=$2; shift ;;
    --hf-repeats) hf_repeats=$2; shift ;;
    --no-hf) do_hf=0 ;;
    --no-ours) do_ours=0 ;;
    --deadline) deadline=$2; shift ;;
    --machine) machine=$2; shift ;;
    --name) name=$2; shift ;;
    --app) app=$2; shift ;;
    --bench-args) bench_args=$2; shift ;;
    --dry-run) dry=1 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "compare.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -f bench/compare-table.mjs ] || { echo "compare.sh: run it from the repository root" >&2; exit 2; }

out=${OUT:-$repo/bench-out}
[ "$dry" = 1 ] || mkdir -p "$out/logs"
log() {
  if [ "$dry" = 1 ]; then echo "$*"; else echo "[$(( $(date +%s) - start ))s] $*" | tee -a "$out/compare.log"; fi
}

if [ "$dry" = 0 ]; then
  if [ ! -f "$app" ] && [ -f .device/app/paligemma.mjs ] && [ "$app" = /tmp/app/paligemma.mjs ]; then
    bash bench/gpu/unpack-app.sh
  fi
  if [ -f .device/base/gpu-env.sh ]; then
    # gpu-env.sh copies the CUDA provider into every onnxruntime-node under the current folder.
    pushd "$(dirname "$app")" >/dev/null && source "$repo/.device/base/gpu-env.sh"; popd >/dev/null
  fi
  command -v node >/dev/null || { echo "compare.sh: no node on PATH (carry .device/base, see bench/README.md)" >&2; exit 1; }
  if [[ ",$eps," == *,cuda,* ]] && [ "$do_ours" = 1 ] && [ ! -f /tmp/ort-cuda/libonnxruntime_providers_cuda.so ] \
     && ! ls "$(dirname "$app")"/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so >/dev/null 2>&1; then
    log "WARNING: no CUDA provider staged: the CUDA configurations will fail (stage /tmp/stage first)"
  fi
fi
export PALIGEMMA_BENCH_CACHE=${PALIGEMMA_BENCH_CACHE:-/tmp/bench-cache}

date_utc=$(date -u +%F)
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
[ -n "$machine" ] || machine="one ${gpu:-unknown GPU} ($(nproc) cores)"
if [ -z "$name" ]; then
  case "$gpu" in *H100*) name=h100 ;; *H200*) name=h200 ;; *) name=gpu ;; esac
fi
hf_rows=$out/$date_utc-$name-hf-baseline.jsonl
our_rows=$out/$date_utc-$name-paligemma-bench.jsonl
table=$out/$date_utc-$name.md
log "compare.sh: presets $presets; ours: eps $eps, dtypes $dtypes, loops $loops, batch $batch, $runs runs, $new_tokens tokens; HF $([ "$do_hf" = 1 ] && echo "eager+sdpa, $hf_repeats repeats" || echo skipped); rows -> $out"

n=0
# step <label> <timeout s> <side> <preset> <config json> <shown command> -- <command...>
step() {
  local label=$1 limit=$2 side=$3 preset=$4 config=$5 shown=$6; shift 7
  local rows=$our_rows; [ "$side" = hf ] && rows=$hf_rows
  local left=$(( deadline - ($(date +%s) - start) - 15 ))
  n=$((n + 1))
  if [ "$dry" = 1 ]; then echo "$label (timeout ${limit} s): $shown"; return; fi
  if [ "$left" -lt 30 ]; then
    log "$label: skipped, past the ${deadline} s deadline"
    node bench/gpu/record-rows.mjs --side "$side" --preset "$preset" --config "$config" --command "$shown" \
      --error "skipped: the run's ${deadline} s deadline had passed" >> "$rows"
    return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  local base=$out/logs/$(printf %02d $n)-${label// /-}
  local t0=$(date +%s)
  timeout -k 10 "$limit" "$@" > "$base.out" 2> "$base.err"
  local rc=$?
  node bench/gpu/record-rows.mjs --stdout "$base.out" --stderr "$base.err" --rc "$rc" --timeout "$limit" \
    --side "$side" --preset "$preset" --config "$config" --command "$shown" >> "$rows"
  # Keep what comes back small: the conversion progress alone is hundreds of lines.
  tail -n 40 "$base.err" > "$base.err.tail" && mv "$base.err.tail" "$base.err"
  log "$label: exit $rc in $(( $(date +%s) - t0 )) s (timeout $limit s)"
}

batches=(1); [ "$batch" -gt 1 ] && batches=(1 "$batch")
IFS=, read -ra preset_list <<< "$presets"
IFS=, read -ra ep_list <<< "$eps"
IFS=, read -ra dtype_list <<< "$dtypes"
IFS=, read -ra loop_list <<< "$loops"
IFS=, read -ra ops_list <<< "$ops"
for p in "${preset_list[@]}"; do
  if [ "$do_hf" = 1 ]; then
    cmd=(python3 bench/hf_baseline.py --preset "$p" --new-tokens "$new_tokens" --batch "${batches[@]}" --attn eager sdpa --repeats "$hf_repeats")
    step "hf $p" "$hf_timeout" hf "$p" '{"runtime":"transformers"}' "${cmd[*]}" -- "${cmd[@]}"
  fi
  [ "$do_ours" = 1 ] || continue
  for ep in "${ep_list[@]}"; do
    for d in "${dtype_list[@]}"; do
     for o in "${ops_list[@]}"; do
      first=1
      for loop in "${loop_list[@]}"; do
        args=(bench --random "$p" --ep "$ep" --new-tokens "$new_tokens" --decode-loop "$loop" --runs "$runs")
        if [ "$d" = int4h ]; then args+=(--dtype int4 --activations fp16 --vision-dtype fp16); else args+=(--dtype "$d"); fi
        # --ops standard: the same layers in standard ONNX ops, the A/B for the fused contrib ops.
        [ "$o" = standard ] && args+=(--standard-ops)
        [ "$batch" -gt 1 ] && args+=(--batch "$batch")
        # shellcheck disable=SC2206  # --bench-args is split into words on purpose
        [ -n "$bench_args" ] && args+=($bench_args)
        args+=(--json)
        # The first configuration of a dtype may convert the random model first.
        limit=$bench_timeout; [ "$first" = 1 ] && limit=$convert_timeout; first=0
        config=$(printf '{"execution_provider":"%s","dtype":"%s","decode_loop":"%s","graph_ops":"%s","batch":%s}' "$ep" "$d" "$loop" "$o" "$batch")
        step "ours $p $ep $d $o $loop" "$limit" ours "$p" "$config" "paligemma ${args[*]}" -- node "$app" "${args[@]}"
      done
     done
    done
  done
done

[ "$dry" = 1 ] && exit 0
touch "$hf_rows" "$our_rows"
if node bench/compare-table.mjs --hf "$hf_rows" --ours "$our_rows" --out "$table" --machine "$machine" --date "$date_utc"; then
  log "table: $table"
  cat "$table"
else
  log "table: compare-table.mjs failed"
  exit 1
fi
