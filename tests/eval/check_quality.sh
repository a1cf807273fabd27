#!/usr/bin/env bash
# Fails when triage's domain macro-F1 on a labelled test set is below the committed
# floor. Skips (exit 77) with one line when ../shared/data is absent.
#   check_quality.sh DATASET LABEL_COLUMN FLOOR
set -euo pipefail
root="${SB_REPO_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}"
data="$root/../shared/data/$1"
if [[ ! -f $data/test.csv ]]; then
    echo "skipped: $data/test.csv is absent (the labelled data lives beside the repository)"
    exit 77
fi
"$(dirname "$0")/triage_eval" --data "$data/test.csv" --label-column "$2" \
    --map "$data/domain-map.json" --floor "$3"
