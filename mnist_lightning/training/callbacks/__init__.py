"""The always-on callbacks the CLI adds, each configurable under its own ``--<name>.*`` options.

``resume`` (``last.ckpt`` with RNG and loader state), ``graceful_stop`` (SIGTERM / Ctrl-C), ``resume_guard`` (what a
resume must agree on), ``views`` with ``figures`` (TensorBoard pictures and HPARAMS), ``export`` (ONNX and
``mnist.pt`` when fit ends), ``prediction_csv`` (``predict``'s CSV) and ``progress`` (the default bar, plain lines in a
file). ``step_hooks``: per-batch hooks only where a callback uses them, also for lean versions of Lightning's bar,
model summary, best checkpoint and config saver.
"""
