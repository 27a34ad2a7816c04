#!/usr/bin/env bash
# Cross-dataset transfer (CoCoOp's protocol), training on every class of the source dataset:
#   bash scripts/ship/xd_train.sh SEED [KEY VALUE ...]
# SOURCE (imagenet) is trained on with 16 shots of all its classes; TARGETS (the 10 other CoOp datasets) are where
# xd_test.sh evaluates the run. Their class names are the label-only classes of this run
# (DATASET.LABEL_ONLY_FROM): SHIP synthesises features for them; the other trainers ignore them.
# One run knows every target's names; for one run per target, give each its own TARGETS and OUTPUT (docs/protocols.md).
# SHIP trainers run through Dassl's train.py when it is installed (BACKEND). CFG defaults to the recipe for SOURCE (vit_b16_imagenet for ImageNet).
# Output: $OUTPUT/xd/$SOURCE/$TRAINER/${CFG}_${SHOTS}shots/seedSEED (a finished run is skipped).
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,/^set /s/^# \{0,1\}//p' "$0"; exit 0 ;; esac  # the comment above
SEED=${1:?usage: xd_train.sh SEED [KEY VALUE ...]}
shift
source "$(dirname "$0")/common.sh"
pick_cfg "${TRAINER}" "${SOURCE}"

DIR=${OUTPUT}/xd/${SOURCE}/${TRAINER}/${CFG_USED}_${SHOTS}shots/seed${SEED}
if finished "${DIR}"; then
    echo "The results exist at ${DIR} (skip this job)"
    exit 0
fi
if [ "${DOWNLOAD}" = 1 ]; then
    for D in ${SOURCE} ${TARGETS}; do
        python3 -m datasets.download "${D}" --root "${DATA}"
    done
fi
run "${SOURCE}" "${SEED}" "${DIR}" all "$@" DATASET.LABEL_ONLY_FROM "${TARGET_LIST}"
