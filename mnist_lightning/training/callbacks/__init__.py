"""The always-on callbacks the CLI adds, each configurable under its own ``--<name>.*`` options.

``resume`` (``last.ckpt`` with RNG and loader state), ``graceful_stop`` (SIGTERM / Ctrl-C), ``resume_guard`` (what a
resume must agree on), ``views`` with ``figures`` (TensorBoard pictures and HPARAMS), ``export`` (ONNX and
``mnist.pt`` when fit ends), ``prediction_csv`` (``predict``'s CSV) and ``progress`` (the default bar, plain lines in a
file).
"""
