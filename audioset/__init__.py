"""AudioSet: HDF5-mp3 files, dataset factories and preparation scripts."""
