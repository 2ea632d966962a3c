"""Shared pieces of the ex_*.py tests: a tiny CPU training config, and configs as an experiment resolves them."""
import contextlib
import io


def tiny_training_updates(base_dir, seconds, dataset_updates):
    """Config updates that train passt_tiny (stride 16, light patchout) for 2 epochs on CPU, with SWA from
    epoch 1, on `seconds`-long clips below `base_dir`; `dataset_updates` are what a dataset adds."""
    return {"basedataset.base_dir": f"{base_dir}/", "basedataset.clip_length": seconds, "seed": 1,
            "models.net.arch": "passt_tiny", "models.net.pretrained": False, "models.net.fstride": 16,
            "models.net.tstride": 16, "models.net.input_tdim": 100 * seconds - 2, "models.net.s_patchout_t": 2,
            "models.net.s_patchout_f": 1, "datasets.training.batch_size": 4, "datasets.training.num_workers": 0,
            "trainer.max_epochs": 2, "trainer.accelerator": "cpu", "trainer.precision": 32,
            "trainer.enable_progress_bar": False, "swa_epoch_start": 1, "swa_freq": 1, "lr": 1e-3,
            **dataset_updates}


def resolved_config(ex, *named_configs, **config_updates):
    """The config `ex` runs with under these named configs and updates (sacred's print_config, silenced)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return ex.run("print_config", named_configs=list(named_configs), config_updates=config_updates,
                      options={"--loglevel": "ERROR"}).config
