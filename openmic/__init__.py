"""OpenMIC-2018: HDF5-mp3 files with label+mask targets, dataset factories and preparation."""
