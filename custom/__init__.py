"""Your own data: a folder of audio files (one sub-folder per class, or a CSV) prepared as HDF5-mp3 files."""
