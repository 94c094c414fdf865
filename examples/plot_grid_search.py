"""
Choosing β, γ and latent_dims with GridSearchCV
===============================================

:class:`~skavae.AffinityVAE` follows the scikit-learn estimator API, so its
hyper-parameters are searched like any other's. Inside a pipeline with a
KNN classifier the search optimises classification accuracy on held-out
folds; on its own, :meth:`~skavae.AffinityVAE.score` (the negative loss)
would be used, but the loss is not comparable between values of β and γ,
which weigh its terms, so a downstream score is the better criterion.
"""

# %%
# The search
# ----------
# Eight combinations, three folds each: 24 fits plus the refit of the best
# on all the data. Small images (32×32), 600 of them and 8 epochs per fit
# keep it to a minute or two on two cores. ``n_jobs=2`` would run two fits
# at a time; each worker then runs torch with one thread (joblib limits the
# threads of its workers), see :doc:`/user_guide/scaling`. The paper's grid is
# β in 1..5 and γ in 0..20 at full size (see the Figure 8/10/11 example).
import time

import pandas as pd
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from skavae import AffinityVAE
from skavae.affinity import MeanDifference, class_affinity_matrix
from skavae.datasets import make_alphanumeric

X, y, info, templates = make_alphanumeric(
    n_samples=600, size=32, return_info=True, random_state=0
)
affinity = class_affinity_matrix(metric=MeanDifference(), templates=templates)

pipe = make_pipeline(
    AffinityVAE(affinity=affinity, max_epochs=8, random_state=0),
    KNeighborsClassifier(n_neighbors=5),
)
grid = {
    "affinityvae__beta": [1.0, 5.0],
    "affinityvae__gamma": [0.0, 8.0],
    "affinityvae__latent_dims": [2, 8],
}
search = GridSearchCV(
    pipe, grid, cv=StratifiedKFold(3, shuffle=True, random_state=0), n_jobs=1
)
start = time.perf_counter()
search.fit(X, y)
print(f"{len(search.cv_results_['params'])} candidates x 3 folds + refit: ", end="")
print(f"{time.perf_counter() - start:.1f} s")

# %%
# The results table
# -----------------
# One row per combination, ranked by mean held-out accuracy; ``mean_fit_time``
# is the mean seconds of one fit of the pipeline.
results = pd.DataFrame(search.cv_results_)
columns = [
    "param_affinityvae__beta",
    "param_affinityvae__gamma",
    "param_affinityvae__latent_dims",
    "mean_test_score",
    "std_test_score",
    "mean_fit_time",
    "rank_test_score",
]
table = results[columns].sort_values("rank_test_score")
table.columns = ["beta", "gamma", "latent_dims", "accuracy", "std", "fit s", "rank"]
print(table.round(3).to_string(index=False))
print("best:", search.best_params_)

# %%
# The refitted best pipeline is an ordinary fitted pipeline: its first step
# is the AffinityVAE, trained on all 600 images.
best_vae = search.best_estimator_[0]
print(f"best model: {best_vae.n_iter_} epochs, latents {best_vae.transform(X).shape}")
