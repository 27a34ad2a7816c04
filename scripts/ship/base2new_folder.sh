#!/usr/bin/env bash
# Base-to-new on a folder of class sub-folders: ZeroshotCLIP, CoOp, CoCoOp and SHIP_CoOp for one seed,
# then the base / new / H table of every finished run of that dataset.
#
#   bash scripts/ship/base2new_folder.sh DATA_DIR SEED [SPLIT_FILE] [KEY VALUE ...]
#
# Environment: CLIP_WEIGHTS (a local CLIP checkpoint instead of downloading CFG's backbone),
# CFG (a name under configs/trainers/SHIP; default vit_b16, and vit_b16_ctxv1 for CoOp), SHOTS (16), OUTPUT (output),
# DATASET_NAME (the output folder's dataset part; default: the folder's name). Finished runs (a complete results.json: trainers/ship/reports/finished.py) are skipped.
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,/^set /s/^# \{0,1\}//p' "$0"; exit 0 ;; esac  # the comment above
REPO=$(cd "$(dirname "$0")/../.." && pwd)
export PYTHONPATH="${REPO}${PYTHONPATH:+:${PYTHONPATH}}"  # paths stay relative to where you run it

DATA_DIR=${1:?usage: base2new_folder.sh DATA_DIR SEED [SPLIT_FILE] [KEY VALUE ...]}
SEED=${2:?usage: base2new_folder.sh DATA_DIR SEED [SPLIT_FILE] [KEY VALUE ...]}
SPLIT_FILE=${3:-}
shift $(( $# < 3 ? $# : 3 ))
NAME=${DATASET_NAME:-$(basename "$DATA_DIR")}
CFG_SETTING=${CFG:-}
SHOTS=${SHOTS:-16}
OUTPUT=${OUTPUT:-output}

for TRAINER in ZeroshotCLIP CoOp CoCoOp SHIP_CoOp; do
    CFG=${CFG_SETTING:-$([ "${TRAINER}" = CoOp ] && echo vit_b16_ctxv1 || echo vit_b16)}  # CoOp: the CoCoOp paper's recipe
    echo "config: configs/trainers/SHIP/${CFG}.yaml for ${TRAINER}"
    DIR=${OUTPUT}/base2new/${NAME}/shots_${SHOTS}/${TRAINER}/${CFG}/seed${SEED}
    if python3 -m trainers.ship.reports.finished "${DIR}" > /dev/null; then
        echo "skip ${DIR}: finished"
        continue
    fi
    python3 -m trainers.ship \
        --data-dir "${DATA_DIR}" ${SPLIT_FILE:+--split-file "${SPLIT_FILE}"} \
        ${CLIP_WEIGHTS:+--weights "${CLIP_WEIGHTS}"} \
        --trainer "${TRAINER}" --config-file "${REPO}/configs/trainers/SHIP/${CFG}.yaml" \
        --shots "${SHOTS}" --seed "${SEED}" --output-dir "${DIR}" "$@"
done
python3 -m trainers.ship.reports.summary "${OUTPUT}/base2new/${NAME}" --out "${OUTPUT}/base2new/${NAME}/summary"
