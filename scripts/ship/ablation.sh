#!/usr/bin/env bash
# The paper's generator analyses, base-to-new with $TRAINER (SHIP_CoOp), one run per setting:
#   bash scripts/ship/ablation.sh DATASET SEED [KEY VALUE ...]
# - every generator variant (TRAINER.SHIP.GENERATOR): prompt (SHIP), then untrained (a control the paper lacks:
#   SHIP's generator with its initial weights, saved and fingerprinted like a trained one), feature, global_only,
#   local_only, cvae;
# - the KL weight over KL_WEIGHTS (default "0.1 10", beside the default 1 of gen-prompt);
# - the synthetic features per class over SYN_POOLS (default "16 64": a fixed pool of N per label-only class,
#   beside gen-prompt's fresh stream).
# Output: $OUTPUT/ablation/DATASET/shots_$SHOTS/$TRAINER/<setting>/seedSEED (finished runs are skipped), then one
# table (a row per setting: SHIP first, then the control, then the others) and its bar chart in
# $OUTPUT/ablation/summary. Always the core (python -m trainers.ship).
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,/^set /s/^# \{0,1\}//p' "$0"; exit 0 ;; esac  # the comment above
DATASET=${1:?usage: ablation.sh DATASET SEED [KEY VALUE ...]}
SEED=${2:?usage: ablation.sh DATASET SEED [KEY VALUE ...]}
shift 2
source "$(dirname "$0")/common.sh"
BACKEND=core
KL_WEIGHTS=${KL_WEIGHTS:-"0.1 10"}
SYN_POOLS=${SYN_POOLS:-"16 64"}
EXTRA=("$@")  # trailing KEY VALUE overrides, after each setting's own

if [ "${DOWNLOAD}" = 1 ]; then
    python3 -m datasets.download "${DATASET}" --root "${DATA}"
fi
# one SETTING KEY VALUE...: a base-to-new run with the setting's keys, then the trailing overrides
one() {
    local setting=$1
    shift
    local dir=${OUTPUT}/ablation/${DATASET}/shots_${SHOTS}/${TRAINER}/${setting}/seed${SEED}
    if finished "${dir}"; then
        echo "The results exist at ${dir} (skip this job)"
    else
        run "${DATASET}" "${SEED}" "${dir}" all "$@"
    fi
}
for variant in prompt untrained feature global_only local_only cvae; do
    one "gen-${variant}" TRAINER.SHIP.GENERATOR "${variant}" "${EXTRA[@]}"
done
for kl in ${KL_WEIGHTS}; do
    one "kl-${kl}" TRAINER.SHIP.KL_WEIGHT "${kl}" "${EXTRA[@]}"
done
for pool in ${SYN_POOLS}; do
    one "syn-${pool}" TRAINER.SHIP.SYN_POOL_PER_CLASS "${pool}" "${EXTRA[@]}"
done
python3 -m trainers.ship.reports.summary "${OUTPUT}/ablation" --out "${OUTPUT}/ablation/summary" --first gen-prompt gen-untrained
