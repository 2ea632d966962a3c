"""Test hooks for the processes a test starts (this folder first on their PYTHONPATH; Python imports
sitecustomize at start-up). Each hook is switched on by an environment variable, in training processes only
(a rank, or any process with PASST_HOOKS_ALWAYS):

- PASST_RECORD_DIR: each epoch, every rank writes rank<R>-epoch<E>.json: its seed and the clip indices its
  training loader draws (before any skip of a continued epoch).
- PASST_STEP_DIR: after every training step, rank 0 writes step-<global step> (a test can signal mid-epoch)
  holding the step's loss, clip names and a checksum of torch's generator state.
- PASST_FAIL_RANK: that rank raises in its first training step (with PASST_STEP_DIR: writing the time to failed-at).
- PASST_HANG_RANK: that rank hangs (alive) in its first training step.
"""
import os

if os.environ.get("RANK") is not None or "SLURM_PROCID" in os.environ or os.environ.get("PASST_HOOKS_ALWAYS"):
    def _rank():
        import torch.distributed as dist
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank()
        return int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", 0)))

    if os.environ.get("PASST_RECORD_DIR"):
        import json

        import helpers.loaders

        original_iter = helpers.loaders.EpochLoader.__iter__

        def recording_iter(self):
            epoch = int(self.sampler.epoch)
            path = os.path.join(os.environ["PASST_RECORD_DIR"], f"rank{_rank()}-epoch{epoch}.json")
            with open(path, "w") as file:
                json.dump({"seed": self.seed, "epoch": epoch, "indices": list(self.sampler.sampler)}, file)
            yield from original_iter(self)

        helpers.loaders.EpochLoader.__iter__ = recording_iter

    if os.environ.get("PASST_STEP_DIR") or os.environ.get("PASST_FAIL_RANK") or os.environ.get("PASST_HANG_RANK"):
        import helpers.lightning_module

        module_class = helpers.lightning_module.PaSSTModule
        original_step = module_class.training_step

        def hooked_step(self, batch, batch_idx):
            if os.environ.get("PASST_FAIL_RANK") == str(_rank()):
                if os.environ.get("PASST_STEP_DIR"):
                    import time
                    with open(os.path.join(os.environ["PASST_STEP_DIR"], "failed-at"), "w") as file:
                        file.write(repr(time.time()))
                raise RuntimeError(f"injected failure on rank {_rank()} at batch {batch_idx}")
            if os.environ.get("PASST_HANG_RANK") == str(_rank()):
                import time
                while True:  # alive, never reaching the step's collectives
                    time.sleep(1)
            loss = original_step(self, batch, batch_idx)
            if os.environ.get("PASST_STEP_DIR") and _rank() == 0:
                import torch
                with open(os.path.join(os.environ["PASST_STEP_DIR"], f"step-{self.global_step + 1}"), "w") as file:
                    file.write(f"{float(loss) if loss is not None else None} {' '.join(batch[1])} "
                               f"{int(torch.get_rng_state().double().sum())}\n")
            return loss

        module_class.training_step = hooked_step
