#!/usr/bin/env bash
# Cross-dataset transfer: evaluate the run xd_train.sh trained on SOURCE on every class of one target dataset:
#   bash scripts/ship/xd_test.sh DATASET SEED [KEY VALUE ...]
# LOADEP selects the checkpoint epoch (default: the last). Settings as in xd_train.sh (use the same ones).
# Output: $OUTPUT/xd/evaluation/$TRAINER/${CFG}_${SHOTS}shots/DATASET/seedSEED (CoCoOp's layout), then the
# cross-dataset table of every finished run, with its bar chart, in $OUTPUT/xd/summary.
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,/^set /s/^# \{0,1\}//p' "$0"; exit 0 ;; esac  # the comment above
DATASET=${1:?usage: xd_test.sh DATASET SEED [KEY VALUE ...]}
SEED=${2:?usage: xd_test.sh DATASET SEED [KEY VALUE ...]}
shift 2
source "$(dirname "$0")/common.sh"
pick_cfg "${TRAINER}" "${SOURCE}"  # the training run's config

MODEL_DIR=${OUTPUT}/xd/${SOURCE}/${TRAINER}/${CFG_USED}_${SHOTS}shots/seed${SEED}
DIR=${OUTPUT}/xd/evaluation/${TRAINER}/${CFG_USED}_${SHOTS}shots/${DATASET}/seed${SEED}
if finished "${DIR}"; then
    echo "The results exist at ${DIR} (skip this job)"
elif [ "${BACKEND}" = dassl ]; then  # CoOp's way: the target's dataset config, every class, the trained head
    run "${DATASET}" "${SEED}" "${DIR}" all --eval-only --model-dir "${MODEL_DIR}" ${LOADEP:+--load-epoch "${LOADEP}"} "$@"
else  # the core marks the protocol by the label-only list
    run "${DATASET}" "${SEED}" "${DIR}" all --eval-only --model-dir "${MODEL_DIR}" ${LOADEP:+--load-epoch "${LOADEP}"} \
        "$@" DATASET.LABEL_ONLY_FROM "${TARGET_LIST}"
fi
python3 -m trainers.ship.reports.summary "${OUTPUT}/xd" --out "${OUTPUT}/xd/summary"
