# Settings shared by the scripts in scripts/ship (sourced, not run). Each may be set in the environment.
DATA=${DATA:-data}               # the DATA root that holds CoOp's dataset folders (caltech-101/, eurosat/, ...)
DOWNLOAD=${DOWNLOAD:-1}          # 1: fetch a missing dataset that torchvision hosts (datasets/download.py)
TRAINER=${TRAINER:-SHIP_CoOp}    # SHIP_CoOp, SHIP_TipAdapter, or a baseline: CoOp, CoCoOp, ZeroshotCLIP, TipAdapter
CFG=${CFG:-vit_b16}              # a config under configs/trainers/SHIP
SHOTS=${SHOTS:-16}
OUTPUT=${OUTPUT:-output}
BACKEND=${BACKEND:-auto}         # dassl (train.py), core (python -m trainers.ship), auto: dassl when importable
BACKEND_SETTING=${BACKEND}
# cross-dataset transfer (xd_train.sh, xd_test.sh): the source and the targets
SOURCE=${SOURCE:-imagenet}
TARGETS=${TARGETS:-"caltech101 oxford_pets stanford_cars oxford_flowers food101 fgvc_aircraft sun397 dtd eurosat ucf101"}
TARGET_LIST="[$(printf "'%s'," ${TARGETS})]"  # a YAML list for DATASET.LABEL_ONLY_FROM

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PYTHONPATH="${REPO}${PYTHONPATH:+:${PYTHONPATH}}"
case "${TRAINER}" in  # the trainers train.py registers (SHIP_<method>); the baselines run on the core
    SHIP_*) ;;
    *) BACKEND=core ;;
esac
if [ "${BACKEND}" = auto ]; then
    if python3 -c "import dassl" 2>/dev/null; then BACKEND=dassl; else BACKEND=core; fi
fi

# finished DIR: true when DIR holds a test result (results.json of the core, or an accuracy line in Dassl's log)
finished() { [ -f "$1/results.json" ] || { [ -f "$1/log.txt" ] && grep -q '^\* accuracy' "$1/log.txt"; }; }

# run DATASET SEED OUTDIR SUBSAMPLE [extra args...]: one train.py or trainers.ship call
run() {
    local dataset=$1 seed=$2 dir=$3 subsample=$4
    shift 4
    if [ "${BACKEND}" = dassl ]; then
        python3 "${REPO}/train.py" --root "${DATA}" --seed "${seed}" --trainer "${TRAINER}" \
            --dataset-config-file "${REPO}/configs/datasets/${dataset}.yaml" \
            --config-file "${REPO}/configs/trainers/SHIP/${CFG}.yaml" --output-dir "${dir}" \
            "$@" DATASET.NUM_SHOTS "${SHOTS}" DATASET.SUBSAMPLE_CLASSES "${subsample}"
    else
        python3 -m trainers.ship --dataset "${dataset}" --root "${DATA}" --seed "${seed}" --trainer "${TRAINER}" \
            --config-file "${REPO}/configs/trainers/SHIP/${CFG}.yaml" --output-dir "${dir}" --shots "${SHOTS}" \
            "$@" DATASET.SUBSAMPLE_CLASSES "${subsample}"
    fi
}
