"""Run by test_training.py under torchrun: train DDP_RUNS on 2 processes; rank 0 saves results.

python -m torch.distributed.run --nproc_per_node 2 tests/_training_ddp.py OUT
"""

import json
import os
import sys
from pathlib import Path

import torch

from _training_setup import DDP_RUNS, ddp_data, tagger
from rnnkit.training import Trainer

out = Path(sys.argv[1])
train, val = ddp_data()
for name, settings in DDP_RUNS.items():
    model = tagger()
    trainer = Trainer(**settings, progress="none")
    trainer.fit(model, train, val=val)
    if os.environ["RANK"] == "0":
        torch.save(model.state_dict(), out / f"{name}.pt")
        (out / f"{name}.json").write_text(json.dumps(trainer.history))
