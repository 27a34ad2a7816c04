#!/usr/bin/env bash
# Base-to-new (CoCoOp's protocol), training on the base classes:
#   bash scripts/ship/base2new_train.sh DATASET SEED [KEY VALUE ...]
# DATASET names a file in configs/datasets (caltech101, eurosat, imagenet, ...); settings are in common.sh.
# Output: $OUTPUT/base2new/train_base/DATASET/shots_$SHOTS/$TRAINER/$CFG/seedSEED (a finished run is skipped).
set -euo pipefail
DATASET=${1:?usage: base2new_train.sh DATASET SEED [KEY VALUE ...]}
SEED=${2:?usage: base2new_train.sh DATASET SEED [KEY VALUE ...]}
shift 2
source "$(dirname "$0")/common.sh"

DIR=${OUTPUT}/base2new/train_base/${DATASET}/shots_${SHOTS}/${TRAINER}/${CFG}/seed${SEED}
if finished "${DIR}"; then
    echo "The results exist at ${DIR} (skip this job)"
    exit 0
fi
if [ "${DOWNLOAD}" = 1 ]; then
    python3 -m datasets.download "${DATASET}" --root "${DATA}"
fi
run "${DATASET}" "${SEED}" "${DIR}" base "$@"
