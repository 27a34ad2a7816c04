# Settings shared by the scripts in scripts/ship (sourced, not run). Each may be set in the environment.
DATA=${DATA:-data}               # the DATA root that holds CoOp's dataset folders (caltech-101/, eurosat/, ...)
DOWNLOAD=${DOWNLOAD:-1}          # 1: fetch a missing dataset that torchvision hosts (datasets/download.py)
TRAINER=${TRAINER:-SHIP_CoOp}    # SHIP_CoOp, SHIP_TipAdapter, or a baseline: CoOp, CoCoOp, ZeroshotCLIP, TipAdapter
CFG_SETTING=${CFG:-}             # a config under configs/trainers/SHIP; unset: each run's published recipe (pick_cfg)
CFG=${CFG:-vit_b16}
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

# pick_cfg TRAINER DATASET: CFG_USED, the config of a run: CFG when set, else the published recipe: CoOp as the
# CoCoOp paper ran it (vit_b16_ctxv1; vit_b16_ep50_ctxv1 on ImageNet), SHIP's ImageNet recipe on ImageNet
# (vit_b16_imagenet; Tip-Adapter's keys keep their defaults there, which are tip_adapter_vit_b16's), Tip-Adapter's
# recipe for the Tip-Adapter trainers elsewhere (tip_adapter_vit_b16; Tip-Adapter-F: CFG=tip_adapter_f_vit_b16),
# SHIP's recipe elsewhere (vit_b16). One line names it.
pick_cfg() {
    local trainer=$1 dataset=$2 why="CFG"
    if [ -n "${CFG_SETTING}" ]; then
        CFG_USED=${CFG_SETTING}
    elif [ "${trainer}" = CoOp ]; then
        if [ "${dataset}" = imagenet ]; then CFG_USED=vit_b16_ep50_ctxv1; else CFG_USED=vit_b16_ctxv1; fi
        why="CoOp's recipe in the CoCoOp paper"
    elif [ "${dataset}" = imagenet ]; then
        CFG_USED=vit_b16_imagenet why="the ImageNet recipe"
    elif [ "${trainer}" = TipAdapter ] || [ "${trainer}" = SHIP_TipAdapter ]; then
        CFG_USED=tip_adapter_vit_b16 why="Tip-Adapter's recipe"
    else
        CFG_USED=vit_b16 why="the default recipe"
    fi
    echo "config: configs/trainers/SHIP/${CFG_USED}.yaml (${why}) for ${trainer} on ${dataset}"
}

# finished DIR: true when DIR holds a finished run, as trainers/ship/reports/finished.py defines it (one definition
# for every script and the summary): a complete results.json, which both routes write last, after the final test
finished() { python3 -m trainers.ship.reports.finished "$1" > /dev/null; }

# run DATASET SEED OUTDIR SUBSAMPLE [extra args...]: one train.py or trainers.ship call, with CFG_USED's config
run() {
    local dataset=$1 seed=$2 dir=$3 subsample=$4
    shift 4
    [ -n "${CFG_USED:-}" ] || pick_cfg "${TRAINER}" "${dataset}"  # a script that did not pick one (ablation.sh)
    if [ "${BACKEND}" = dassl ]; then
        python3 "${REPO}/train.py" --root "${DATA}" --seed "${seed}" --trainer "${TRAINER}" \
            --dataset-config-file "${REPO}/configs/datasets/${dataset}.yaml" \
            --config-file "${REPO}/configs/trainers/SHIP/${CFG_USED:-${CFG}}.yaml" --output-dir "${dir}" \
            "$@" DATASET.NUM_SHOTS "${SHOTS}" DATASET.SUBSAMPLE_CLASSES "${subsample}"
    else
        python3 -m trainers.ship --dataset "${dataset}" --root "${DATA}" --seed "${seed}" --trainer "${TRAINER}" \
            --config-file "${REPO}/configs/trainers/SHIP/${CFG_USED:-${CFG}}.yaml" --output-dir "${dir}" --shots "${SHOTS}" \
            "$@" DATASET.SUBSAMPLE_CLASSES "${subsample}"
    fi
}
