"""Tasks: one estimator per job (forecast, classify, tag, lm, translate, the memory
benchmark), all on one contract (``estimator.py``) and one list of training settings
(``settings.py``). Each turns settings and data into a trained, evaluated, saved run
directory (``rundir.py``) and loads it back; the CLI is a shell over them."""
