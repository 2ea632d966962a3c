"""ESC-50: one HDF5-mp3 file with folds, dataset factories and preparation."""
