"""Training (torch, the ``train`` extra): the float twin of the integer model
(``float_model``), the training loop and export (``train``), and the data it reads
(``data``, which needs no torch: the benchmark and the command line read collections
through it too)."""
