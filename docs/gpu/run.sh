#!/bin/bash
# Trains the reader on the device: bash .devcarry/run.sh python3 cuda 163000 $OUT [EPOCHS] [SEED]
# (TRAIN_ARGS="--mix ... --repeat ..." in the environment: more arguments; the last --mix wins).
# ($OUT gets train.log and the output folder as tar parts of 15 MiB; cat them | tar xf -).
PY=$1; DEV=$2; WIN=$3; O=$4; EP=${5:-2}; SEED=${6:-13}
R=$(pwd)
T0=$(date +%s)
if [ "$DEV" = cuda ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .devcarry/whl/*.whl || exit 3
  export PYTHONPATH=/tmp/site
  nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv
fi
export PYTHONPATH=$PYTHONPATH${PYTHONPATH:+:}$R PYTHONUNBUFFERED=1 VERBATIM_QA_DATA_DIR=$R/.devcarry/qa-data
$PY -c "import torch,transformers,pydantic;print('torch',torch.__version__,'tf',transformers.__version__,'pyd',pydantic.__version__,'cuda',torch.cuda.is_available())"
rm -rf /tmp/ref
set -o pipefail
$PY .devcarry/driver.py train-reader --out /tmp/ref --base-model $R/.devcarry/base --device $DEV --bf16 \
  --max-train-windows $WIN --epochs $EP --batch-size 64 --lr 1e-4 --seed $SEED \
  --mix squad=0.565,shifts=0.178,neg_para=0.213,v2dev=0.041 --log-every 100 $TRAIN_ARGS 2>&1 | tee $O/train.log
rc=$?
echo "train rc=$rc after $(( $(date +%s) - T0 ))s"
ls -la /tmp/ref
(cd /tmp && tar cf - ref | split -b 15M -d - $O/ref.tar.part-)
sha256sum $O/ref.tar.part-* /tmp/ref/model.safetensors
echo "total $(( $(date +%s) - T0 ))s"
exit $rc
