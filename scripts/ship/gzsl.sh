#!/usr/bin/env bash
# Generalized zero-shot learning: train on the seen (base) classes, then score every test image against
# seen + unseen classes in one label space; report seen / unseen / H (mean per-class accuracies).
#   bash scripts/ship/gzsl.sh DATASET SEED [KEY VALUE ...]
# DATASET: cub (the paper's setting: CUB-200-2011, Xian et al.'s 150 / 50 split) or any base-to-new dataset
# (its base / new halves). Settings as in common.sh (SHIP trainers run through Dassl's train.py when it is installed).
# Output: $OUTPUT/gzsl/DATASET/shots_$SHOTS/$TRAINER/$CFG/seedSEED (a finished run is skipped), then the table.
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,/^set /s/^# \{0,1\}//p' "$0"; exit 0 ;; esac  # the comment above
DATASET=${1:?usage: gzsl.sh DATASET SEED [KEY VALUE ...]}
SEED=${2:?usage: gzsl.sh DATASET SEED [KEY VALUE ...]}
shift 2
source "$(dirname "$0")/common.sh"
pick_cfg "${TRAINER}" "${DATASET}"

DIR=${OUTPUT}/gzsl/${DATASET}/shots_${SHOTS}/${TRAINER}/${CFG_USED}/seed${SEED}
if finished "${DIR}"; then
    echo "The results exist at ${DIR} (skip this job)"
else
    if [ "${DOWNLOAD}" = 1 ]; then
        python3 -m datasets.download "${DATASET}" --root "${DATA}"
    fi
    run "${DATASET}" "${SEED}" "${DIR}" gzsl "$@"
fi
python3 -m trainers.ship.reports.summary "${OUTPUT}/gzsl" --out "${OUTPUT}/gzsl/summary"
