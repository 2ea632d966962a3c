"""Using trained PaSST models: waveform wrapper, HEAR 2021 API modules, tagging and ONNX export commands.

``passt_hear.base`` (and its siblings for other release models) follow the HEAR 2021 API; ``python -m
passt_hear --help`` lists the commands.
"""
