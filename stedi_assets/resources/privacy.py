"""The privacy settings of a run: the consent policy, the pseudonym key, and the time consent is judged at."""

import time

from dagster import ConfigurableResource, InitResourceContext, ResourceDependency
from pydantic import Field, PrivateAttr

from stedi_assets.resources.lake import Lake
from stedi_assets.spark_settings import PSEUDONYM_KEY_ENV
from stedi_assets.transforms.readings import ConsentPolicy

# Clearly not a secret: allowed only on the built-in sample lake, with a warning in the run log.
DEVELOPMENT_PSEUDONYM_KEY = "stedi-development-key-not-for-production"


class PrivacySettingError(ValueError):
    """A privacy setting the project cannot use; the message is one line: the setting, what is wrong, the fix."""


class Privacy(ConfigurableResource):
    # A str, not the ConsentPolicy enum that would let the launchpad refuse a bad value before launch: Dagster makes
    # an enum field a config Enum, which cannot take an EnvVar (dagster-io/dagster#14373), and in dagster 1.13 the
    # EnvVar("STEDI_CONSENT_POLICY") is then silently replaced by the default. `policy` checks it when the run
    # starts, in one line naming the value and the choices.
    consent_policy: str = Field(
        default=ConsentPolicy.SINCE.value,
        description="since: readings taken at or after research consent; flag: every reading of a consenting customer",
    )
    # Wired from EnvVar("STEDI_PSEUDONYM_KEY"): the UI and the run config show the variable's name, never its value.
    pseudonym_key: str = Field(default="", description="Secret key of subject_key (set STEDI_PSEUDONYM_KEY)")
    lake: ResourceDependency[Lake]
    _as_of: int = PrivateAttr(default=0)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self.policy  # noqa: B018 - validates, failing the run at once in one line
        if not self.pseudonym_key and not self.lake.store.is_sample:  # the key's value is never in a message
            raise PrivacySettingError(
                f"{PSEUDONYM_KEY_ENV} / privacy.pseudonym_key is empty, and lake {self.lake.store.uri} is not the"
                f" built-in sample lake: set {PSEUDONYM_KEY_ENV} to a secret of your own (the development key is"
                " allowed only on the sample lake)"
            )
        self._as_of = int(time.time() * 1000)

    @property
    def policy(self) -> ConsentPolicy:
        try:
            return ConsentPolicy(self.consent_policy.strip().lower())
        except ValueError:
            choices = ", ".join(p.value for p in ConsentPolicy)
            raise PrivacySettingError(
                f"STEDI_CONSENT_POLICY / privacy.consent_policy={self.consent_policy!r} is not one of {choices}: set"
                f" it to {ConsentPolicy.SINCE.value} (readings from research consent on, the default) or"
                f" {ConsentPolicy.FLAG.value} (every reading of a consenting customer)"
            ) from None

    @property
    def uses_development_key(self) -> bool:
        return not self.pseudonym_key

    @property
    def key_bytes(self) -> bytes:
        return (self.pseudonym_key or DEVELOPMENT_PSEUDONYM_KEY).encode()

    @property
    def as_of(self) -> int:
        """The run's time (epoch ms), fixed when the run starts: consent dated later is not consent yet."""
        return self._as_of or int(time.time() * 1000)
