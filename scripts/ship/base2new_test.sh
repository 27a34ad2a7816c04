#!/usr/bin/env bash
# Base-to-new (CoCoOp's protocol), evaluating the trained run on the new classes:
#   bash scripts/ship/base2new_test.sh DATASET SEED [KEY VALUE ...]
# LOADEP selects the checkpoint epoch (default: the last). Output: $OUTPUT/base2new/test_new/... (CoOp's layout).
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,/^set /s/^# \{0,1\}//p' "$0"; exit 0 ;; esac  # the comment above
DATASET=${1:?usage: base2new_test.sh DATASET SEED [KEY VALUE ...]}
SEED=${2:?usage: base2new_test.sh DATASET SEED [KEY VALUE ...]}
shift 2
source "$(dirname "$0")/common.sh"
pick_cfg "${TRAINER}" "${DATASET}"

COMMON=${DATASET}/shots_${SHOTS}/${TRAINER}/${CFG_USED}/seed${SEED}
MODEL_DIR=${OUTPUT}/base2new/train_base/${COMMON}
DIR=${OUTPUT}/base2new/test_new/${COMMON}
if finished "${DIR}"; then
    echo "The results exist at ${DIR} (skip this job)"
    exit 0
fi
run "${DATASET}" "${SEED}" "${DIR}" new --eval-only --model-dir "${MODEL_DIR}" ${LOADEP:+--load-epoch "${LOADEP}"} "$@"
python3 -m trainers.ship.reports.summary "${OUTPUT}/base2new" --out "${OUTPUT}/base2new/summary"
