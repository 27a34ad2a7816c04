#!/usr/bin/env bash
# Base-to-new (CoCoOp's protocol), training on the base classes:
#   bash scripts/ship/base2new_train.sh DATASET SEED [KEY VALUE ...]
# DATASET names a file in configs/datasets (caltech101, eurosat, imagenet, ...); settings are in common.sh
# (CFG unset: the published recipe of TRAINER on DATASET, e.g. vit_b16_imagenet on ImageNet).
# Output: $OUTPUT/base2new/train_base/DATASET/shots_$SHOTS/$TRAINER/$CFG/seedSEED (a finished run is skipped).
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,/^set /s/^# \{0,1\}//p' "$0"; exit 0 ;; esac  # the comment above
DATASET=${1:?usage: base2new_train.sh DATASET SEED [KEY VALUE ...]}
SEED=${2:?usage: base2new_train.sh DATASET SEED [KEY VALUE ...]}
shift 2
source "$(dirname "$0")/common.sh"
pick_cfg "${TRAINER}" "${DATASET}"

DIR=${OUTPUT}/base2new/train_base/${DATASET}/shots_${SHOTS}/${TRAINER}/${CFG_USED}/seed${SEED}
if finished "${DIR}"; then
    echo "The results exist at ${DIR} (skip this job)"
    exit 0
fi
if [ "${DOWNLOAD}" = 1 ]; then
    python3 -m datasets.download "${DATASET}" --root "${DATA}"
fi
run "${DATASET}" "${SEED}" "${DIR}" base "$@"
