"""edge: the on-device package (video sampling, preprocessing, bundles, sources, backends, runner).

Imports no TensorFlow and nothing from the host packages (train/, quantize/, benchmarks/), so it
installs and runs alone on a Jetson or a Coral board.
"""
__version__ = "0.1.0"
