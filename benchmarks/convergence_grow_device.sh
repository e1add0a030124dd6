#!/usr/bin/env bash
# The grow targets of the convergence table (8L/512/8H and 12L/768/12H, the ratios no single peer
# covers) on both corpora, in one call on one GPU: the four runs share the device in parallel
# (each is small for it), then each corpus's two targets are joined with --merge. The budget is the
# shrink tables' (2,000 steps of batch 16 at 64 tokens, random init's lr swept over 3e-4, 1e-3, 3e-3,
# both BoT schemes), so the grow and shrink reports of a corpus can be merged into one table. That it
# fits one 10-minute device call is an estimate, not a measurement: each process writes its report
# when its target is done, and its log shows how far it got.
#
#   bash benchmarks/convergence_grow_device.sh OUT [more convergence.py arguments]
#
# OUT gets convergence.{json,md,png} (IMDB) and convergence_rotten_tomatoes.* (Rotten Tomatoes), and a
# log per run. Arguments after OUT are passed to every run (later ones win), e.g. a shorter budget.
# DEVICE=cpu runs the same on a CPU (only sensible with a tiny budget, as the test does).
set -euo pipefail
out=${1:?usage: bash benchmarks/convergence_grow_device.sh OUT [more convergence.py arguments]}
shift
device=${DEVICE:-cuda}
python=${PYTHON:-python}
if compgen -G "$out/convergence*.json" > /dev/null; then
  echo "$out already holds convergence reports; give an empty folder (the merge would overwrite them)" >&2
  exit 2
fi
mkdir -p "$out"

runs=()
pids=()
for corpus in imdb rotten_tomatoes; do
  for target in "grow 8L/512/8H" "grow 12L/768/12H"; do
    name="$corpus-${target// /-}"
    run="$out/${name//\//_}"
    "$python" benchmarks/convergence.py --device "$device" --corpus "$corpus" --targets "$target" \
      --methods random front bot hypercloning+stack hypercloning+stack+weight_selection --front-keeps 1.0 \
      --bot-schemes split linear --steps 2000 --max-length 64 --lr-sweep 3e-4 1e-3 3e-3 --threads 1 --no-plot \
      --out "$run" "$@" > "$run.log" 2>&1 &
    runs+=("$run")
    pids+=($!)
  done
done

failed=0
for index in "${!pids[@]}"; do
  if ! wait "${pids[$index]}"; then
    echo "failed: ${runs[$index]} (its log: ${runs[$index]}.log)" >&2
    tail -n 20 "${runs[$index]}.log" >&2
    failed=1
  fi
done
[ "$failed" = 0 ] || exit 1

for corpus in imdb rotten_tomatoes; do
  # one report per run folder, named by corpus and precision (convergence[_rotten_tomatoes][_bf16].json)
  "$python" benchmarks/convergence.py --merge "$out/$corpus-grow-8L_512_8H/"convergence*.json \
    "$out/$corpus-grow-12L_768_12H/"convergence*.json --out "$out"
done
