# Settings shared by the scripts in scripts/ship (sourced, not run). Each may be set in the environment.
DATA=${DATA:-data}               # the DATA root that holds CoOp's dataset folders (caltech-101/, eurosat/, ...)
DOWNLOAD=${DOWNLOAD:-1}          # 1: fetch a missing dataset that torchvision hosts (datasets/download.py)
TRAINER=${TRAINER:-SHIP_CoOp}    # SHIP_CoOp; without Dassl also CoOp or ZeroshotCLIP (on features)
CFG=${CFG:-vit_b16}              # a config under configs/trainers/SHIP
SHOTS=${SHOTS:-16}
OUTPUT=${OUTPUT:-output}
BACKEND=${BACKEND:-auto}         # dassl (train.py), core (python -m trainers.ship), auto: dassl when importable
BACKEND_SETTING=${BACKEND}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PYTHONPATH="${REPO}${PYTHONPATH:+:${PYTHONPATH}}"
if [ "${BACKEND}" = auto ]; then
    if python3 -c "import dassl" 2>/dev/null; then BACKEND=dassl; else BACKEND=core; fi
fi

# finished DIR: true when DIR's log holds a test result
finished() { [ -f "$1/log.txt" ] && grep -q '^\* accuracy' "$1/log.txt"; }

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
