#!/usr/bin/env bash
# Every row of SHIP's experiments from one command, then the tables with the published figures beside them:
#   bash scripts/ship/paper.sh [--dry-run | --slurm | --task N | --tables | --help] [KEY VALUE ...]
# - base-to-new: DATASETS (the 11) x SEEDS (1 2 3) x TRAINERS (every method of the paper's tables and its SHIP twin);
# - cross-dataset: SOURCE (imagenet) -> TARGETS (the 10 others), for XD_TRAINERS (default: TRAINERS);
# - generalized zero-shot: GZSL_DATASET (cub) for GZSL_TRAINERS (default: TRAINERS).
# SELECTION=paper reproduces the official code's choice on test data (TEST.SELECTION paper: every result says
# "selection: test (as the official code)"); the default, honest, chooses nothing on test data. Each selection
# has its own tree: $OUTPUT/paper/$SELECTION/{base2new,xd,gzsl}, tables and bar charts in .../summary.
# A run is skipped only when it is finished (its results.json is complete: trainers/ship/reports/finished.py);
# anything else runs (again).
#   --dry-run  print every run's command line (a finished run's is prefixed "# finished: "), run nothing
#   --slurm    write an sbatch array script (one task per run; an xd task trains then evaluates every target)
#              to $OUTPUT/paper/$SELECTION/slurm_paper.sh and print its path; afterwards: paper.sh --tables.
#              Tasks download nothing (many at once would race): put the datasets in DATA first
#              (python -m datasets.download NAME --root DATA, as a local paper.sh run does with DOWNLOAD=1)
#   --task N   run task N of the grid only (what the Slurm array calls)
#   --tables   only write the tables of the finished runs
# Trailing KEY VALUE pairs reach every run. Settings (environment) as in common.sh; always the core
# (python -m trainers.ship), since TEST.SELECTION paper is the core's.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
MODE=all
TASK=
case "${1:-}" in
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
               echo "Recipes per trainer (config files under configs/trainers/SHIP; ImageNet's after the arrow):"
               echo "  CoOp: vit_b16_ctxv1 -> vit_b16_ep50_ctxv1; TipAdapter(-F), SHIP_TipAdapter(-F): tip_adapter(_f)_vit_b16"
               echo "  -> the same + vit_b16_imagenet; every other trainer: vit_b16 -> vit_b16_imagenet"
               exit 0 ;;
    --dry-run) MODE=dry; shift ;;
    --slurm) MODE=slurm; shift ;;
    --tables) MODE=tables; shift ;;
    --task) MODE=task; TASK=${2:?--task needs a task number}; shift 2 ;;
esac
source "${HERE}/common.sh"
BACKEND=core
SELECTION=${SELECTION:-honest}
case "${SELECTION}" in
    honest|paper) ;;
    *) echo "error: SELECTION must be honest or paper; got '${SELECTION}'" >&2; exit 2 ;;
esac
DATASETS=${DATASETS:-"imagenet caltech101 oxford_pets stanford_cars oxford_flowers food101 fgvc_aircraft sun397 dtd eurosat ucf101"}
SEEDS=${SEEDS:-"1 2 3"}
TRAINERS=${TRAINERS:-"ZeroshotCLIP CoOp SHIP_CoOp CLIPAdapter SHIP_CLIPAdapter TipAdapter SHIP_TipAdapter TipAdapter-F SHIP_TipAdapter-F CoCoOp SHIP_CoCoOp KgCoOp SHIP_KgCoOp ProGrad SHIP_ProGrad"}
XD_TRAINERS=${XD_TRAINERS:-${TRAINERS}}
GZSL_TRAINERS=${GZSL_TRAINERS:-${TRAINERS}}
GZSL_DATASET=${GZSL_DATASET:-cub}
TREE=${OUTPUT}/paper/${SELECTION}
EXTRA=("$@")

# recipe ROW DATASET: TRAINER_NAME, LABEL (the config named in the run folder) and CFG_ARGS (--config-file ...)
recipe() {
    local row=$1 dataset=$2 imagenet
    TRAINER_NAME=${row%-F}
    case "${row}" in
        CoOp) LABEL=vit_b16_ctxv1; imagenet=vit_b16_ep50_ctxv1 ;;
        TipAdapter|SHIP_TipAdapter) LABEL=tip_adapter_vit_b16; imagenet="tip_adapter_vit_b16 vit_b16_imagenet" ;;
        TipAdapter-F|SHIP_TipAdapter-F) LABEL=tip_adapter_f_vit_b16; imagenet="tip_adapter_f_vit_b16 vit_b16_imagenet" ;;
        *) LABEL=vit_b16; imagenet=vit_b16_imagenet ;;
    esac
    local files=${LABEL}
    [ "${dataset}" = imagenet ] && files=${imagenet}
    CFG_ARGS=""
    local f path
    for f in ${files}; do
        printf -v path %q "${REPO}/configs/trainers/SHIP/${f}.yaml"
        CFG_ARGS+=" --config-file ${path}"
    done
}

# command_line DATASET SEED DIR SUBSAMPLE [args...]: one core run's command line, in CMD
command_line() {
    local dataset=$1 seed=$2 dir=$3 subsample=$4 extra="" root out
    shift 4
    [ "$#" -gt 0 ] && printf -v extra ' %q' "$@"
    printf -v root %q "${DATA}"
    printf -v out %q "${dir}"
    CMD="python3 -m trainers.ship --dataset ${dataset} --root ${root} --seed ${seed} --trainer ${TRAINER_NAME}${CFG_ARGS} --output-dir ${out} --shots ${SHOTS}${extra} DATASET.SUBSAMPLE_CLASSES ${subsample} TEST.SELECTION ${SELECTION}"
}

# The grid: task i is UNITS[i], lines "DIR<TAB>COMMAND" run in order (an xd task: training, then each target)
UNITS=()
TAB=$'\t'
# add_runs PROTOCOL DATASET SUBSAMPLE "TRAINERS": one task per trainer and seed
add_runs() {
    local protocol=$1 dataset=$2 subsample=$3 trainers=$4 T S dir
    for T in ${trainers}; do
        for S in ${SEEDS}; do
            recipe "${T}" "${dataset}"
            dir=${TREE}/${protocol}/${dataset}/shots_${SHOTS}/${TRAINER_NAME}/${LABEL}/seed${S}
            command_line "${dataset}" "${S}" "${dir}" "${subsample}" "${EXTRA[@]}"
            UNITS+=("${dir}${TAB}${CMD}")
        done
    done
}
for D in ${DATASETS}; do
    add_runs base2new "${D}" all "${TRAINERS}"
done
for T in ${XD_TRAINERS}; do
    for S in ${SEEDS}; do
        recipe "${T}" "${SOURCE}"
        model=${TREE}/xd/${SOURCE}/${TRAINER_NAME}/${LABEL}_${SHOTS}shots/seed${S}
        command_line "${SOURCE}" "${S}" "${model}" all "${EXTRA[@]}" DATASET.LABEL_ONLY_FROM "${TARGET_LIST}"
        unit="${model}${TAB}${CMD}"
        for D in ${TARGETS}; do  # evaluated with the trained run's recipe (its settings are checked)
            dir=${TREE}/xd/evaluation/${TRAINER_NAME}/${LABEL}_${SHOTS}shots/${D}/seed${S}
            command_line "${D}" "${S}" "${dir}" all --eval-only --model-dir "${model}" "${EXTRA[@]}" DATASET.LABEL_ONLY_FROM "${TARGET_LIST}"
            unit+=$'\n'"${dir}${TAB}${CMD}"
        done
        UNITS+=("${unit}")
    done
done
add_runs gzsl "${GZSL_DATASET}" gzsl "${GZSL_TRAINERS}"

# run_unit I: every run of task I that is not finished yet (finished: common.sh)
run_unit() {
    while IFS=$'\t' read -r dir cmd; do
        if finished "${dir}"; then
            echo "The results exist at ${dir} (skip this job)"
        else
            eval "${cmd}"
        fi
    done <<< "${UNITS[$1]}"
}

tables() {  # every protocol's table, with the published figures beside the rows they are known for
    python3 -m trainers.ship.reports.summary "${TREE}" --out "${TREE}/summary"
}

missing_configs() {  # a recipe this grid uses that the checkout lacks: one error line, nothing run
    local f
    for f in $(printf '%s\n' "${UNITS[@]}" | grep -o 'configs/trainers/SHIP/[A-Za-z0-9_]*\.yaml' | sort -u); do
        [ -f "${REPO}/${f}" ] || { echo "error: ${f} not found (a recipe of this grid: see paper.sh --help)" >&2; exit 2; }
    done
}

case "${MODE}" in
    dry)
        for unit in "${UNITS[@]}"; do
            while IFS=$'\t' read -r dir cmd; do
                if finished "${dir}"; then echo "# finished: ${cmd}"; else echo "${cmd}"; fi
            done <<< "${unit}"
        done ;;
    slurm)
        missing_configs
        mkdir -p "${TREE}"
        JOB=${TREE}/slurm_paper.sh
        {
            echo "#!/usr/bin/env bash"
            echo "#SBATCH --job-name=ship_paper_${SELECTION}"
            echo "#SBATCH --array=0-$(( ${#UNITS[@]} - 1 ))"
            echo "#SBATCH --gres=gpu:1"
            echo "#SBATCH --output=${TREE}/slurm-%A_%a.out"
            echo "export DATA=$(printf %q "${DATA}") SHOTS='${SHOTS}' OUTPUT=$(printf %q "${OUTPUT}") SELECTION='${SELECTION}'" \
                 "DATASETS='${DATASETS}' SEEDS='${SEEDS}' TRAINERS='${TRAINERS}' XD_TRAINERS='${XD_TRAINERS}'" \
                 "GZSL_TRAINERS='${GZSL_TRAINERS}' GZSL_DATASET='${GZSL_DATASET}' SOURCE='${SOURCE}' TARGETS='${TARGETS}'"
            echo "bash $(printf %q "${HERE}/paper.sh") --task \"\${SLURM_ARRAY_TASK_ID}\" $(printf '%q ' "${EXTRA[@]}")"
        } > "${JOB}"
        echo "${JOB}" ;;
    task)
        missing_configs
        [ "${TASK}" -ge 0 ] && [ "${TASK}" -lt "${#UNITS[@]}" ] || { echo "error: --task ${TASK} is not a task of this grid (0..$(( ${#UNITS[@]} - 1 )))" >&2; exit 2; }
        run_unit "${TASK}" ;;
    tables)
        tables ;;
    all)
        missing_configs
        if [ "${DOWNLOAD}" = 1 ]; then
            for D in $(echo ${DATASETS} ${SOURCE} ${TARGETS} ${GZSL_DATASET} | tr ' ' '\n' | sort -u); do
                python3 -m datasets.download "${D}" --root "${DATA}"
            done
        fi
        for i in "${!UNITS[@]}"; do
            run_unit "${i}"
        done
        tables ;;
esac
