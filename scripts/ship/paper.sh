#!/usr/bin/env bash
# Every row of SHIP's experiments from one command, then the tables with the published figures beside them:
#   bash scripts/ship/paper.sh [--dry-run | --slurm [--dry-run] | --jobs N | --task N | --tables | --help] [KEY VALUE ...]
# - base-to-new: DATASETS (the 11) x SEEDS (1 2 3) x TRAINERS (every method of the paper's tables and its SHIP twin);
# - cross-dataset: SOURCE (imagenet) -> TARGETS (the 10 others), for XD_TRAINERS (default: TRAINERS);
# - generalized zero-shot: GZSL_DATASET (cub) for GZSL_TRAINERS (default: TRAINERS).
# SELECTION=paper reproduces the official code's choice on test data (TEST.SELECTION paper: every result says
# "selection: test (as the official code)"); the default, honest, chooses nothing on test data. Each selection
# has its own tree: $OUTPUT/paper/$SELECTION/{base2new,xd,gzsl}, tables and bar charts in .../summary.
# A run is skipped only when it is finished (its results.json is complete: trainers/ship/reports/finished.py);
# anything else runs (again). Runs that need one feature set at once encode it once (a lock per cache key).
#   --dry-run  print every run's command line (a finished run's is prefixed "# finished: "), run nothing
#   --jobs N   run N tasks of the grid at once (task i on worker i mod N); with GPUs (CUDA_VISIBLE_DEVICES, else
#              nvidia-smi), worker w sees one GPU, the w-th mod their number. Each worker logs to
#              $OUTPUT/paper/$SELECTION/jobs/worker<w>.log
#   --slurm    write two sbatch arrays to $OUTPUT/paper/$SELECTION: slurm_features.sh, one task per distinct
#              feature set of the grid (each dataset's test split, each seed's training crops at each crop
#              scale, the search images; planned without a CLIP: python -m trainers.ship.run.feature_plan),
#              then slurm_paper.sh, one task per run (an xd task trains then evaluates every target), to start
#              after the first with --dependency=afterok; print the path of submit_slurm.sh, which submits
#              both. The runs then read every feature set from CACHE_DIR. Afterwards: paper.sh --tables.
#              Tasks download nothing (many at once would race): put the datasets in DATA first
#              (python -m datasets.download NAME --root DATA, as a local paper.sh run does with DOWNLOAD=1).
#              --slurm --dry-run: print both phases' command lines, write nothing
#   --task N   run task N of the grid only (what the Slurm array calls); --feature-task N: feature task N
#   --tables   only write the tables of the finished runs
# Trailing arguments (KEY VALUE pairs, flags of python -m trainers.ship) reach every run. Settings (environment) as in common.sh; always the core
# (python -m trainers.ship), since TEST.SELECTION paper is the core's.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
MODE=all
TASK=
JOBS=1
PLAN_ONLY=0
while [ "$#" -gt 0 ]; do
    case "$1" in
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
                   echo "Recipes per trainer (config files under configs/trainers/SHIP; ImageNet's after the arrow):"
                   echo "  CoOp: vit_b16_ctxv1 -> vit_b16_ep50_ctxv1; TipAdapter(-F), SHIP_TipAdapter(-F): tip_adapter(_f)_vit_b16"
                   echo "  -> the same + vit_b16_imagenet; every other trainer: vit_b16 -> vit_b16_imagenet"
                   exit 0 ;;
        --dry-run) if [ "${MODE}" = slurm ]; then PLAN_ONLY=1; else MODE=dry; fi; shift ;;
        --slurm) [ "${MODE}" = dry ] && PLAN_ONLY=1; MODE=slurm; shift ;;
        --tables) MODE=tables; shift ;;
        --task) MODE=task; TASK=${2:?--task needs a task number}; shift 2 ;;
        --feature-task) MODE=feature_task; TASK=${2:?--feature-task needs a task number}; shift 2 ;;
        --jobs) JOBS=${2:?--jobs needs a number of tasks at once}; shift 2 ;;
        *) break ;;  # the runs' arguments (KEY VALUE pairs, flags of python -m trainers.ship)
    esac
done
[[ "${JOBS}" =~ ^[1-9][0-9]*$ ]] || { echo "error: --jobs ${JOBS}: expected a positive number of tasks at once" >&2; exit 2; }
[ "${JOBS}" = 1 ] || [ "${MODE}" = all ] || { echo "error: --jobs runs the whole grid here; it goes with no other option" >&2; exit 2; }
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

# feature_plan: the grid's distinct feature sets, "KEY<TAB>WHAT<TAB>COMMAND" per line (python -m trainers.ship.run.feature_plan)
feature_plan() {
    local unit
    for unit in "${UNITS[@]}"; do printf '%s\n' "${unit}"; done | cut -f2 | python3 -m trainers.ship.run.feature_plan
}

# gpus: the GPU ids a worker may be given (CUDA_VISIBLE_DEVICES, else nvidia-smi's list), in GPUS
gpus() {
    GPUS=()
    if [ -n "${CUDA_VISIBLE_DEVICES+set}" ]; then
        IFS=, read -r -a GPUS <<< "${CUDA_VISIBLE_DEVICES}"
    elif command -v nvidia-smi > /dev/null 2>&1; then
        local n
        n=$(nvidia-smi -L 2> /dev/null | grep -c '^GPU ' || true)
        [ "${n}" -gt 0 ] && GPUS=($(seq 0 $(( n - 1 ))))
    fi
    return 0
}

# run_in_parallel: every task on JOBS workers (task i on worker i mod JOBS), each on its own GPU where there are GPUs
run_in_parallel() {
    local w i pids=() failed=() where
    gpus
    mkdir -p "${TREE}/jobs"
    for (( w = 0; w < JOBS; w++ )); do
        where="CPU"
        [ "${#GPUS[@]}" -gt 0 ] && where="GPU ${GPUS[$(( w % ${#GPUS[@]} ))]}"
        (
            [ "${#GPUS[@]}" -gt 0 ] && export CUDA_VISIBLE_DEVICES=${GPUS[$(( w % ${#GPUS[@]} ))]}
            echo "== paper.sh --jobs ${JOBS}, worker ${w} on ${where}, $(date '+%Y-%m-%d %H:%M:%S')"
            for (( i = w; i < ${#UNITS[@]}; i += JOBS )); do
                echo "== task ${i}"
                run_unit "${i}"
            done
        ) >> "${TREE}/jobs/worker${w}.log" 2>&1 &  # appended: an earlier invocation's log stays
        pids+=($!)
        echo "worker ${w}: tasks ${w}, $(( w + JOBS )), ... of ${#UNITS[@]} on ${where}; log: ${TREE}/jobs/worker${w}.log"
    done
    for w in "${!pids[@]}"; do
        wait "${pids[${w}]}" || failed+=("${w}")
    done
    if [ "${#failed[@]}" -gt 0 ]; then
        echo "error: worker(s) ${failed[*]} stopped at a failed run (see ${TREE}/jobs/worker<w>.log); the other workers' runs are finished; rerun paper.sh to resume" >&2
        exit 1
    fi
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
        PLAN=$(feature_plan)
        if [ "${PLAN_ONLY}" = 1 ]; then
            echo "# feature phase: $(grep -c . <<< "${PLAN}") tasks, one per distinct feature set"
            cut -f3 <<< "${PLAN}"
            echo "# runs: ${#UNITS[@]} tasks, after every feature task (--dependency=afterok)"
            for unit in "${UNITS[@]}"; do cut -f2 <<< "${unit}"; done
            exit 0
        fi
        mkdir -p "${TREE}"
        printf '%s\n' "${PLAN}" > "${TREE}/feature_plan.tsv"
        ENV_LINE="export DATA=$(printf %q "${DATA}") SHOTS='${SHOTS}' OUTPUT=$(printf %q "${OUTPUT}") SELECTION='${SELECTION}' DATASETS='${DATASETS}' SEEDS='${SEEDS}' TRAINERS='${TRAINERS}' XD_TRAINERS='${XD_TRAINERS}' GZSL_TRAINERS='${GZSL_TRAINERS}' GZSL_DATASET='${GZSL_DATASET}' SOURCE='${SOURCE}' TARGETS='${TARGETS}'"
        # array_script NAME SIZE OPTION: an sbatch array of SIZE tasks, each "paper.sh OPTION <its index>"
        array_script() {
            echo "#!/usr/bin/env bash"
            echo "#SBATCH --job-name=ship_${1}_${SELECTION}"
            echo "#SBATCH --array=0-$(( $2 - 1 ))"
            echo "#SBATCH --gres=gpu:1"
            echo "#SBATCH --output=${TREE}/slurm-${1}-%A_%a.out"
            echo "${ENV_LINE}"
            echo "bash $(printf %q "${HERE}/paper.sh") ${3} \"\${SLURM_ARRAY_TASK_ID}\" $(printf '%q ' "${EXTRA[@]}")"
        }
        array_script features "$(grep -c . "${TREE}/feature_plan.tsv")" --feature-task > "${TREE}/slurm_features.sh"
        array_script paper "${#UNITS[@]}" --task > "${TREE}/slurm_paper.sh"
        {
            echo "#!/usr/bin/env bash"
            echo "# the feature phase, then the runs once every feature task has succeeded"
            echo "set -euo pipefail"
            echo "features=\$(sbatch --parsable $(printf %q "${TREE}/slurm_features.sh"))"
            echo "sbatch --dependency=afterok:\${features%%;*} $(printf %q "${TREE}/slurm_paper.sh")"
        } > "${TREE}/submit_slurm.sh"
        echo "${TREE}/submit_slurm.sh" ;;
    feature_task)
        PLAN_FILE=${TREE}/feature_plan.tsv
        [ -f "${PLAN_FILE}" ] || { echo "error: ${PLAN_FILE} not found (paper.sh --slurm writes it)" >&2; exit 2; }
        N=$(grep -c . "${PLAN_FILE}")
        [[ "${TASK}" =~ ^[0-9]+$ ]] && [ "${TASK}" -lt "${N}" ] || { echo "error: --feature-task ${TASK} is not a feature task of ${PLAN_FILE} (0..$(( N - 1 )))" >&2; exit 2; }
        eval "$(sed -n "$(( TASK + 1 ))p" "${PLAN_FILE}" | cut -f3)" ;;
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
        if [ "${JOBS}" = 1 ]; then
            for i in "${!UNITS[@]}"; do
                run_unit "${i}"
            done
        else
            run_in_parallel
        fi
        tables ;;
esac
