"""The model without Lightning (torch and onnx only), so that ``export`` starts fast and the net exports cleanly.

``options`` (the model's options: names, defaults, checks), ``net`` (MyMNIST and its ``mnist.pt``), ``torch_files``
(the one ``weights_only=True`` reader and its messages), ``checkpoints`` (training checkpoints), ``onnx`` (a net to
a verified ONNX file) and ``export_command`` (the ``export`` command).
"""
