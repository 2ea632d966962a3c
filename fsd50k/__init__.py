"""FSD50K: train/val/eval HDF5-mp3 files, dataset factories and preparation."""
