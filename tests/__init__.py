"""The test suite. A regular package (this file) so that `tests.*` imports find this folder: dcase_util, which
sed_eval needs, installs a top-level `tests` package of its own into site-packages."""
