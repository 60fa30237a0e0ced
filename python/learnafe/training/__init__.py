"""Co-design training: the L_BPF loss, the one training loop with exact resume
(:mod:`learnafe.training.loop`), the co-design trainer, evaluation and classifier
fine-tuning on another front end's features.  SPICE fine-tuning
(:mod:`learnafe.spice.finetune`) and XyloAudio 3 quantisation-aware training
(:mod:`learnafe.xylo.qat`) live with their packages in the layer above and run
the same loop; the report (:mod:`learnafe.reporting`) and the demo
(:mod:`learnafe.demo`) sit one layer higher still.

Main entry points (see docs/training.md)::

    train(config, run_dir) -> metrics        # also `learnafe train`
    load_run(run_dir) -> Run                 # rebuilt front end + classifier
    evaluate_run(run_dir, data, EvaluateOptions(), FabOptions()) -> dict   # also `learnafe evaluate`
    finetune(run_dir, frontend, epochs=5, out_dir=...) -> dict   # also `learnafe finetune`
"""

# Only the configuration is imported eagerly: it is torch-free, so the CLI can
# build its parser without loading torch.
from learnafe.training.config import EVAL_SNRS, MODES, TrainConfig, resolve_config

__all__ = ["TrainConfig", "resolve_config", "MODES", "EVAL_SNRS", "BPFLoss", "Run", "load_run",
           "train", "evaluate_run", "EvaluateOptions", "FabOptions", "evaluate_dataset", "finetune", "TrainingLoop"]


def __getattr__(name):  # heavy (torch) modules load on first use
    if name == "BPFLoss":
        from learnafe.training.loss import BPFLoss
        return BPFLoss
    if name in ("Run", "load_run"):
        from learnafe.training import rundir
        return getattr(rundir, name)
    if name == "train":
        from learnafe.training.trainer import train
        return train
    if name == "evaluate_dataset":
        from learnafe.training.evaluate import evaluate_dataset
        return evaluate_dataset
    if name in ("evaluate_run", "EvaluateOptions", "FabOptions"):
        from learnafe.training import run_evaluation
        return getattr(run_evaluation, name)
    if name == "finetune":
        from learnafe.training.finetune import finetune
        return finetune
    if name == "TrainingLoop":
        from learnafe.training.loop import TrainingLoop
        return TrainingLoop
    raise AttributeError(f"module 'learnafe.training' has no attribute {name!r}")
