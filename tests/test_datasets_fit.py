"""Each generator serves the method: a small AffinityVAE classifies it (slow)."""

import numpy as np
import pytest
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from skavae import AffinityVAE
from skavae.affinity import FSCAffinity, class_affinity_matrix
from skavae.datasets import make_alphanumeric, make_proteins, make_tetraminos

CASES = {
    # generator, kwargs, epochs, minimum hard-KNN accuracy on held-out data
    "alphanumeric": (make_alphanumeric, dict(n_samples=1200, size=32), 10, 0.95),
    "tetraminos": (make_tetraminos, dict(n_samples=1200), 15, 0.9),
    "proteins": (make_proteins, dict(n_samples=480, size=32, voxel_size=5.0), 20, 0.8),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_affinity_vae_classifies_each_generated_dataset(name, capsys):
    make, kwargs, epochs, minimum = CASES[name]
    X, y, _, templates = make(random_state=0, return_info=True, **kwargs)
    A = class_affinity_matrix(metric=FSCAffinity(), templates=templates)
    Xtr, Xte, ytr, yte = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    model = AffinityVAE(affinity=A, max_epochs=epochs, random_state=0)
    model.fit(Xtr, ytr)
    knn = KNeighborsClassifier(5).fit(model.transform(Xtr), ytr)
    accuracy = knn.score(model.transform(Xte), yte)
    with capsys.disabled():
        print(
            f"\n{name}: {len(np.unique(y))} classes, {X.shape[1:]}, "
            f"{epochs} epochs, hard-KNN accuracy {accuracy:.3f}"
        )
    assert accuracy >= minimum
