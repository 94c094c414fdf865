"""Past one machine: data-parallel training and distributed inference.

* :func:`init_from_env` joins the process group that ``torchrun`` describes
  in its environment variables; a ``fit`` in that process then trains
  data-parallel (DistributedDataParallel, ``gloo`` on CPUs, ``nccl`` on GPUs):
  each rank trains on its slice of every global batch, the gradients are
  all-reduced, and rank 0 writes checkpoints.
* :func:`fit` runs the same data-parallel fit from Python (a notebook) on N
  local processes and returns an ordinary fitted estimator.
* :func:`transform` computes the latents of a large stack on a dask cluster,
  the fitted model sent once to each worker, optionally written to Parquet.

See the user guide's "Training on a cluster" page.
"""

from skavae.distributed._dask import transform
from skavae.distributed._launch import ProcessGroup, fit, init_from_env

__all__ = ["ProcessGroup", "fit", "init_from_env", "transform"]
