"""Run by test_training.py: train RESUMABLE, and SIGKILL this process during epoch 3's validation.

    python tests/_training_resume.py CHECKPOINT_DIR

The checkpoint of epoch 2 is then the newest; the test resumes from it.
"""

import os
import signal
import sys

from _training_setup import RESUMABLE, resumable_data, tagger
from rnnkit.training import Trainer

calls = 0


def die_in_epoch_3(model):
    global calls
    calls += 1
    if calls == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return 0.0


train, val = resumable_data()
trainer = Trainer(**RESUMABLE, checkpoint_dir=sys.argv[1], val_metrics={"val_zero": die_in_epoch_3})
trainer.fit(tagger(dropout=0.2), train, val=val)
