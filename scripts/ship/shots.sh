#!/usr/bin/env bash
# Few-shot curves: base-to-new over several numbers of shots, for chosen trainers and seeds:
#   bash scripts/ship/shots.sh DATASET [KEY VALUE ...]
# SHOTS_LIST (default "1 2 4 8 16"), TRAINERS (default "SHIP_CoOp CoOp") and SEEDS (default "1 2 3") choose the
# grid; other settings as in common.sh. Each run trains on the base classes and reports base, new and H.
# Output: $OUTPUT/shots/DATASET/shots_K/TRAINER/$CFG/seedS (finished runs are skipped), then the table (a row per
# shots) and curves_base2new.png (accuracy against shots, ± std over seeds) in $OUTPUT/shots/summary.
# Always the core (python -m trainers.ship).
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,/^set /s/^# \{0,1\}//p' "$0"; exit 0 ;; esac  # the comment above
DATASET=${1:?usage: shots.sh DATASET [KEY VALUE ...]}
shift
source "$(dirname "$0")/common.sh"
BACKEND=core
SHOTS_LIST=${SHOTS_LIST:-"1 2 4 8 16"}
TRAINERS=${TRAINERS:-"SHIP_CoOp CoOp"}
SEEDS=${SEEDS:-"1 2 3"}

if [ "${DOWNLOAD}" = 1 ]; then
    python3 -m datasets.download "${DATASET}" --root "${DATA}"
fi
for TRAINER in ${TRAINERS}; do
    for SHOTS in ${SHOTS_LIST}; do
        for SEED in ${SEEDS}; do
            pick_cfg "${TRAINER}" "${DATASET}"
            DIR=${OUTPUT}/shots/${DATASET}/shots_${SHOTS}/${TRAINER}/${CFG_USED}/seed${SEED}
            if finished "${DIR}"; then
                echo "The results exist at ${DIR} (skip this job)"
            else
                run "${DATASET}" "${SEED}" "${DIR}" all "$@"
            fi
        done
    done
done
python3 -m trainers.ship.reports.summary "${OUTPUT}/shots" --out "${OUTPUT}/shots/summary"
