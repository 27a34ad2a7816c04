#!/usr/bin/env bash
# Every dataset x seed of the base-to-new protocol: train on base, test on new, then the table.
#   bash scripts/ship/run_all.sh [--slurm] [KEY VALUE ...]
# DATASETS and SEEDS (environment) choose the grid. With --slurm, nothing runs: an sbatch array
# script (one task per dataset and seed) is written to $OUTPUT/slurm_base2new.sh and its path printed.
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,/^set /s/^# \{0,1\}//p' "$0"; exit 0 ;; esac  # the comment above
HERE=$(cd "$(dirname "$0")" && pwd)
source "${HERE}/common.sh"
DATASETS=${DATASETS:-"imagenet caltech101 oxford_pets stanford_cars oxford_flowers food101 fgvc_aircraft sun397 dtd eurosat ucf101"}
SEEDS=${SEEDS:-"1 2 3"}
read -r -a DS <<< "${DATASETS}"
read -r -a SS <<< "${SEEDS}"

if [ "${1:-}" = --slurm ]; then
    shift
    mkdir -p "${OUTPUT}"
    JOB=${OUTPUT}/slurm_base2new.sh
    {
        echo "#!/usr/bin/env bash"
        echo "#SBATCH --job-name=ship_base2new"
        echo "#SBATCH --array=0-$(( ${#DS[@]} * ${#SS[@]} - 1 ))"
        echo "#SBATCH --gres=gpu:1"
        echo "#SBATCH --output=${OUTPUT}/slurm-%A_%a.out"
        echo "DS=(${DS[*]}); SS=(${SS[*]})"
        echo 'D=${DS[$(( SLURM_ARRAY_TASK_ID / ${#SS[@]} ))]}; S=${SS[$(( SLURM_ARRAY_TASK_ID % ${#SS[@]} ))]}'
        echo "export DATA='${DATA}' TRAINER='${TRAINER}' CFG='${CFG_SETTING}' SHOTS='${SHOTS}' OUTPUT='${OUTPUT}' BACKEND='${BACKEND_SETTING}'"
        echo "bash '${HERE}/base2new_train.sh' \"\$D\" \"\$S\" $* && bash '${HERE}/base2new_test.sh' \"\$D\" \"\$S\" $*"
    } > "${JOB}"
    echo "${JOB}"
    exit 0
fi

for D in "${DS[@]}"; do
    for S in "${SS[@]}"; do
        bash "${HERE}/base2new_train.sh" "${D}" "${S}" "$@"
        bash "${HERE}/base2new_test.sh" "${D}" "${S}" "$@"
    done
done
python3 -m trainers.ship.reports.summary "${OUTPUT}/base2new" --out "${OUTPUT}/base2new/summary"
