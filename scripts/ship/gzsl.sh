#!/usr/bin/env bash
# Generalized zero-shot learning: train on the seen (base) classes, then score every test image against
# seen + unseen classes in one label space; report seen / unseen / H (mean per-class accuracies).
#   bash scripts/ship/gzsl.sh DATASET SEED [KEY VALUE ...]
# DATASET: cub (the paper's setting: CUB-200-2011, Xian et al.'s 150 / 50 split) or any base-to-new dataset
# (its base / new halves). Settings as in common.sh (SHIP trainers run through Dassl's train.py when it is installed).
# Output: $OUTPUT/gzsl/DATASET/shots_$SHOTS/$TRAINER/$CFG/seedSEED (a finished run is skipped), then the table.
set -euo pipefail
DATASET=${1:?usage: gzsl.sh DATASET SEED [KEY VALUE ...]}
SEED=${2:?usage: gzsl.sh DATASET SEED [KEY VALUE ...]}
shift 2
source "$(dirname "$0")/common.sh"

DIR=${OUTPUT}/gzsl/${DATASET}/shots_${SHOTS}/${TRAINER}/${CFG}/seed${SEED}
if finished "${DIR}"; then
    echo "The results exist at ${DIR} (skip this job)"
else
    if [ "${DOWNLOAD}" = 1 ]; then
        python3 -m datasets.download "${DATASET}" --root "${DATA}"
    fi
    run "${DATASET}" "${SEED}" "${DIR}" gzsl "$@"
fi
python3 -m trainers.ship.summary "${OUTPUT}/gzsl" --out "${OUTPUT}/gzsl/summary"
