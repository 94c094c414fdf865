"""scikit-learn's own estimator checks on every estimator of the package."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skavae import AffinityVAE
from skavae.preprocessing import BandPassFilter


def _expected_failed_checks(estimator):
    return {}


@parametrize_with_checks(
    [
        AffinityVAE(
            latent_dims=2,
            filters=(4, 8),
            max_epochs=2,
            batch_size=16,
            random_state=0,
        ),
        AffinityVAE(
            latent_dims=2,
            filters=(4, 8),
            max_epochs=2,
            batch_size=16,
            decoder="splat",
            n_splats=4,
            beta_schedule="cosine",
            gamma_schedule="ramp",
            schedule_cycles=1,
            random_state=0,
        ),
        BandPassFilter(),
        BandPassFilter(voxel_size=5.0, lowpass=20.0, highpass=200.0),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
