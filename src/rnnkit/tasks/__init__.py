"""Tasks: one estimator per job (forecast, classify, tag, lm, translate, music, transcribe,
caption, the memory benchmark), all on one contract (``estimator.py``) and one list of
training settings (``settings.py``). Each turns settings and data into a trained, evaluated,
saved run directory (``rundir.py``) and loads it back; the CLI is a shell over them."""


def all_tasks() -> dict:
    """Every estimator class with a task name, by name: those of rnnkit's task modules
    (imported here, so call it only where all of them may load) and any a user defined."""
    import importlib
    import pkgutil

    from .estimator import Estimator

    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    found, classes = {}, [Estimator]
    while classes:
        cls = classes.pop()
        classes.extend(cls.__subclasses__())
        if cls.task:
            found[cls.task] = cls
    return found
