"""skavae: affinity-VAE as a scikit-learn estimator.

An affinity-VAE is a β-VAE whose latent space is organised by a similarity
metric between objects (Mirecka et al.), so that the same object in any pose
lands in one cluster, similar objects land close together, and unseen objects
can be placed on a pre-trained "latent map".

Fitted models are saved with :meth:`AffinityVAE.save` and read back with
:func:`skavae.load`, a format that holds no pickle: loading a model file never
runs code from it (pickle and joblib files do, so load those only from trusted
sources).
"""

__version__ = "0.1.0.dev0"

from skavae._estimator import AffinityVAE  # noqa: E402
from skavae._persistence import load_model as load  # noqa: E402

__all__ = ["AffinityVAE", "__version__", "load"]
